"""Provider: registration through Root, stake, unstake, withdraw, node updates, slash, claims,
bounces; plus a property test over random stake/unstake/withdraw/slash sequences."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pytoniq_core import Address, begin_cell

from offchain.ton.blockchain import ton
from offchain.ton.transaction import SendResult, find_tx, raw
from tests.contracts.conftest import (
    COOLDOWN,
    ENDPOINT,
    IMAGE_HASH,
    MIN_STAKE,
    NODE_KEY,
    REGISTER_VALUE_OVER_STAKE,
    Env,
    assert_conserved,
    body_of,
    sign_order,
)
from wrappers.errors import ExitCode
from wrappers.messages import ReceiveWithdrawal, RefuseRegistration, ReturnExcess
from wrappers.opcodes import Op
from wrappers.provider import (
    BOUNCE_GAS,
    CONFIRM_REGISTRATION_GAS,
    PROVIDER_OP_FEE,
    PROVIDER_STORAGE_RESERVE,
    SLASH_RELAY_FEE,
    WITHDRAW_FEE,
    Provider,
    ProviderState,
    Role,
)
from wrappers.root import Root

GAS_GOAL_REGISTER = 9726


def addr(n: int) -> Address:
    return Address(f"0:{n:064x}")


def refusal(env: Env, res, owner: Address) -> int:
    tx = find_tx(res, from_=env.root.address, to=owner, op=Op.REFUSE_REGISTRATION)
    return RefuseRegistration.from_cell(body_of(tx)).reason


def slash(env: Env, p: Provider, amount: int, nonce: int):
    order = env.order(p.address, amount, nonce)
    body = Root.relay_slash_body(order=order, signatures=sign_order(order, env.validators[:3]))
    return env.bc.treasury("relayer").send(env.root.address, SLASH_RELAY_FEE, body)


# ---- registration -------------------------------------------------------------------------


@pytest.mark.gas
async def test_register_deploys_active_provider_and_returns_excess(env: Env, gas_snapshot) -> None:
    alice = env.bc.treasury("alice")
    p, pp = env.provider(alice, Role.BANDWIDTH)
    before = env.balance(alice)
    balances = env.balances(alice, env.root, p)
    value = MIN_STAKE + ton(1)  # far more than needed: the excess comes back
    res = await env.root.send_register_provider(
        env.root_p,
        alice.sender(),
        value=value,
        role=Role.BANDWIDTH,
        stake=MIN_STAKE,
        node_key=NODE_KEY,
        endpoint=ENDPOINT,
        query_id=42,
    )
    assert_conserved(env, res, balances)
    confirm = find_tx(res, from_=env.root.address, to=p.address, op=Op.CONFIRM_REGISTRATION, deployed=True)
    excess = find_tx(res, from_=p.address, to=alice.address, op=Op.RETURN_EXCESS)
    assert confirm.gas_used <= CONFIRM_REGISTRATION_GAS
    data = await p.get_provider_data(pp)
    assert data.state == ProviderState.ACTIVE and data.active and await p.get_is_active(pp)
    assert (data.root, data.owner, data.role) == (env.root.address, alice.address, Role.BANDWIDTH)
    assert (data.stake, data.unstaking, data.unlock_at, data.claimed) == (MIN_STAKE, 0, 0, 0)
    assert (data.min_stake, data.cooldown, data.reward_pool) == (MIN_STAKE, COOLDOWN, None)
    assert (data.node_key, data.image_hash, data.endpoint) == (NODE_KEY, None, ENDPOINT)
    # the provider keeps stake + reserve (+ gas-estimate dust); everything else came back
    assert MIN_STAKE + PROVIDER_STORAGE_RESERVE <= env.balance(p) <= MIN_STAKE + PROVIDER_STORAGE_RESERVE + ton("0.002")
    assert excess.value > ton(1) - PROVIDER_STORAGE_RESERVE - ton("0.011")
    assert before - env.balance(alice) < MIN_STAKE + PROVIDER_STORAGE_RESERVE + ton("0.02")


@pytest.mark.gas
def test_register_and_stake_gas(env: Env, gas_snapshot) -> None:
    for role in (Role.BANDWIDTH, Role.GPU):
        p, res = env.register(env.bc.treasury(f"gas-{role.name}"), role)
        assert env.provider_data(p).active, res.tree()
        gas_snapshot.record(f"root.register_provider_{role.name.lower()}", res)
        assert res.gas() <= GAS_GOAL_REGISTER


def test_register_gpu_needs_allowlisted_image(env: Env) -> None:
    alice = env.bc.treasury("alice")
    p, res = env.register(alice, Role.GPU, image_hash=0x1234)
    assert refusal(env, res, alice.address) == ExitCode.IMAGE_NOT_ALLOWED
    assert env.bc.account(p.address).status != "active"
    body = Root.register_provider_body(role=Role.GPU, stake=MIN_STAKE, node_key=NODE_KEY, endpoint=ENDPOINT)
    res = alice.send(env.root.address, MIN_STAKE + REGISTER_VALUE_OVER_STAKE, body)  # no image at all
    assert refusal(env, res, alice.address) == ExitCode.IMAGE_NOT_ALLOWED
    p, res = env.register(alice, Role.GPU, image_hash=IMAGE_HASH)
    assert env.provider_data(p).image_hash == IMAGE_HASH


def test_register_refusal_returns_the_value(env: Env) -> None:
    alice = env.bc.treasury("alice")
    before = env.balance(alice)
    p, _ = env.provider(alice, Role.ROUTER)
    balances = env.balances(alice, env.root, p)
    p, res = env.register(alice, Role.ROUTER, stake=MIN_STAKE - 1)
    assert_conserved(env, res, balances)
    assert refusal(env, res, alice.address) == ExitCode.STAKE_BELOW_MINIMUM
    refund = find_tx(res, from_=env.root.address, to=alice.address)
    assert refund.value > MIN_STAKE - 1 + REGISTER_VALUE_OVER_STAKE - ton("0.01")
    assert before - env.balance(alice) < ton("0.01")  # only fees were spent
    assert env.bc.account(p.address).status != "active"


def test_register_invalid_role_is_refused(env: Env) -> None:
    alice = env.bc.treasury("alice")
    body = Root.register_provider_body(role=7, stake=MIN_STAKE, node_key=NODE_KEY, endpoint=ENDPOINT)
    res = alice.send(env.root.address, MIN_STAKE + REGISTER_VALUE_OVER_STAKE, body)
    assert refusal(env, res, alice.address) == ExitCode.INVALID_ROLE


def test_register_with_too_little_value_bounces_and_strands_nothing(env: Env) -> None:
    alice = env.bc.treasury("alice")
    root_before, alice_before = env.balance(env.root), env.balance(alice)
    p, res = env.register(alice, Role.BANDWIDTH, value=MIN_STAKE + REGISTER_VALUE_OVER_STAKE - 1)
    find_tx(res, to=env.root.address, exit_code=ExitCode.NOT_ENOUGH_VALUE)
    find_tx(res, from_=env.root.address, to=alice.address, bounced=True)
    assert env.bc.account(p.address).status == "nonexist"
    assert env.balance(env.root) == root_before
    assert alice_before - env.balance(alice) < ton("0.01")


def test_register_twice_refunds_the_second_and_keeps_the_first(env: Env) -> None:
    alice = env.bc.treasury("alice")
    p, _ = env.register(alice, Role.VALIDATOR)
    p2, res = env.register(alice, Role.VALIDATOR, stake=2 * MIN_STAKE)
    assert p2.address == p.address
    tx = find_tx(res, from_=p.address, to=alice.address, op=Op.REFUSE_REGISTRATION)
    assert RefuseRegistration.from_cell(body_of(tx)).reason == ExitCode.ALREADY_REGISTERED
    assert tx.value > 2 * MIN_STAKE
    assert env.provider_data(p).stake == MIN_STAKE
    assert env.balance(p) >= MIN_STAKE + PROVIDER_STORAGE_RESERVE


def test_provider_accepts_registration_only_from_root(env: Env) -> None:
    alice = env.bc.treasury("alice")
    p, _ = env.register(alice, Role.BANDWIDTH)
    from wrappers.messages import ConfirmRegistration, NodeInfo, ProviderTerms

    fake = ConfirmRegistration(
        query_id=0,
        stake=ton(1000),
        node=NodeInfo(node_key=1, image_hash=None, endpoint="x"),
        terms=ProviderTerms(min_stake=0, cooldown=0, reward_pool=None),
    ).to_cell()
    res = alice.send(p.address, ton(1), fake)
    find_tx(res, to=p.address, exit_code=ExitCode.NOT_FROM_ROOT)
    assert env.provider_data(p).stake == MIN_STAKE


# ---- stake, unstake, withdraw ------------------------------------------------------------------


def _active(env: Env, name: str = "alice", role: Role = Role.BANDWIDTH):
    who = env.bc.treasury(name)
    p, res = env.register(who, role)
    assert env.provider_data(p).active, res.tree()
    return who, p


@pytest.mark.gas
async def test_stake_top_up(env: Env, gas_snapshot) -> None:
    alice, p = _active(env)
    _, pp = env.provider(alice, Role.BANDWIDTH)
    res = await p.send_stake(pp, alice.sender(), value=ton(5) + PROVIDER_OP_FEE, amount=ton(5))
    find_tx(res, from_=p.address, to=alice.address, op=Op.RETURN_EXCESS)
    gas_snapshot.record("provider.stake", res)
    assert env.provider_data(p).stake == MIN_STAKE + ton(5)
    assert env.balance(p) >= MIN_STAKE + ton(5) + PROVIDER_STORAGE_RESERVE


def test_stake_checks(env: Env) -> None:
    alice, p = _active(env)
    res = alice.send(p.address, ton(5) + PROVIDER_OP_FEE - 1, p.stake_body(amount=ton(5)))
    find_tx(res, to=p.address, exit_code=ExitCode.NOT_ENOUGH_VALUE)
    res = env.bc.treasury("mallory").send(p.address, ton(6), p.stake_body(amount=ton(5)))
    find_tx(res, to=p.address, exit_code=ExitCode.NOT_OWNER)
    assert env.provider_data(p).stake == MIN_STAKE


def test_operations_on_an_unregistered_provider_are_rejected(env: Env) -> None:
    alice = env.bc.treasury("alice")
    p, _ = env.provider(alice, Role.ROUTER)
    alice.send(p.address, ton("0.1"), None, init=p.init)  # deployed empty, never registered
    assert env.provider_data(p).state == ProviderState.UNREGISTERED
    for body in (p.stake_body(amount=ton(20)), p.request_unstake_body(), p.update_node_body(node_key=1, endpoint="e")):
        res = alice.send(p.address, ton(21), body)
        find_tx(res, to=p.address, exit_code=ExitCode.NOT_REGISTERED)
    res = alice.send(p.address, ton(1), p.claim_reward_body(cumulative=1, path=1, proof=begin_cell().end_cell()))
    find_tx(res, to=p.address, exit_code=ExitCode.NOT_REGISTERED)


def test_unknown_op_is_rejected(env: Env) -> None:
    alice, p = _active(env)
    res = alice.send(p.address, ton(1), begin_cell().store_uint(0xBEEF, 32).end_cell())
    find_tx(res, to=p.address, exit_code=ExitCode.UNKNOWN_OP)


@pytest.mark.gas
async def test_unstake_then_withdraw_after_cooldown(env: Env, gas_snapshot) -> None:
    alice, p = _active(env)
    _, pp = env.provider(alice, Role.BANDWIDTH)
    res = await p.send_request_unstake(pp, alice.sender(), value=PROVIDER_OP_FEE)
    find_tx(res, from_=p.address, to=alice.address, op=Op.RETURN_EXCESS)
    gas_snapshot.record("provider.request_unstake", res)
    assert env.balance(p) >= MIN_STAKE + PROVIDER_STORAGE_RESERVE
    data = env.provider_data(p)
    assert data.state == ProviderState.INACTIVE and (data.stake, data.unstaking) == (0, MIN_STAKE)
    assert data.unlock_at == env.bc.now + COOLDOWN
    res = alice.send(p.address, WITHDRAW_FEE, p.withdraw_body(amount=1))
    find_tx(res, to=p.address, exit_code=ExitCode.COOLDOWN_NOT_OVER)
    env.bc.now = data.unlock_at
    res = alice.send(p.address, WITHDRAW_FEE, p.withdraw_body(amount=MIN_STAKE + 1))
    find_tx(res, to=p.address, exit_code=ExitCode.AMOUNT_EXCEEDS_UNLOCKED)
    res = alice.send(p.address, WITHDRAW_FEE - 1, p.withdraw_body(amount=1))
    find_tx(res, to=p.address, exit_code=ExitCode.NOT_ENOUGH_VALUE)
    res = env.bc.treasury("mallory").send(p.address, WITHDRAW_FEE, p.withdraw_body(amount=1))
    find_tx(res, to=p.address, exit_code=ExitCode.NOT_OWNER)
    res = await p.send_withdraw(pp, alice.sender(), value=WITHDRAW_FEE, amount=ton(3))
    tx = find_tx(res, from_=p.address, to=alice.address, op=Op.RECEIVE_WITHDRAWAL)
    assert ReceiveWithdrawal.from_cell(body_of(tx)).amount == ton(3)
    assert ton(3) < tx.value < ton(3) + WITHDRAW_FEE  # the amount and the excess, in one message
    gas_snapshot.record("provider.withdraw", res)
    assert env.provider_data(p).unstaking == MIN_STAKE - ton(3)
    alice.send(p.address, WITHDRAW_FEE, p.withdraw_body(amount=MIN_STAKE - ton(3)))
    assert env.provider_data(p).unstaking == 0
    # what is left is the storage reserve, less a week of storage fees
    assert PROVIDER_STORAGE_RESERVE - ton("0.001") < env.balance(p) < PROVIDER_STORAGE_RESERVE


def test_unstake_without_stake_is_rejected(env: Env) -> None:
    alice, p = _active(env)
    alice.send(p.address, PROVIDER_OP_FEE, p.request_unstake_body())
    res = alice.send(p.address, PROVIDER_OP_FEE, p.request_unstake_body())
    find_tx(res, to=p.address, exit_code=ExitCode.NOTHING_TO_UNSTAKE)
    res = env.bc.treasury("mallory").send(p.address, PROVIDER_OP_FEE, p.request_unstake_body())
    find_tx(res, to=p.address, exit_code=ExitCode.NOT_OWNER)


def test_bounced_withdrawal_is_withdrawable_again(env: Env) -> None:
    """The owner is an address with no account: its payout bounces, the Provider restores it."""
    ghost = addr(0xABCDEF)
    bc = env.bc
    body = Root.register_provider_body(role=Role.BANDWIDTH, stake=MIN_STAKE, node_key=1, endpoint="e")
    bc.send_internal(src=ghost, to=env.root.address, value=MIN_STAKE + ton(1), body=body)
    p, _ = env.provider(ghost, Role.BANDWIDTH)
    assert env.provider_data(p).active
    bc.send_internal(src=ghost, to=p.address, value=PROVIDER_OP_FEE, body=p.request_unstake_body())
    bc.now = bc.now + COOLDOWN
    balances = env.balances(ghost, p)
    res = bc.send_internal(src=ghost, to=p.address, value=WITHDRAW_FEE, body=p.withdraw_body(amount=MIN_STAKE))
    balances[raw(ghost)] += WITHDRAW_FEE  # injected from outside: count it as ghost's money
    assert_conserved(env, res, balances)
    back = find_tx(res, from_=ghost, to=p.address, bounced=True, success=True)
    assert back.gas_used <= BOUNCE_GAS
    data = env.provider_data(p)
    assert MIN_STAKE - ton("0.01") < data.unstaking < back.value < MIN_STAKE + WITHDRAW_FEE
    assert env.balance(p) >= data.unstaking + PROVIDER_STORAGE_RESERVE


# ---- node key and endpoint -----------------------------------------------------------------------

NEW_KEY = NODE_KEY ^ 0xFFFF
NEW_ENDPOINT = "wss://gpu-1.example.org:8443/after-reboot"


@pytest.mark.gas
async def test_update_node_replaces_key_and_endpoint_and_keeps_the_image(env: Env, gas_snapshot) -> None:
    alice, p = _active(env, role=Role.GPU)
    _, pp = env.provider(alice, Role.GPU)
    balances = env.balances(alice, p)
    res = await p.send_update_node(
        pp, alice.sender(), value=PROVIDER_OP_FEE, node_key=NEW_KEY, endpoint=NEW_ENDPOINT, query_id=7
    )
    assert_conserved(env, res, balances)
    find_tx(res, from_=alice.address, to=p.address, op=Op.UPDATE_NODE, success=True)
    excess = find_tx(res, from_=p.address, to=alice.address, op=Op.RETURN_EXCESS)
    gas_snapshot.record("provider.update_node", res)
    assert ReturnExcess.from_cell(body_of(excess)).query_id == 7
    assert excess.value > PROVIDER_OP_FEE - ton("0.004")  # all of the value but the gas
    data = env.provider_data(p)
    assert (data.node_key, data.endpoint, data.image_hash) == (NEW_KEY, NEW_ENDPOINT, IMAGE_HASH)
    assert data.active and (data.stake, data.claimed) == (MIN_STAKE, 0)
    assert env.balance(p) >= MIN_STAKE + PROVIDER_STORAGE_RESERVE  # nothing of the value was kept


def test_update_node_while_unstaking_keeps_no_image_where_there_was_none(env: Env) -> None:
    alice, p = _active(env)
    alice.send(p.address, PROVIDER_OP_FEE, p.request_unstake_body())
    assert env.provider_data(p).state == ProviderState.INACTIVE
    res = alice.send(p.address, PROVIDER_OP_FEE, p.update_node_body(node_key=NEW_KEY, endpoint=NEW_ENDPOINT))
    find_tx(res, to=p.address, op=Op.UPDATE_NODE, success=True)
    data = env.provider_data(p)
    assert (data.node_key, data.endpoint, data.image_hash) == (NEW_KEY, NEW_ENDPOINT, None)
    assert data.state == ProviderState.INACTIVE and data.unstaking == MIN_STAKE


def test_update_node_by_anyone_but_the_owner_is_rejected(env: Env) -> None:
    alice, p = _active(env)
    body = p.update_node_body(node_key=NEW_KEY, endpoint="wss://mallory")
    res = env.bc.treasury("mallory").send(p.address, ton(1), body)
    find_tx(res, to=p.address, exit_code=ExitCode.NOT_OWNER)
    res = env.bc.treasury("foundation").send(p.address, ton(1), body)  # not even Root's owner
    find_tx(res, to=p.address, exit_code=ExitCode.NOT_OWNER)
    res = alice.send(p.address, PROVIDER_OP_FEE - 1, body)
    find_tx(res, to=p.address, exit_code=ExitCode.NOT_ENOUGH_VALUE)
    assert (env.provider_data(p).node_key, env.provider_data(p).endpoint) == (NODE_KEY, ENDPOINT)


def test_update_node_with_an_endpoint_root_would_refuse_is_rejected(env: Env) -> None:
    """The Provider holds the new NodeInfo to Root's registration limit (MAX_NODE_INFO_DEPTH):
    254 bytes of endpoint (two cells) pass both, 255 bytes fail both."""
    alice, p = _active(env, role=Role.GPU)
    res = alice.send(p.address, ton(1), p.update_node_body(node_key=NEW_KEY, endpoint="x" * 255))
    find_tx(res, to=p.address, exit_code=ExitCode.NODE_INFO_TOO_LARGE)
    find_tx(res, from_=p.address, to=alice.address, bounced=True)
    assert env.provider_data(p).endpoint == ENDPOINT
    body = Root.register_provider_body(
        role=Role.GPU, stake=MIN_STAKE, node_key=1, endpoint="x" * 255, image_hash=IMAGE_HASH
    )
    res = env.bc.treasury("bob").send(env.root.address, MIN_STAKE + REGISTER_VALUE_OVER_STAKE, body)
    assert refusal(env, res, env.bc.treasury("bob").address) == ExitCode.NODE_INFO_TOO_LARGE
    res = alice.send(p.address, PROVIDER_OP_FEE, p.update_node_body(node_key=NEW_KEY, endpoint="x" * 254))
    find_tx(res, to=p.address, op=Op.UPDATE_NODE, success=True)
    assert env.provider_data(p).endpoint == "x" * 254


# ---- slash, claims ------------------------------------------------------------------------------


def test_slash_below_minimum_deactivates_and_top_up_reactivates(env: Env) -> None:
    alice, p = _active(env)
    slash(env, p, ton(3), nonce=1)
    data = env.provider_data(p)
    assert data.state == ProviderState.INACTIVE and data.stake == MIN_STAKE - ton(3)
    res = alice.send(p.address, ton(2) + PROVIDER_OP_FEE, p.stake_body(amount=ton(2)))
    find_tx(res, to=p.address, exit_code=ExitCode.STAKE_BELOW_MINIMUM)
    find_tx(res, from_=p.address, to=alice.address, bounced=True)
    res = alice.send(p.address, ton(3) + PROVIDER_OP_FEE, p.stake_body(amount=ton(3)))
    assert find_tx(res, to=p.address).success
    assert env.provider_data(p).active


def test_apply_slash_only_from_root(env: Env) -> None:
    alice, p = _active(env)
    from wrappers.messages import ApplySlash

    body = ApplySlash(query_id=0, amount=MIN_STAKE, reason_hash=0, treasury=alice.address, excess_to=alice.address)
    res = alice.send(p.address, ton(1), body.to_cell())
    find_tx(res, to=p.address, exit_code=ExitCode.NOT_FROM_ROOT)
    assert env.provider_data(p).stake == MIN_STAKE


@pytest.mark.gas
async def test_claim_records_at_once_and_a_bounce_takes_it_back(env: Env, gas_snapshot) -> None:
    """ClaimReward records the new total and forwards the difference to the pool. Here the
    pool is an address without a contract: the claim bounces and the record goes back."""
    from tests.contracts.conftest import body_of
    from wrappers.messages import ForwardClaim

    pool = addr(0x900)
    env.owner_send(Root.set_reward_pool_body(reward_pool=pool))
    alice, p = _active(env)
    proof = begin_cell().store_uint(7, 8).end_cell()
    res = alice.send(p.address, ton("0.1"), p.claim_reward_body(cumulative=ton(7), path=0b10110, proof=proof))
    claim_tx = find_tx(res, from_=alice.address, to=p.address, op=Op.CLAIM_REWARD, success=True)
    gas_snapshot.record("provider.claim_reward", SendResult([claim_tx], [], []), skip_first=False)
    fwd = ForwardClaim.from_cell(body_of(find_tx(res, from_=p.address, to=pool, op=Op.FORWARD_CLAIM)))
    assert (fwd.payout, fwd.cumulative, fwd.owner, fwd.role, fwd.path) == (
        ton(7),
        ton(7),
        alice.address,
        Role.BANDWIDTH,
        0b10110,
    )
    assert fwd.proof.hash == proof.hash
    find_tx(res, from_=pool, to=p.address, bounced=True, success=True)
    find_tx(res, from_=p.address, to=alice.address, op=Op.RETURN_EXCESS)
    assert env.provider_data(p).claimed == 0
    # nothing to claim, too little value, not the owner
    res = alice.send(p.address, ton("0.1"), p.claim_reward_body(cumulative=0, path=1, proof=proof))
    find_tx(res, to=p.address, exit_code=ExitCode.NOTHING_TO_CLAIM)
    res = alice.send(p.address, ton("0.01"), p.claim_reward_body(cumulative=1, path=1, proof=proof))
    find_tx(res, to=p.address, exit_code=ExitCode.NOT_ENOUGH_VALUE)
    res = env.bc.treasury("mallory").send(p.address, ton("0.1"), p.claim_reward_body(cumulative=1, path=1, proof=proof))
    find_tx(res, to=p.address, exit_code=ExitCode.NOT_OWNER)
    # a total no tree can hold (it would not fit the forwarded message) is refused at once
    res = alice.send(p.address, ton("0.1"), p.claim_reward_body(cumulative=1 << 96, path=1, proof=proof))
    find_tx(res, to=p.address, exit_code=ExitCode.INVALID_PROOF)
    assert env.provider_data(p).claimed == 0


def test_plain_transfer_is_accepted_and_returned_with_the_next_excess(env: Env) -> None:
    alice, p = _active(env)
    alice.send(p.address, ton(2), None)
    res = alice.send(p.address, ton(1) + PROVIDER_OP_FEE, p.stake_body(amount=ton(1)))
    excess = find_tx(res, from_=p.address, to=alice.address, op=Op.RETURN_EXCESS)
    assert excess.value > ton(2)


# ---- property: money is conserved --------------------------------------------------------------

ACTIONS = st.lists(
    st.tuples(st.sampled_from(["stake", "unstake", "withdraw", "slash", "wait"]), st.integers(0, 30)),
    min_size=1,
    max_size=10,
)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(actions=ACTIONS)
def test_random_sequences_conserve_money(env_factory, actions) -> None:
    """Whatever the order of stake/unstake/withdraw/slash: the balance covers stake + unstaking;
    staked = stake + unstaking + withdrawn + slashed, to the nanoTON; and across every account
    involved, balance changes plus fees sum to zero for every operation."""
    env: Env = env_factory()
    alice, p = _active(env, "prop")
    relayer = env.bc.treasury("relayer")
    accounts = (alice, p, env.root, env.treasury, relayer)
    staked, withdrawn, slashed, nonce = MIN_STAKE, 0, 0, 0
    for action, k in actions:
        amount = ton(k) // 3 + 1
        before = env.balances(*accounts)
        res = None
        if action == "stake":
            res = alice.send(p.address, amount + PROVIDER_OP_FEE, p.stake_body(amount=amount))
            if find_tx(res, to=p.address).success:
                staked += amount
        elif action == "unstake":
            res = alice.send(p.address, PROVIDER_OP_FEE, p.request_unstake_body())
        elif action == "withdraw":
            res = alice.send(p.address, WITHDRAW_FEE, p.withdraw_body(amount=amount))
            withdrawn += sum(
                ReceiveWithdrawal.from_cell(body_of(t)).amount
                for t in res.transactions
                if t.op == Op.RECEIVE_WITHDRAWAL
            )
        elif action == "slash":
            nonce += 1
            res = slash(env, p, amount, nonce)
            slashed += sum(t.value for t in res.transactions if t.op == Op.RECEIVE_SLASHED_STAKE)
        else:
            env.bc.advance(COOLDOWN * k // 10)
        if res is not None:
            assert_conserved(env, res, before)
        data = env.provider_data(p)
        assert env.balance(p) >= data.stake + data.unstaking
        assert staked == data.stake + data.unstaking + withdrawn + slashed
        assert not data.active or data.stake >= data.min_stake

"""Root: deploy and getters, every owner operation, ownership, upgrade, slashing relay."""

from __future__ import annotations

import pytest
from pytoniq_core import Address, Cell

from offchain.ton.blockchain import ton
from offchain.ton.build import code_cell
from offchain.ton.transaction import find_tx
from tests.contracts.conftest import (
    COOLDOWN,
    IMAGE_HASH,
    MIN_STAKE,
    MODEL_HASH,
    Env,
    body_of,
    pubkey,
    sign_order,
    validator_keys,
)
from wrappers.errors import ExitCode
from wrappers.messages import ComputeSplit, DataSplit, ReceiveSlashedStake, SlashOrder
from wrappers.opcodes import Op
from wrappers.provider import MAX_VALIDATORS, SLASH_RELAY_FEE, ProviderState, Role
from wrappers.root import Root, RootConfig, root_config_to_cell, slash_order_hash

OTHER_HASH = 0xC0C0A


def addr(n: int) -> Address:
    return Address(f"0:{n:064x}")


# ---- deploy and getters ---------------------------------------------------------------------


async def test_getters_after_deploy_return_config(env: Env) -> None:
    root, p = env.root, env.root_p
    data = await root.get_root_data(p)
    assert data.owner == env.owner.address and data.pending_owner is None
    assert data.version == 0 and data.last_slash_nonce == 0
    params = await root.get_params(p)
    assert params.treasury == env.treasury.address and params.reward_pool is None
    assert (params.compute_unit_price, params.data_unit_price, params.close_delay) == (0, 0, 86400)
    assert params.dev_attestation is False  # the insecure `dev` attestation is off unless the owner says so
    splits = await root.get_split_tables(p)
    assert splits.compute == ComputeSplit(gpu=7000, router=1500, validator=1000, protocol=500)
    assert splits.data == DataSplit(bandwidth=7000, router=1500, validator=1000, protocol=500)
    for role in Role:
        terms = await root.get_role_params(p, role)
        assert (terms.min_stake, terms.cooldown, terms.reward_pool) == (MIN_STAKE, COOLDOWN, None)
    assert await root.get_is_model_allowed(p, MODEL_HASH)
    assert not await root.get_is_model_allowed(p, OTHER_HASH)
    assert await root.get_is_image_allowed(p, IMAGE_HASH)
    assert not await root.get_is_image_allowed(p, OTHER_HASH)
    vs = await root.get_validator_set(p)
    assert vs.validators == {pubkey(k) for k in env.validators} and (vs.count, vs.threshold) == (5, 3)
    codes = await root.get_child_codes(p)
    assert codes.provider.hash == env.codes.provider.hash


async def test_deploy_through_the_wrapper(env: Env) -> None:
    founder = env.bc.treasury("another-foundation")
    cfg = RootConfig(owner=founder.address, treasury=addr(1), provider_code=env.codes.provider, close_delay=60)
    other = Root.create_from_config(cfg, env.codes.root)
    assert other.address != env.root.address
    provider = env.bc.provider(other.address, other.init)
    res = await other.send_deploy(provider, founder.sender(), value=ton(1))
    assert find_tx(res, to=other.address, deployed=True).success
    assert (await other.get_root_data(provider)).owner == founder.address
    assert (await Root.create_from_address(other.address).get_params(provider)).close_delay == 60


async def test_provider_address_getter_matches_wrapper_derivation(env: Env) -> None:
    alice = env.bc.treasury("alice")
    for role in Role:
        expected, _ = env.provider(alice, role)
        assert await env.root.get_provider_address(env.root_p, alice.address, role) == expected.address
    a, _ = env.provider(alice, Role.GPU)
    b, _ = env.provider(env.bc.treasury("bob"), Role.GPU)
    assert a.address != b.address


def test_get_role_params_rejects_invalid_role(env: Env) -> None:
    from offchain.errors import GetMethodError

    with pytest.raises(GetMethodError) as err:
        env.bc.run_get_method(env.root.address, "get_role_params", [7])
    assert err.value.exit_code == ExitCode.INVALID_ROLE


def test_config_to_cell_rejects_bad_configs(env: Env) -> None:
    base = dict(owner=env.owner.address, treasury=env.treasury.address, provider_code=env.codes.provider)
    with pytest.raises(ValueError, match="compute_split"):
        root_config_to_cell(RootConfig(**base, compute_split=ComputeSplit(gpu=1, router=1, validator=1, protocol=1)))
    with pytest.raises(ValueError, match="threshold"):
        root_config_to_cell(RootConfig(**base, validators=[1, 2], threshold=3))
    with pytest.raises(ValueError, match="duplicate"):
        root_config_to_cell(RootConfig(**base, validators=[1, 1], threshold=1))


def test_empty_body_is_accepted_and_unknown_op_rejected(env: Env) -> None:
    res = env.owner.send(env.root.address, ton(1), None)
    assert find_tx(res, to=env.root.address).success
    res = env.owner.send(env.root.address, ton(1), Cell.empty().to_builder().store_uint(0xDEAD, 32).end_cell())
    find_tx(res, to=env.root.address, exit_code=ExitCode.UNKNOWN_OP)
    find_tx(res, from_=env.root.address, to=env.owner.address, bounced=True)


# ---- owner operations -----------------------------------------------------------------------


@pytest.mark.gas
async def test_set_prices_updates_params_bumps_version_returns_excess(env: Env, gas_snapshot) -> None:
    res = await env.root.send_set_prices(
        env.root_p, env.owner.sender(), value=ton("0.1"), compute_unit_price=123, data_unit_price=456, query_id=7
    )
    find_tx(res, from_=env.root.address, to=env.owner.address, op=Op.RETURN_EXCESS, success=True)
    params = await env.root.get_params(env.root_p)
    assert (params.compute_unit_price, params.data_unit_price) == (123, 456)
    assert env.version() == 1
    gas_snapshot.record("root.set_prices", res)
    assert res.gas() <= 8098


@pytest.mark.gas
async def test_add_and_remove_model_hash(env: Env, gas_snapshot) -> None:
    res = await env.root.send_add_model_hash(env.root_p, env.owner.sender(), value=ton("0.1"), hash=OTHER_HASH)
    assert find_tx(res, to=env.root.address).success
    gas_snapshot.record("root.add_model_hash", res)
    assert res.gas() <= 8098
    assert await env.root.get_is_model_allowed(env.root_p, OTHER_HASH)
    res = await env.root.send_remove_model_hash(env.root_p, env.owner.sender(), value=ton("0.1"), hash=OTHER_HASH)
    assert find_tx(res, to=env.root.address).success
    gas_snapshot.record("root.remove_model_hash", res)
    assert not await env.root.get_is_model_allowed(env.root_p, OTHER_HASH)
    assert await env.root.get_is_model_allowed(env.root_p, MODEL_HASH)
    assert env.version() == 2


@pytest.mark.gas
async def test_add_and_remove_image_hash(env: Env, gas_snapshot) -> None:
    res = env.owner_send(Root.add_image_hash_body(hash=OTHER_HASH))
    assert find_tx(res, to=env.root.address).success
    gas_snapshot.record("root.add_image_hash", res)
    assert await env.root.get_is_image_allowed(env.root_p, OTHER_HASH)
    res = env.owner_send(Root.remove_image_hash_body(hash=IMAGE_HASH))
    assert find_tx(res, to=env.root.address).success
    assert not await env.root.get_is_image_allowed(env.root_p, IMAGE_HASH)
    assert env.version() == 2


@pytest.mark.parametrize(
    "body",
    [
        Root.remove_model_hash_body(hash=OTHER_HASH),
        Root.remove_image_hash_body(hash=OTHER_HASH),
        Root.set_router_body(router=addr(1), endpoint=None),
    ],
    ids=["model", "image", "router"],
)
def test_remove_absent_entry_is_rejected(env: Env, body: Cell) -> None:
    res = env.owner_send(body)
    find_tx(res, to=env.root.address, exit_code=ExitCode.ENTRY_NOT_FOUND)
    assert env.version() == 0


@pytest.mark.gas
async def test_set_splits(env: Env, gas_snapshot) -> None:
    compute = ComputeSplit(gpu=6000, router=2000, validator=1500, protocol=500)
    data = DataSplit(bandwidth=5000, router=3000, validator=1000, protocol=1000)
    res = await env.root.send_set_splits(env.root_p, env.owner.sender(), value=ton("0.1"), compute=compute, data=data)
    assert find_tx(res, to=env.root.address).success
    gas_snapshot.record("root.set_splits", res)
    splits = await env.root.get_split_tables(env.root_p)
    assert (splits.compute, splits.data) == (compute, data)


@pytest.mark.parametrize(
    ("compute", "data"),
    [
        (
            ComputeSplit(gpu=6000, router=2000, validator=1500, protocol=499),
            DataSplit(bandwidth=7000, router=1500, validator=1000, protocol=500),
        ),
        (
            ComputeSplit(gpu=7000, router=1500, validator=1000, protocol=500),
            DataSplit(bandwidth=7000, router=1500, validator=1000, protocol=501),
        ),
        (
            ComputeSplit(gpu=65535, router=0, validator=0, protocol=0),
            DataSplit(bandwidth=10000, router=0, validator=0, protocol=0),
        ),
    ],
    ids=["compute-short", "data-over", "compute-overflowing"],
)
def test_split_not_summing_to_10000_is_rejected(env: Env, compute: ComputeSplit, data: DataSplit) -> None:
    res = env.owner_send(Root.set_splits_body(compute=compute, data=data))
    find_tx(res, to=env.root.address, exit_code=ExitCode.INVALID_SPLIT)
    assert env.version() == 0


@pytest.mark.gas
async def test_set_role_params_changes_only_that_role(env: Env, gas_snapshot) -> None:
    res = await env.root.send_set_role_params(
        env.root_p, env.owner.sender(), value=ton("0.1"), role=Role.ROUTER, min_stake=ton(50), cooldown=3600
    )
    assert find_tx(res, to=env.root.address).success
    gas_snapshot.record("root.set_role_params", res)
    terms = await env.root.get_role_params(env.root_p, Role.ROUTER)
    assert (terms.min_stake, terms.cooldown) == (ton(50), 3600)
    other = await env.root.get_role_params(env.root_p, Role.GPU)
    assert (other.min_stake, other.cooldown) == (MIN_STAKE, COOLDOWN)


def test_set_role_params_rejects_invalid_role(env: Env) -> None:
    res = env.owner_send(Root.set_role_params_body(role=4, min_stake=1, cooldown=1))
    find_tx(res, to=env.root.address, exit_code=ExitCode.INVALID_ROLE)


async def test_set_close_delay_treasury_and_reward_pool(env: Env) -> None:
    for body in (
        Root.set_close_delay_body(close_delay=600),
        Root.set_treasury_body(treasury=addr(2)),
        Root.set_reward_pool_body(reward_pool=addr(3)),
    ):
        assert find_tx(env.owner_send(body), to=env.root.address).success
    params = await env.root.get_params(env.root_p)
    assert (params.close_delay, params.treasury, params.reward_pool) == (600, addr(2), addr(3))
    for role in Role:  # the pool address reaches every role's terms
        assert (await env.root.get_role_params(env.root_p, role)).reward_pool == addr(3)
    assert env.version() == 3


@pytest.mark.gas
async def test_set_dev_attestation_on_and_off_bumps_version(env: Env, gas_snapshot) -> None:
    res = await env.root.send_set_dev_attestation(
        env.root_p, env.owner.sender(), value=ton("0.1"), allowed=True, query_id=3
    )
    find_tx(res, from_=env.root.address, to=env.owner.address, op=Op.RETURN_EXCESS, success=True)
    gas_snapshot.record("root.set_dev_attestation", res)
    params = await env.root.get_params(env.root_p)
    assert params.dev_attestation is True and env.version() == 1
    assert (params.close_delay, params.treasury) == (86400, env.treasury.address)  # nothing else moved
    assert find_tx(env.owner_send(Root.set_dev_attestation_body(allowed=False)), to=env.root.address).success
    assert (await env.root.get_params(env.root_p)).dev_attestation is False and env.version() == 2


async def test_dev_attestation_from_config_survives_other_updates(env: Env) -> None:
    founder = env.bc.treasury("dev-foundation")
    cfg = RootConfig(owner=founder.address, treasury=addr(1), provider_code=env.codes.provider, dev_attestation=True)
    dev = Root.create_from_config(cfg, env.codes.root)
    provider = env.bc.provider(dev.address, dev.init)
    assert find_tx(await dev.send_deploy(provider, founder.sender(), value=ton(1)), deployed=True).success
    assert (await dev.get_params(provider)).dev_attestation is True
    # owner updates that rewrite the root cell or `more` keep the bit
    for body in (Root.add_model_hash_body(hash=OTHER_HASH), Root.set_close_delay_body(close_delay=7)):
        assert find_tx(founder.send(dev.address, ton("0.1"), body), to=dev.address).success
    params = await dev.get_params(provider)
    assert (params.dev_attestation, params.close_delay) == (True, 7)
    assert await dev.get_is_model_allowed(provider, OTHER_HASH)


async def test_set_router_and_remove(env: Env) -> None:
    res = await env.root.send_set_router(
        env.root_p, env.owner.sender(), value=ton("0.1"), router=addr(5), endpoint="wss://router.example:443"
    )
    assert find_tx(res, to=env.root.address).success
    assert await env.root.get_router_endpoint(env.root_p, addr(5)) == "wss://router.example:443"
    assert await env.root.get_router_endpoint(env.root_p, addr(6)) is None
    env.owner_send(Root.set_router_body(router=addr(5), endpoint=None))
    assert await env.root.get_router_endpoint(env.root_p, addr(5)) is None


@pytest.mark.gas
async def test_set_validators(env: Env, gas_snapshot) -> None:
    keys = [pubkey(k) for k in validator_keys(32, "next")]
    res = await env.root.send_set_validators(
        env.root_p, env.owner.sender(), value=ton("0.1"), validators=keys, threshold=22
    )
    assert find_tx(res, to=env.root.address).success
    gas_snapshot.record("root.set_validators_32", res)
    vs = await env.root.get_validator_set(env.root_p)
    assert vs.validators == set(keys) and (vs.count, vs.threshold) == (32, 22)


@pytest.mark.parametrize(("n", "threshold"), [(3, 0), (3, 4), (0, 1)])
def test_set_validators_rejects_bad_threshold(env: Env, n: int, threshold: int) -> None:
    keys = [pubkey(k) for k in validator_keys(n, "x")]
    res = env.owner_send(Root.set_validators_body(validators=keys, threshold=threshold))
    find_tx(res, to=env.root.address, exit_code=ExitCode.INVALID_THRESHOLD)


def test_set_validators_rejects_too_many(env: Env) -> None:
    keys = list(range(1, MAX_VALIDATORS + 2))
    res = env.owner_send(Root.set_validators_body(validators=keys, threshold=1), value=ton(1))
    find_tx(res, to=env.root.address, exit_code=ExitCode.TOO_MANY_VALIDATORS)


OWNER_ONLY = {
    "set_prices": Root.set_prices_body(compute_unit_price=1, data_unit_price=1),
    "set_splits": Root.set_splits_body(
        compute=ComputeSplit(gpu=7000, router=1500, validator=1000, protocol=500),
        data=DataSplit(bandwidth=7000, router=1500, validator=1000, protocol=500),
    ),
    "set_role_params": Root.set_role_params_body(role=0, min_stake=1, cooldown=1),
    "set_close_delay": Root.set_close_delay_body(close_delay=1),
    "set_dev_attestation": Root.set_dev_attestation_body(allowed=True),
    "set_treasury": Root.set_treasury_body(treasury=addr(9)),
    "set_reward_pool": Root.set_reward_pool_body(reward_pool=addr(9)),
    "add_model_hash": Root.add_model_hash_body(hash=1),
    "remove_model_hash": Root.remove_model_hash_body(hash=MODEL_HASH),
    "add_image_hash": Root.add_image_hash_body(hash=1),
    "remove_image_hash": Root.remove_image_hash_body(hash=IMAGE_HASH),
    "set_validators": Root.set_validators_body(validators=[1], threshold=1),
    "set_router": Root.set_router_body(router=addr(9), endpoint="x"),
    "transfer_ownership": Root.transfer_ownership_body(new_owner=addr(9)),
    "upgrade_code": Root.upgrade_code_body(code=Cell.empty()),
}


@pytest.mark.parametrize("body", OWNER_ONLY.values(), ids=OWNER_ONLY.keys())
def test_owner_operation_from_non_owner_is_rejected(env: Env, body: Cell) -> None:
    mallory = env.bc.treasury("mallory")
    before = env.bc.account(env.root.address).data
    res = mallory.send(env.root.address, ton("0.1"), body)
    find_tx(res, to=env.root.address, exit_code=ExitCode.NOT_OWNER)
    find_tx(res, from_=env.root.address, to=mallory.address, bounced=True)
    assert env.bc.account(env.root.address).data.hash == before.hash


# ---- ownership and upgrade ------------------------------------------------------------------


@pytest.mark.gas
async def test_ownership_transfer_takes_two_steps(env: Env, gas_snapshot) -> None:
    heir = env.bc.treasury("heir")
    res = await env.root.send_transfer_ownership(
        env.root_p, env.owner.sender(), value=ton("0.1"), new_owner=heir.address
    )
    assert find_tx(res, to=env.root.address).success
    data = await env.root.get_root_data(env.root_p)
    assert data.owner == env.owner.address and data.pending_owner == heir.address
    # the old owner still rules until the heir accepts
    assert find_tx(env.owner_send(Root.set_close_delay_body(close_delay=5)), to=env.root.address).success
    res = await env.root.send_accept_ownership(env.root_p, heir.sender(), value=ton("0.1"))
    assert find_tx(res, to=env.root.address).success
    gas_snapshot.record("root.accept_ownership", res)
    data = await env.root.get_root_data(env.root_p)
    assert data.owner == heir.address and data.pending_owner is None
    res = env.owner_send(Root.set_close_delay_body(close_delay=6))
    find_tx(res, to=env.root.address, exit_code=ExitCode.NOT_OWNER)


def test_accept_ownership_from_someone_else_is_rejected(env: Env) -> None:
    mallory = env.bc.treasury("mallory")
    res = mallory.send(env.root.address, ton("0.1"), Root.accept_ownership_body())
    find_tx(res, to=env.root.address, exit_code=ExitCode.NOT_PENDING_OWNER)  # nobody pending
    env.owner_send(Root.transfer_ownership_body(new_owner=env.bc.treasury("heir").address))
    res = mallory.send(env.root.address, ton("0.1"), Root.accept_ownership_body())
    find_tx(res, to=env.root.address, exit_code=ExitCode.NOT_PENDING_OWNER)


async def test_upgrade_code_with_new_data(env: Env) -> None:
    cfg = RootConfig(
        owner=env.bc.treasury("heir").address, treasury=addr(8), provider_code=env.codes.provider, version=41
    )
    res = await env.root.send_upgrade_code(
        env.root_p, env.owner.sender(), value=ton("0.1"), code=env.codes.root, data=root_config_to_cell(cfg)
    )
    assert find_tx(res, to=env.root.address).success
    data = await env.root.get_root_data(env.root_p)
    assert data.owner == env.bc.treasury("heir").address and data.version == 41


def test_upgrade_code_replaces_code(env: Env) -> None:
    other = code_cell("tests/sandbox/contracts/counter.tolk")
    res = env.owner_send(Root.upgrade_code_body(code=other))
    assert find_tx(res, to=env.root.address).success
    assert env.bc.account(env.root.address).code.hash == other.hash


# ---- slashing -------------------------------------------------------------------------------


def _registered(env: Env, name: str = "alice", stake: int = MIN_STAKE):
    who = env.bc.treasury(name)
    p, res = env.register(who, Role.GPU, stake)
    assert env.provider_data(p).state == ProviderState.ACTIVE, res.tree()
    return who, p


@pytest.mark.gas
def test_relay_slash_with_quorum_moves_stake_to_treasury(env: Env, gas_snapshot) -> None:
    _, p = _registered(env)
    relayer = env.bc.treasury("relayer")
    order = env.order(p.address, ton(4), nonce=1, reason=0xBAD)
    sigs = sign_order(order, env.validators[:3])
    treasury_before = env.balance(env.treasury)
    res = relayer.send(env.root.address, SLASH_RELAY_FEE, Root.relay_slash_body(order=order, signatures=sigs))
    tx = find_tx(res, from_=p.address, to=env.treasury.address, op=Op.RECEIVE_SLASHED_STAKE)
    assert tx.value == ton(4)
    assert ReceiveSlashedStake.from_cell(body_of(tx)).reason_hash == 0xBAD
    find_tx(res, from_=p.address, to=relayer.address, op=Op.RETURN_EXCESS)
    gas_snapshot.record("root.relay_slash_3_of_5", res)
    data = env.provider_data(p)
    assert data.stake == MIN_STAKE - ton(4) and data.state == ProviderState.INACTIVE
    assert env.balance(env.treasury) == treasury_before + ton(4) - tx.total_fees
    assert env.bc.run_get_method(env.root.address, "get_root_data").stack[3] == 1


def test_reused_slash_nonce_is_rejected(env: Env) -> None:
    _, p = _registered(env)
    relayer = env.bc.treasury("relayer")
    order = env.order(p.address, ton(1), nonce=5)
    body = Root.relay_slash_body(order=order, signatures=sign_order(order, env.validators[:3]))
    assert find_tx(relayer.send(env.root.address, SLASH_RELAY_FEE, body), to=p.address).success
    res = relayer.send(env.root.address, SLASH_RELAY_FEE, body)
    find_tx(res, to=env.root.address, exit_code=ExitCode.NONCE_USED)
    # a nonce further back than the window is refused even if it was never used
    newer = env.order(p.address, ton(1), nonce=5 + 64)
    body = Root.relay_slash_body(order=newer, signatures=sign_order(newer, env.validators[:3]))
    assert find_tx(relayer.send(env.root.address, SLASH_RELAY_FEE, body), to=p.address).success
    older = env.order(p.address, ton(1), nonce=4)
    res = relayer.send(
        env.root.address,
        SLASH_RELAY_FEE,
        Root.relay_slash_body(order=older, signatures=sign_order(older, env.validators[:3])),
    )
    find_tx(res, to=env.root.address, exit_code=ExitCode.NONCE_USED)
    assert env.provider_data(p).stake == MIN_STAKE - ton(2)


def test_slash_below_threshold_is_rejected(env: Env) -> None:
    _, p = _registered(env)
    order = env.order(p.address, ton(1), nonce=1)
    res = env.bc.treasury("relayer").send(
        env.root.address,
        SLASH_RELAY_FEE,
        Root.relay_slash_body(order=order, signatures=sign_order(order, env.validators[:2])),
    )
    find_tx(res, to=env.root.address, exit_code=ExitCode.NOT_ENOUGH_SIGNATURES)
    assert env.provider_data(p).stake == MIN_STAKE


def test_slash_with_foreign_validator_is_rejected(env: Env) -> None:
    _, p = _registered(env)
    order = env.order(p.address, ton(1), nonce=1)
    sigs = sign_order(order, env.validators[:2] + validator_keys(1, "outsider"))
    res = env.bc.treasury("relayer").send(
        env.root.address, SLASH_RELAY_FEE, Root.relay_slash_body(order=order, signatures=sigs)
    )
    find_tx(res, to=env.root.address, exit_code=ExitCode.UNKNOWN_VALIDATOR)


def test_slash_with_duplicated_signature_is_rejected(env: Env) -> None:
    """One validator's signature reused under other validators' keys counts once: it fails there."""
    _, p = _registered(env)
    order = env.order(p.address, ton(1), nonce=1)
    one = env.validators[0].sign(slash_order_hash(order)).signature
    sigs = {pubkey(k): one for k in env.validators[:3]}
    res = env.bc.treasury("relayer").send(
        env.root.address, SLASH_RELAY_FEE, Root.relay_slash_body(order=order, signatures=sigs)
    )
    find_tx(res, to=env.root.address, exit_code=ExitCode.INVALID_SIGNATURE)
    assert env.provider_data(p).stake == MIN_STAKE


def test_slash_order_for_another_root_is_rejected(env: Env) -> None:
    _, p = _registered(env)
    order = SlashOrder(root=addr(77), target=p.address, amount=ton(1), reason_hash=1, nonce=1)
    res = env.bc.treasury("relayer").send(
        env.root.address,
        SLASH_RELAY_FEE,
        Root.relay_slash_body(order=order, signatures=sign_order(order, env.validators[:3])),
    )
    find_tx(res, to=env.root.address, exit_code=ExitCode.WRONG_ROOT)


def test_slash_with_too_little_value_is_rejected_and_keeps_the_nonce(env: Env) -> None:
    _, p = _registered(env)
    relayer = env.bc.treasury("relayer")
    order = env.order(p.address, ton(1), nonce=1)
    body = Root.relay_slash_body(order=order, signatures=sign_order(order, env.validators[:3]))
    res = relayer.send(env.root.address, SLASH_RELAY_FEE - 1, body)
    find_tx(res, to=env.root.address, exit_code=ExitCode.NOT_ENOUGH_VALUE)
    find_tx(res, from_=env.root.address, to=relayer.address, bounced=True)
    assert find_tx(relayer.send(env.root.address, SLASH_RELAY_FEE, body), to=p.address).success


def test_slash_of_more_than_staked_takes_everything_staked(env: Env) -> None:
    who, p = _registered(env)
    who.send(p.address, ton("0.1"), p.request_unstake_body())
    order = env.order(p.address, ton(1000), nonce=1)
    res = env.bc.treasury("relayer").send(
        env.root.address,
        SLASH_RELAY_FEE,
        Root.relay_slash_body(order=order, signatures=sign_order(order, env.validators[2:])),
    )
    assert find_tx(res, to=env.treasury.address, op=Op.RECEIVE_SLASHED_STAKE).value == MIN_STAKE
    data = env.provider_data(p)
    assert (data.stake, data.unstaking) == (0, 0)
    assert env.balance(p) >= 0


def test_slash_of_a_non_provider_bounces_back_to_root(env: Env) -> None:
    order = env.order(addr(1234), ton(1), nonce=1)
    res = env.bc.treasury("relayer").send(
        env.root.address,
        SLASH_RELAY_FEE,
        Root.relay_slash_body(order=order, signatures=sign_order(order, env.validators[:3])),
    )
    find_tx(res, from_=addr(1234), to=env.root.address, bounced=True, success=True)

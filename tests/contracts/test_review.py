"""Security review of the four contracts: attacks tried against Root, Provider, Channel and
RewardPool.

The first group are the weaknesses the review found (threshold-0 quorum, tiny deposits
draining the pool's reserve, a stake stranded in Root, a relayer taking the owner's spare
balance, a claim dying at the pool without an answer, out-of-range durations, slash nonces
voided by relay order):
each test asserts the fixed behaviour. The rest are attacks the contracts always resisted.
"""

from __future__ import annotations

from pytoniq_core import Cell, begin_cell

from offchain.protocol.epoch import build_report, sign_report, split_revenue
from offchain.protocol.merkle import Leaf, MerkleSumTree
from offchain.ton.blockchain import ton
from offchain.ton.build import code_cell
from offchain.ton.transaction import SendResult, find_tx
from tests.contracts.conftest import IMAGE_HASH, MIN_STAKE, NODE_KEY, Env, sign_order
from tests.contracts.payments import CLOSE_DELAY, PayEnv, fund_pool, provider_claimed, pub, register_provider
from wrappers.channel import CHANNEL_DEPOSIT_FEE, REDEEM_FEE, Channel, ChannelState
from wrappers.errors import ExitCode
from wrappers.messages import ChannelTerms, ComputeSplit, DataSplit, ForwardClaim
from wrappers.opcodes import Op
from wrappers.provider import (
    CLAIM_VALUE,
    PROVIDER_STORAGE_RESERVE,
    REGISTER_FEE,
    SLASH_RELAY_FEE,
    Provider,
    ProviderConfig,
    Role,
)
from wrappers.reward_pool import CLAIM_FEE, EPOCH_REPORT_FEE, RewardPool, RewardPoolConfig
from wrappers.root import RoleParams, Root, RootConfig

SPLIT_C = ComputeSplit(gpu=7000, router=1500, validator=1000, protocol=500)
SPLIT_D = DataSplit(bandwidth=7000, router=1500, validator=1000, protocol=500)
DEPOSIT = ton(10)


def ok(res: SendResult) -> None:
    assert all(t.success for t in res.transactions), res.tree()


def pool_balance(pay: PayEnv, pool: RewardPool | None = None) -> int:
    return pay.bc.account((pool or pay.pool).address).balance


def claim_body(cumulative: int, path: int, proof: Cell) -> Cell:
    return Provider.claim_reward_body(cumulative=cumulative, path=path, proof=proof)


# =============================================================================================
# Findings of the review (all fixed: each test shows the fixed behaviour)
# =============================================================================================


def test_unsigned_epoch_report_is_refused_even_with_threshold_zero(pay: PayEnv) -> None:
    """A Root deployed as `cocoon deploy` does by default (validators = [], threshold = 0),
    its pool set and the config pushed (anyone may push): a stranger posts an epoch report
    without a single signature, giving the whole pot to its own Provider, and claims it."""
    bc = pay.bc
    pool_code = code_cell("RewardPool")
    config = RootConfig(
        owner=pay.owner.address,
        treasury=pay.treasury.address,
        provider_code=pay.provider_code,
        channel_code=pay.channel_code,
        reward_pool_code=pool_code,
        roles={role: RoleParams(min_stake=MIN_STAKE, cooldown=86400) for role in Role},
        image_hashes=[IMAGE_HASH],
        validators=[],
        threshold=0,
        close_delay=CLOSE_DELAY,
    )
    root = Root.create_from_config(config, code_cell("Root"))
    ok(pay.owner.send(root.address, ton(1), None, init=root.init))
    pool = RewardPool.create_from_config(RewardPoolConfig(root.address), pool_code)
    ok(pay.owner.send(pool.address, ton("0.2"), None, init=pool.init))
    ok(pay.owner.send(root.address, ton("0.1"), Root.set_reward_pool_body(reward_pool=pool.address)))
    attacker = bc.treasury("attacker")
    ok(attacker.send(root.address, ton("0.1"), Root.push_pool_config_body()))

    # honest revenue arrives (as a channel's redeem would bring it)
    ok(pay.client.send(pool.address, ton(10) + ton("0.005"), RewardPool.deposit_revenue_body(compute=ton(10), data=0)))

    # the attacker registers a Provider and posts an unsigned report giving itself everything
    body = Root.register_provider_body(role=Role.BANDWIDTH, stake=MIN_STAKE, node_key=NODE_KEY, endpoint="x")
    ok(attacker.send(root.address, MIN_STAKE + REGISTER_FEE + PROVIDER_STORAGE_RESERVE, body))
    p = Provider.create_from_config(ProviderConfig(root.address, attacker.address, Role.BANDWIDTH), pay.provider_code)
    providers = split_revenue(ton(10), 0, SPLIT_C, SPLIT_D).providers
    tree = MerkleSumTree([Leaf(p.address, Role.BANDWIDTH, providers)])
    report = build_report(pool.address, 1, compute_consumed=ton(10), data_consumed=0, tree=tree)
    res = attacker.send(pool.address, EPOCH_REPORT_FEE, RewardPool.post_epoch_report_body(report=report, signatures={}))
    accepted = find_tx(res, to=pool.address, op=Op.POST_EPOCH_REPORT).success
    if accepted:
        before = bc.account(attacker.address).balance
        proof = tree.proof(0)
        attacker.send(p.address, ton("0.1"), claim_body(proof.cumulative, proof.path, proof.cell))
        stolen = bc.account(attacker.address).balance - before
        assert stolen > ton(9), stolen  # the whole provider share of the pot
    assert not accepted, "an epoch report with no signature at all was accepted"


def test_exact_value_deposits_cannot_make_the_pool_insolvent(pay: PayEnv) -> None:
    """After an epoch report swept the surplus to the treasury (the pool keeps owed + 0.1 TON),
    DepositRevenue whose value only equals the declared amounts would make the pool pay its
    gas from money it owes (~140 of them and it would owe more than it holds): refused."""
    fund_pool(pay, ton(10), ton(4))
    who = pay.bc.treasury("honest-gpu")
    p = register_provider(pay, who, Role.GPU)
    split = split_revenue(ton(10), ton(4), SPLIT_C, SPLIT_D)
    tree = MerkleSumTree([Leaf(p.address, Role.GPU, split.gpu)])  # the rest is carried, owed all the same
    pay.adopt(tree, compute=ton(10), data=ton(4))
    d = pay.pool_data()
    assert pool_balance(pay) >= d.owed  # solvent after the sweep, with the storage reserve only

    attacker = pay.bc.treasury("griefer")
    amount = ton("0.001")
    body = RewardPool.deposit_revenue_body(compute=amount, data=0)
    for _ in range(20):
        res = pay.bc.send_internal(src=attacker.address, to=pay.pool.address, value=amount, body=body)
        find_tx(res, to=pay.pool.address, exit_code=ExitCode.DEPOSIT_VALUE_MISMATCH)
    d = pay.pool_data()
    assert pool_balance(pay) >= d.owed, f"balance {pool_balance(pay)} < owed {d.owed}"


def junk_proof(levels: int) -> Cell:
    """A 4-ary tree of full cells `levels` deep (depth within MAX_PROOF_DEPTH): the pool reads
    none of it, but every cell is forwarded and paid for."""
    counter = iter(range(1 << 20))

    def node(level: int) -> Cell:
        b = begin_cell().store_uint(next(counter), 32).store_bits("1" * 991)  # distinct cells
        for _ in range(4 if level else 0):
            b = b.store_ref(node(level - 1))
        return b.end_cell()

    return node(levels)


def test_a_claim_dragging_junk_cells_always_bounces_back_to_the_record(pay: PayEnv) -> None:
    """The Provider records a claim before the pool answers, so a claim must never die at the
    pool without a bounce (the old design's claim lock got stuck that way; the record would
    now stay up without payment). A proof dragging ~0.04 TON of cells the pool never reads:
    CLAIM_FEE alone is refused at the Provider (the forward fee is counted on top); with
    enough value the pool refuses and the bounce takes the record back."""
    who = pay.bc.treasury("junk")
    p = register_provider(pay, who, Role.GPU)
    proof = junk_proof(3)
    res = who.send(p.address, CLAIM_FEE, claim_body(1, 1, proof))
    claim = find_tx(res, to=p.address, op=Op.CLAIM_REWARD)
    assert claim.exit_code == ExitCode.NOT_ENOUGH_VALUE, res.tree()
    assert claim.in_message is not None and claim.in_message.fwd_fee > ton("0.02")  # what the cells cost
    res = who.send(p.address, CLAIM_FEE + ton("0.1"), claim_body(1, 1, proof))
    find_tx(res, to=pay.pool.address, exit_code=ExitCode.INVALID_PROOF)
    find_tx(res, from_=pay.pool.address, to=p.address, bounced=True, success=True)
    assert provider_claimed(pay, p) == 0

    # a genuine reward for this Provider is paid as usual
    fund_pool(pay, ton(1), 0)
    tree = MerkleSumTree([Leaf(p.address, Role.GPU, ton("0.5"))])
    pay.adopt(tree, compute=ton(1))
    res = pay.claim(who, p, tree.proof(0))
    find_tx(res, from_=pay.pool.address, to=who.address, op=Op.RECEIVE_REWARD)
    assert provider_claimed(pay, p) == ton("0.5")


def test_a_forged_bounce_cannot_take_the_record_back(pay: PayEnv) -> None:
    """A bounced ForwardClaim lowers the record by its payout, which would let the owner claim
    the same earnings again: only one coming from the pool counts."""
    from offchain.ton.messages import internal_message

    fund_pool(pay, ton(1), 0)
    who = pay.bc.treasury("bouncer")
    p = register_provider(pay, who, Role.GPU)
    tree = MerkleSumTree([Leaf(p.address, Role.GPU, ton("0.5"))])
    pay.adopt(tree, compute=ton(1))
    ok(pay.claim(who, p, tree.proof(0)))
    assert provider_claimed(pay, p) == ton("0.5")
    fake = ForwardClaim(
        query_id=0,
        payout=ton("0.5"),
        cumulative=ton("0.5"),
        owner=who.address,
        role=Role.GPU,
        path=1,
        proof=Cell.empty(),
    ).to_cell()
    body = begin_cell().store_uint(0xFFFFFFFF, 32).store_bits(fake.begin_parse().load_bits(256)).end_cell()
    msg = internal_message(src=who.address, dest=p.address, value=ton("0.1"), body=body, bounced=True)
    res = pay.bc.send_message(msg)
    find_tx(res, to=p.address, exit_code=ExitCode.NOT_FROM_REWARD_POOL)
    assert provider_claimed(pay, p) == ton("0.5")
    res = pay.claim(who, p, tree.proof(0))
    find_tx(res, to=p.address, exit_code=ExitCode.NOTHING_TO_CLAIM)


def test_relaying_a_later_order_first_does_not_void_an_earlier_one(env: Env) -> None:
    """Validators sign order #7 (slash A) and order #8 (slash B) together. A sees both and
    relays #8 first; #7 is then refused (nonce used) and A keeps its stake until new
    signatures are gathered — time enough to unstake and, after the cooldown, withdraw."""
    a_who, b_who = env.bc.treasury("accused-a"), env.bc.treasury("b")
    a, _ = env.register(a_who, Role.BANDWIDTH)
    b, _ = env.register(b_who, Role.BANDWIDTH)
    quorum = env.validators[:3]
    order_a = env.order(a.address, ton(5), nonce=7)
    order_b = env.order(b.address, ton(5), nonce=8)
    relay = Root.relay_slash_body
    ok(a_who.send(env.root.address, SLASH_RELAY_FEE, relay(order=order_b, signatures=sign_order(order_b, quorum))))
    res = env.owner.send(
        env.root.address, SLASH_RELAY_FEE, relay(order=order_a, signatures=sign_order(order_a, quorum))
    )
    find_tx(res, to=env.root.address, success=True)
    assert env.provider_data(a).stake == MIN_STAKE - ton(5)


def test_a_huge_cooldown_does_not_lock_the_stake_forever(env: Env) -> None:
    """A cooldown (or close delay) that could overflow `now + delay` is refused at Root."""
    res = env.owner_send(Root.set_role_params_body(role=Role.ROUTER, min_stake=MIN_STAKE, cooldown=2**32 - 1))
    find_tx(res, to=env.root.address, exit_code=ExitCode.PARAM_OUT_OF_RANGE)
    res = env.owner_send(Root.set_close_delay_body(close_delay=2**32 - 1))
    find_tx(res, to=env.root.address, exit_code=ExitCode.PARAM_OUT_OF_RANGE)
    ok(env.owner_send(Root.set_role_params_body(role=Role.ROUTER, min_stake=MIN_STAKE, cooldown=366 * 86400)))
    who = env.bc.treasury("router-op")
    p, res = env.register(who, Role.ROUTER)
    ok(res)
    res = who.send(p.address, ton("0.05"), Provider.request_unstake_body())
    find_tx(res, to=p.address, op=Op.REQUEST_UNSTAKE, success=True)


def test_slash_relayer_does_not_take_the_owners_spare_balance(env: Env) -> None:
    """The owner tops the Provider up with a plain transfer (the contract says the next Stake
    or slash returns it). A validator-signed slash of 1 TON is relayed by a stranger (anyone
    may relay): the stranger's excess carries the owner's 5 TON too."""
    who = env.bc.treasury("owner-topup")
    p, _ = env.register(who, Role.BANDWIDTH)
    ok(who.send(p.address, ton(5), None))
    order = env.order(p.address, ton(1), nonce=1)
    relayer = env.bc.treasury("relayer")
    before = env.balance(relayer)
    body = Root.relay_slash_body(order=order, signatures=sign_order(order, env.validators[:3]))
    ok(relayer.send(env.root.address, SLASH_RELAY_FEE, body))
    gained = env.balance(relayer) - before
    assert gained < ton(1), f"the relayer gained {gained} nanoTON of the owner's money"


def test_registration_with_a_long_endpoint_does_not_strand_the_stake_in_root(env: Env) -> None:
    """The owner attaches exactly what the wrapper documents (stake + REGISTER_FEE + reserve)
    and a 12,000-character endpoint. Before: ConfirmRegistration's forwarding fee ate into the
    stake, the deploy failed and bounced to Root, which kept the 10 TON. Then: the Provider
    refused the shortfall. Now Root refuses a NodeInfo that large (deeper than
    MAX_NODE_INFO_DEPTH) at once and everything comes back."""
    from tests.contracts.conftest import body_of
    from wrappers.messages import RefuseRegistration

    who = env.bc.treasury("long-endpoint")
    body = Root.register_provider_body(role=Role.BANDWIDTH, stake=MIN_STAKE, node_key=1, endpoint="x" * 12_000)
    before = env.balance(who)
    res = who.send(env.root.address, MIN_STAKE + REGISTER_FEE + PROVIDER_STORAGE_RESERVE, body)
    refusal = find_tx(res, from_=env.root.address, to=who.address, op=Op.REFUSE_REGISTRATION)
    assert RefuseRegistration.from_cell(body_of(refusal)).reason == ExitCode.NODE_INFO_TOO_LARGE
    assert before - env.balance(who) < ton("0.1")  # what forwarding 12 kB to Root cost, no more


# =============================================================================================
# Attacks the contracts resist
# =============================================================================================


def open_channel(pay: PayEnv, deposit: int = DEPOSIT) -> Channel:
    ch, _ = pay.open_channel(deposit)
    assert pay.channel_data(ch).state == ChannelState.OPEN
    return ch


def test_voucher_for_one_channel_cannot_be_redeemed_on_another_of_the_same_client(pay: PayEnv) -> None:
    """Same client key, two routers: a voucher is bound to the channel address it names."""
    ch1 = open_channel(pay)
    router2 = pay.bc.treasury("router-2")
    ch2 = pay.channel(router=router2)
    pay.open_channel(DEPOSIT, channel=ch2)
    v = pay.voucher(ch1, ton(1), 0)
    res = pay.redeem(ch2, v, by=router2)
    find_tx(res, to=ch2.address, exit_code=ExitCode.BAD_VOUCHER_SIGNATURE)
    assert pay.channel_data(ch2).redeemed_compute == 0


def test_close_approval_signature_is_not_a_voucher_and_vice_versa(pay: PayEnv) -> None:
    """Client and router sharing one key would not let a CloseApproval pass as a Voucher:
    the two structs carry different opcodes, so their hashes differ."""
    ch = open_channel(pay)
    # the router's approval presented as a client voucher
    sig = pay.approval(ch, ton(1), 0, signer=pay.client_key)
    body = Channel.redeem_voucher_body(compute=ton(1), data=0, signature=sig)
    res = pay.router.send(ch.address, REDEEM_FEE, body)
    find_tx(res, to=ch.address, exit_code=ExitCode.BAD_VOUCHER_SIGNATURE)
    # a client voucher presented as the router's close approval
    v = pay.voucher(ch, 0, 0, signer=pay.router_key)
    body = Channel.cooperative_close_body(compute=0, data=0, signature=v.signature)
    res = pay.client.send(ch.address, ton("0.05"), body)
    find_tx(res, to=ch.address, exit_code=ExitCode.BAD_CLOSE_SIGNATURE)
    assert pay.channel_data(ch).state == ChannelState.OPEN


def test_split_voucher_cannot_move_value_between_compute_and_data_to_overdraw(pay: PayEnv) -> None:
    """Compute and data only grow and their sum stays under the deposit: a voucher lowering
    one total to raise the other is stale, and the sum is bounded."""
    ch = open_channel(pay)
    ok(pay.redeem(ch, pay.voucher(ch, ton(6), 0)))
    res = pay.redeem(ch, pay.voucher(ch, 0, ton(8)))
    find_tx(res, to=ch.address, exit_code=ExitCode.STALE_VOUCHER)
    res = pay.redeem(ch, pay.voucher(ch, ton(6), ton(4) + 1))
    find_tx(res, to=ch.address, exit_code=ExitCode.VOUCHER_EXCEEDS_DEPOSIT)
    d = pay.channel_data(ch)
    assert d.redeemed_compute + d.redeemed_data <= d.deposit


def test_closed_channel_cannot_be_refilled_to_replay_old_vouchers(pay: PayEnv) -> None:
    ch = open_channel(pay)
    v = pay.voucher(ch, ton(3), 0)
    ok(pay.redeem(ch, v))
    ok(pay.client.send(ch.address, ton("0.05"), Channel.start_close_body()))
    pay.bc.now += CLOSE_DELAY
    ok(pay.client.send(ch.address, ton("0.05"), Channel.finish_close_body()))
    # the client deposits again (refused), the router replays an old voucher (refused)
    res = pay.client.send(ch.address, ton(5), Channel.deposit_body())
    find_tx(res, to=ch.address, exit_code=ExitCode.CHANNEL_NOT_OPEN)
    res = pay.redeem(ch, pay.voucher(ch, ton(4), 0))
    find_tx(res, to=ch.address, exit_code=ExitCode.CHANNEL_NOT_OPEN)
    assert pay.channel_data(ch).state == ChannelState.CLOSED


def test_fake_root_terms_are_refused_by_an_open_channel(pay: PayEnv) -> None:
    """ChannelTerms naming another pool, from a stranger or replayed by Root's address after
    the channel is open: never re-routes the router's redeems."""
    ch = open_channel(pay)
    evil = pay.bc.treasury("evil")
    terms = ChannelTerms(query_id=0, close_delay=0, reward_pool=evil.address).to_cell()
    res = evil.send(ch.address, ton("0.05"), terms)
    find_tx(res, to=ch.address, exit_code=ExitCode.NOT_FROM_ROOT)
    res = pay.bc.send_internal(src=pay.root.address, to=ch.address, value=ton("0.05"), body=terms)
    find_tx(res, to=ch.address, exit_code=ExitCode.ALREADY_CONFIGURED)
    d = pay.channel_data(ch)
    assert d.reward_pool == pay.pool.address and d.close_delay == CLOSE_DELAY


def test_redeems_keep_the_channel_covering_the_unredeemed_deposit(pay: PayEnv) -> None:
    """A router redeeming one nanoTON at a time with the least value: the channel's balance
    never falls below deposit - redeemed (the router pays every fee)."""
    ch = open_channel(pay, ton(1))
    for i in range(1, 21):
        ok(pay.redeem(ch, pay.voucher(ch, i, 0)))
        d = pay.channel_data(ch)
        assert pay.bc.account(ch.address).balance >= d.deposit - d.redeemed_compute - d.redeemed_data


def test_provider_of_another_root_cannot_claim_from_this_pool(pay: PayEnv) -> None:
    """A Provider deployed with the real code but a fake `root` is not this pool's Provider,
    however its owner names itself in the ForwardClaim."""
    who = pay.bc.treasury("forger")
    fake = Provider.create_from_config(ProviderConfig(who.address, who.address, Role.GPU), pay.provider_code)
    ok(who.send(fake.address, ton("0.1"), None, init=fake.init))
    res = pay.bc.send_internal(
        src=fake.address,
        to=pay.pool.address,
        value=ton("0.1"),
        body=ForwardClaim(
            query_id=0,
            payout=1,
            cumulative=1,
            owner=who.address,
            role=Role.GPU,
            path=1,
            proof=Cell.empty(),
        ).to_cell(),
    )
    find_tx(res, to=pay.pool.address, exit_code=ExitCode.NOT_A_PROVIDER)


def test_provider_cannot_lie_about_its_role_to_take_another_roles_leaf(pay: PayEnv) -> None:
    """The leaf binds (Provider address, role) and the address binds the role: the gpu Provider
    of an owner cannot claim the bandwidth leaf of the same owner (or vice versa)."""
    fund_pool(pay, ton(10), ton(4))
    who = pay.bc.treasury("two-roles")
    gpu = register_provider(pay, who, Role.GPU)
    tree = MerkleSumTree([Leaf(gpu.address, Role.BANDWIDTH, ton(1))])
    pay.adopt(tree, compute=ton(10), data=ton(4))
    res = pay.claim(who, gpu, tree.proof(0))
    find_tx(res, to=pay.pool.address, exit_code=ExitCode.INVALID_PROOF)
    assert provider_claimed(pay, gpu) == 0


def test_path_beyond_the_tree_is_refused_and_the_honest_claim_still_pays(pay: PayEnv) -> None:
    fund_pool(pay, ton(10), 0)
    who = pay.bc.treasury("idx")
    p = register_provider(pay, who, Role.GPU)
    tree = MerkleSumTree([Leaf(p.address, Role.GPU, ton(1))], depth=2)
    pay.adopt(tree, compute=ton(10))
    proof = tree.proof(0)
    res = who.send(p.address, CLAIM_VALUE, claim_body(proof.cumulative, proof.path << 2, proof.cell))
    assert find_tx(res, to=pay.pool.address).exit_code == 9  # the VM's cell underflow: no 5th level
    assert provider_claimed(pay, p) == 0  # the bounce took the record back
    ok(pay.claim(who, p, proof))
    assert provider_claimed(pay, p) == ton(1)


def test_subtree_node_cannot_be_claimed_as_a_leaf(pay: PayEnv) -> None:
    """Second-preimage: stop the path one level early and claim an inner node's sum as if
    that node were a leaf. A leaf is the cell without references, so it never matches."""
    fund_pool(pay, ton(10), 0)
    who = pay.bc.treasury("node")
    p = register_provider(pay, who, Role.GPU)
    others = [Leaf(pay.bc.treasury(f"o{i}").address, Role.GPU, 1000 + i) for i in range(3)]
    tree = MerkleSumTree([Leaf(p.address, Role.GPU, 500), *others], depth=2)
    pay.adopt(tree, compute=ton(10))
    full = tree.proof(0)
    # the whole first subtree's sum, with the path stopped at that subtree's node
    res = who.send(p.address, CLAIM_VALUE, claim_body(tree.root_total, 0b100, full.cell))
    find_tx(res, to=pay.pool.address, exit_code=ExitCode.INVALID_PROOF)
    assert provider_claimed(pay, p) == 0


def test_epoch_report_signed_for_another_pool_or_replayed_is_refused(pay: PayEnv) -> None:
    fund_pool(pay, ton(2), 0)
    who = pay.bc.treasury("r")
    p = register_provider(pay, who, Role.GPU)
    tree = MerkleSumTree([Leaf(p.address, Role.GPU, ton("0.5"))])
    report = build_report(pay.pool.address, 1, compute_consumed=ton(1), data_consumed=0, tree=tree)
    sigs = sign_report(report, pay.validators[:3])
    ok(pay.post_report(report, sigs))
    # the same report again, and a copy with a higher epoch but the old signatures
    res = pay.post_report(report, sigs)
    find_tx(res, to=pay.pool.address, exit_code=ExitCode.EPOCH_NOT_NEW)
    later = build_report(pay.pool.address, 2, compute_consumed=ton(1), data_consumed=0, tree=tree)
    res = pay.post_report(later, sigs)
    find_tx(res, to=pay.pool.address, exit_code=ExitCode.INVALID_SIGNATURE)
    assert pay.pool_data().compute_pot == ton(1)


def test_claim_paid_once_even_if_a_later_tree_repeats_the_leaf(pay: PayEnv) -> None:
    """Epoch 2's tree keeps the provider's cumulative unchanged: nothing more to claim."""
    fund_pool(pay, ton(2), 0)
    who = pay.bc.treasury("once")
    p = register_provider(pay, who, Role.GPU)
    tree = MerkleSumTree([Leaf(p.address, Role.GPU, ton(1))])
    for epoch in (1, 2):
        report = build_report(
            pay.pool.address, epoch, compute_consumed=0 if epoch == 2 else ton(2), data_consumed=0, tree=tree
        )
        ok(pay.post_report(report, sign_report(report, pay.validators[:3])))
        res = pay.claim(who, p, tree.proof(0))
        if epoch == 1:
            ok(res)
        else:
            find_tx(res, to=p.address, exit_code=ExitCode.NOTHING_TO_CLAIM)
    assert provider_claimed(pay, p) == ton(1) and pay.pool_data().claimed == ton(1)
    assert pool_balance(pay) >= pay.pool_data().owed


def test_slash_cannot_be_dodged_by_unstaking(env: Env) -> None:
    """Unstaking moves the stake out of `stake`, but a slash takes from `unstaking` too."""
    who = env.bc.treasury("dodger")
    p, _ = env.register(who, Role.BANDWIDTH)
    ok(who.send(p.address, ton("0.05"), Provider.request_unstake_body()))
    order = env.order(p.address, ton(4), nonce=1)
    body = Root.relay_slash_body(order=order, signatures=sign_order(order, env.validators[:3]))
    ok(env.owner.send(env.root.address, SLASH_RELAY_FEE, body))
    d = env.provider_data(p)
    assert d.stake == 0 and d.unstaking == MIN_STAKE - ton(4)


def test_withdraw_cannot_take_more_than_unstaked_or_before_the_cooldown(env: Env) -> None:
    who = env.bc.treasury("w")
    p, _ = env.register(who, Role.BANDWIDTH)
    res = who.send(p.address, ton("0.05"), Provider.withdraw_body(amount=1))
    find_tx(res, to=p.address, exit_code=ExitCode.AMOUNT_EXCEEDS_UNLOCKED)
    ok(who.send(p.address, ton("0.05"), Provider.request_unstake_body()))
    res = who.send(p.address, ton("0.05"), Provider.withdraw_body(amount=MIN_STAKE))
    find_tx(res, to=p.address, exit_code=ExitCode.COOLDOWN_NOT_OVER)
    env.bc.now += 7 * 86400
    res = who.send(p.address, ton("0.05"), Provider.withdraw_body(amount=MIN_STAKE + 1))
    find_tx(res, to=p.address, exit_code=ExitCode.AMOUNT_EXCEEDS_UNLOCKED)
    ok(who.send(p.address, ton("0.05"), Provider.withdraw_body(amount=MIN_STAKE)))
    assert env.provider_data(p).unstaking == 0
    assert env.balance(p) > 0  # the storage reserve stays


def test_register_for_someone_else_deploys_only_the_senders_provider(env: Env) -> None:
    """Root deploys the Provider of (sender, role): registering cannot touch another owner's."""
    victim, attacker = env.bc.treasury("victim"), env.bc.treasury("attacker")
    vp, _ = env.register(victim, Role.BANDWIDTH)
    ap, _ = env.register(attacker, Role.BANDWIDTH, stake=MIN_STAKE)
    assert vp.address != ap.address
    assert env.provider_data(vp).owner == victim.address
    assert env.provider_data(ap).owner == attacker.address


def test_request_channel_terms_for_parties_the_sender_is_not(pay: PayEnv) -> None:
    """A wallet asking Root for terms naming real parties is not their channel."""
    from wrappers.messages import ChannelKeys, ChannelParties, RequestChannelTerms

    parties = ChannelParties(
        root=pay.root.address,
        client=pay.client.address,
        router=pay.router.address,
        keys=ChannelKeys(client_key=pub(pay.client_key), router_key=pub(pay.router_key)),
    )
    evil = pay.bc.treasury("evil")
    res = evil.send(pay.root.address, ton("0.05"), RequestChannelTerms(query_id=0, parties=parties).to_cell())
    find_tx(res, to=pay.root.address, exit_code=ExitCode.NOT_A_CHANNEL)


def test_relay_slash_signed_by_validators_for_another_root_is_refused(env: Env) -> None:
    who = env.bc.treasury("x")
    p, _ = env.register(who, Role.BANDWIDTH)
    from wrappers.messages import SlashOrder

    order = SlashOrder(root=who.address, target=p.address, amount=ton(1), reason_hash=1, nonce=1)
    body = Root.relay_slash_body(order=order, signatures=sign_order(order, env.validators[:3]))
    res = env.owner.send(env.root.address, SLASH_RELAY_FEE, body)
    find_tx(res, to=env.root.address, exit_code=ExitCode.WRONG_ROOT)
    assert env.provider_data(p).stake == MIN_STAKE


def test_close_approval_for_one_channel_does_not_close_another(pay: PayEnv) -> None:
    """Same router key, two clients' channels: an approval names its channel's address."""
    ch1 = open_channel(pay)
    other = pay.bc.treasury("client-2")
    ch2 = pay.channel(client=other)
    ok(other.send(ch2.address, DEPOSIT + CHANNEL_DEPOSIT_FEE, Channel.deposit_body(), init=ch2.init))
    sig = pay.approval(ch1, 0, 0)
    res = other.send(ch2.address, ton("0.05"), Channel.cooperative_close_body(compute=0, data=0, signature=sig))
    find_tx(res, to=ch2.address, exit_code=ExitCode.BAD_CLOSE_SIGNATURE)
    assert pay.channel_data(ch2).state == ChannelState.OPEN


def test_unsigned_or_under_signed_report_is_refused_with_a_real_threshold(pay: PayEnv) -> None:
    """With the validator set configured (threshold 3 of 5), the attack of the first finding fails."""
    fund_pool(pay, ton(10), 0)
    who = pay.bc.treasury("greedy")
    p = register_provider(pay, who, Role.GPU)
    tree = MerkleSumTree([Leaf(p.address, Role.GPU, ton(9))])
    report = build_report(pay.pool.address, 1, compute_consumed=ton(10), data_consumed=0, tree=tree)
    for sigs in ({}, sign_report(report, pay.validators[:2])):
        res = pay.post_report(report, sigs, by=who)
        find_tx(res, to=pay.pool.address, exit_code=ExitCode.NOT_ENOUGH_SIGNATURES)
    assert pay.pool_data().epoch == 0


def test_the_least_value_a_provider_accepts_pays_the_deepest_claim_or_its_bounce(pay: PayEnv) -> None:
    """The Provider accepts a claim from CLAIM_FEE + the claim's own forward fee. At exactly the
    least value it accepts, the deepest proof a claim can carry (31 levels: the path is a
    uint64) is still paid, and a refused one still bounces back to the record."""
    from dataclasses import replace

    fund_pool(pay, ton(1), 0)
    who = pay.bc.treasury("deepest")
    p = register_provider(pay, who, Role.GPU)
    tree = MerkleSumTree([Leaf(p.address, Role.GPU, ton("0.5"))], depth=31)
    pay.adopt(tree, compute=ton(1))
    proof = tree.proof(0)
    snap = pay.bc.snapshot()

    def accepted(value: int, claim: object = proof) -> SendResult | None:
        pay.bc.load_from(snap)
        res = pay.claim(who, p, claim, value=value)  # type: ignore[arg-type]
        return None if find_tx(res, to=p.address).exit_code == ExitCode.NOT_ENOUGH_VALUE else res

    lo, hi = CLAIM_FEE, CLAIM_VALUE  # refused at lo, accepted at hi
    assert accepted(lo) is None and accepted(hi) is not None
    while hi - lo > 1000:
        mid = (lo + hi) // 2
        lo, hi = (lo, mid) if accepted(mid) is not None else (mid, hi)
    paid = accepted(hi)
    assert paid is not None
    find_tx(paid, from_=pay.pool.address, to=who.address, op=Op.RECEIVE_REWARD)
    assert provider_claimed(pay, p) == ton("0.5")
    refused = accepted(hi, replace(proof, leaf=replace(proof.leaf, total=ton("0.4"))))
    assert refused is not None
    find_tx(refused, to=pay.pool.address, exit_code=ExitCode.INVALID_PROOF)
    find_tx(refused, from_=pay.pool.address, to=p.address, bounced=True, success=True)
    assert provider_claimed(pay, p) == 0
    pay.bc.load_from(snap)


def test_a_merkle_proof_cell_whose_hash_lies_never_reaches_the_pool(pay: PayEnv) -> None:
    """The pool trusts the hash inside a Merkle-proof cell because the VM checks it against the
    content whenever it loads one (a BOC, or a cell a contract builds). A forged proof that
    names the real root over a made-up tree (one leaf worth the whole root total) is refused
    before any contract runs: the message cannot even be decoded."""
    import pytest
    from pytoniq_core import Builder

    from offchain.protocol.merkle import leaf_cell

    fund_pool(pay, ton(100), 0)
    who = pay.bc.treasury("forger")
    p = register_provider(pay, who, Role.GPU)
    tree = MerkleSumTree([Leaf(p.address, Role.GPU, ton(1)), Leaf(who.address, Role.GPU, ton(50))])
    pay.adopt(tree, compute=ton(100))
    # a well-formed node (sums 3, 2, 1 are zero, child 0's is everything) over the forged leaf:
    # only its hash gives it away
    inner = begin_cell().store_uint(0, 3 * 128).store_uint(tree.root_total, 128)
    inner = inner.store_ref(leaf_cell(p.address, Role.GPU, tree.root_total)).end_cell()
    assert inner.get_hash(0) != tree.root_hash
    fake = Builder(type_=3).store_uint(3, 8).store_bytes(tree.root_hash).store_uint(inner.get_depth(0), 16)
    fake = fake.store_ref(inner).end_cell()
    body = Provider.claim_reward_body(cumulative=tree.root_total, path=0b100, proof=fake)
    with pytest.raises(ValueError, match="malformed BOC"):
        who.send(p.address, ton("0.2"), body)
    assert provider_claimed(pay, p) == 0 and pay.pool_data().claimed == 0

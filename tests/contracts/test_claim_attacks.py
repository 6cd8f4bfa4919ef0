"""Attacks on the claim path (a second review, after claims moved to Merkle-proof cells).

Three were real and are fixed; each test shows the fixed behaviour:
- a huge NodeInfo (any role) ran an abandoned Provider into storage debt within months; the
  chain deleted it, and a Provider deployed again at that address started from a zero claim
  record, so its old leaf paid twice. Root now refuses NodeInfo deeper than 2 (21 cells);
- a payout the pool's balance could not cover failed in the action phase without bouncing,
  so the Provider's record stayed up with nothing paid; the payout now bounces on failure;
- a Provider in storage debt lost the bounce of a refused claim to that debt; claims now
  need the Provider's own balance to hold CLAIM_MIN_OWN_BALANCE.
The rest are attacks the claim path resisted (odd trees validators could sign, races).
"""

from __future__ import annotations

from dataclasses import replace

from pytoniq_core import Builder, Cell, begin_cell

from offchain.protocol.epoch import sign_report
from offchain.protocol.merkle import Leaf, MerkleSumTree, _merkle_proof, _pruned, leaf_cell
from offchain.ton.blockchain import ton
from offchain.ton.messages import message_relaxed
from offchain.ton.transaction import SendResult, find_tx, raw
from tests.contracts.conftest import COOLDOWN, MIN_STAKE, body_of
from tests.contracts.payments import PayEnv, fund_pool, provider_claimed, register_provider
from wrappers.errors import ExitCode
from wrappers.messages import EpochReport, RefuseRegistration
from wrappers.opcodes import Op
from wrappers.provider import CLAIM_VALUE, PROVIDER_STORAGE_RESERVE, REGISTER_FEE, Provider, ProviderConfig, Role
from wrappers.reward_pool import RewardPool

YEAR = 365 * 86400


def claimed_raw(pay: PayEnv, p: Provider) -> int:
    """ProviderStorage.claimed read from the data cell (the getter needs a well-formed NodeInfo)."""
    s = pay.bc.account(p.address).data.begin_parse()
    s.load_address(), s.load_address(), s.load_uint(8), s.load_uint(8), s.load_coins(), s.load_coins()
    s.load_uint(32)
    return s.load_coins()


def ok(res: SendResult) -> None:
    assert all(t.success for t in res.transactions), res.tree()


def pool_balance(pay: PayEnv) -> int:
    return pay.bc.account(pay.pool.address).balance


def solvent(pay: PayEnv) -> bool:
    return pool_balance(pay) >= pay.pool_data().owed


def report_of(pay: PayEnv, epoch: int, c: int, root: Cell | MerkleSumTree, root_total: int) -> EpochReport:
    """A report adopting any tree (validators choose it), with `c` compute consumed: `root`
    is the root cell of a hand-made tree, or a tree the off-chain code built."""
    if isinstance(root, MerkleSumTree):
        root_hash, root_node = root.root_hash, root.root_node_proof()
    else:
        root_hash, root_node = root.get_hash(0), prove(root, [])
    return EpochReport(
        pool=pay.pool.address,
        epoch=epoch,
        compute_consumed=c,
        data_consumed=0,
        merkle_root=int.from_bytes(root_hash, "big"),
        root_total=root_total,
        root_node=root_node,
    )


def adopt(pay: PayEnv, epoch: int, c: int, root: Cell | MerkleSumTree, root_total: int) -> SendResult:
    report = report_of(pay, epoch, c, root, root_total)
    res = pay.post_report(report, sign_report(report, pay.validators[:3]))
    find_tx(res, to=pay.pool.address, op=Op.POST_EPOCH_REPORT, success=True)
    return res


def claim_raw(pay: PayEnv, who, p: Provider, cumulative: int, path: int, proof: Cell, value: int = CLAIM_VALUE):
    return who.send(p.address, value, Provider.claim_reward_body(cumulative=cumulative, path=path, proof=proof))


def received_rewards(pay: PayEnv, res: SendResult, who) -> int:
    return sum(
        t.value
        for t in res.transactions
        if t.src == raw(pay.pool.address) and t.dst == raw(who.address) and t.op == Op.RECEIVE_REWARD
    )


# =============================================================================================
# 1. A Provider account deleted for storage debt comes back with claimed = 0
# =============================================================================================


def _withdraw_everything(pay: PayEnv, who, p: Provider) -> None:
    ok(who.send(p.address, ton("0.05"), Provider.request_unstake_body()))
    pay.bc.now += COOLDOWN
    ok(who.send(p.address, ton("0.05"), Provider.withdraw_body(amount=MIN_STAKE)))


def _bloated_node(n_cells: int) -> Cell:
    """An arbitrary cell tree as NodeInfo (Root parses NodeInfo for gpu only)."""
    counter = iter(range(1 << 30))

    def build(n: int) -> Cell:
        b = begin_cell().store_uint(next(counter), 32).store_bits("1" * 200)
        n -= 1
        kids = []
        for i in range(4):
            share = n // 4 + (1 if i < n % 4 else 0)
            if share:
                kids.append(build(share))
        for k in kids:
            b.store_ref(k)
        return b.end_cell()

    return build(n_cells)


def _register_with_node(pay: PayEnv, who, role: int, node: Cell) -> SendResult:
    # RegisterProvider by hand: opcode, queryId, role, stake, node (any cell)
    b = begin_cell().store_uint(Op.REGISTER_PROVIDER, 32).store_uint(0, 64).store_uint(role, 8)
    body = b.store_coins(MIN_STAKE).store_ref(node).end_cell()
    return who.send(pay.root.address, MIN_STAKE + REGISTER_FEE + PROVIDER_STORAGE_RESERVE + ton(5), body)


def test_a_huge_node_info_is_refused_so_an_abandoned_provider_is_not_deleted_for_decades(pay: PayEnv) -> None:
    """FIXED. With a ~7,000-cell NodeInfo (accepted for any role but gpu before), an abandoned
    Provider owed 1.35 TON of storage after 200 days: the chain deleted it, the owner
    registered again, and the fresh Provider (claimed = 0) was paid its old leaf a second
    time. Root now refuses a NodeInfo deeper than MAX_NODE_INFO_DEPTH and returns the value;
    with the largest NodeInfo it accepts (21 full cells) the abandoned Provider is frozen
    after ~10 years but still there (not deleted) after 50."""
    a_who = pay.bc.treasury("A-bloat")
    res = _register_with_node(pay, a_who, Role.BANDWIDTH, _bloated_node(85))  # depth 3
    find_tx(res, from_=pay.root.address, to=a_who.address, op=Op.REFUSE_REGISTRATION)
    refusal = RefuseRegistration.from_cell(body_of(find_tx(res, from_=pay.root.address, to=a_who.address)))
    assert refusal.reason == ExitCode.NODE_INFO_TOO_LARGE
    a = Provider.create_from_config(ProviderConfig(pay.root.address, a_who.address, Role.BANDWIDTH), pay.provider_code)
    assert pay.bc.account(a.address).status != "active"

    res = _register_with_node(pay, a_who, Role.BANDWIDTH, _bloated_node(21))  # depth 2: accepted
    assert find_tx(res, to=a.address).success
    _withdraw_everything(pay, a_who, a)
    pay.bc.now += 50 * YEAR
    pay.bc.send_internal(src=a_who.address, to=a.address, value=ton("0.01"), body=None, bounce=True)
    assert pay.bc.account(a.address).status == "frozen"  # its data (the record) kept


# =============================================================================================
# 2. Trees validators could sign: odd shapes against the hand-written walk
# =============================================================================================


def node(lanes_ref_order: list[int], refs: list[Cell], lane_bits: int = 128) -> Cell:
    """A node with arbitrary lanes (ref order; stored last child first) and references."""
    b = begin_cell()
    for v in reversed(lanes_ref_order + [0] * (4 - len(lanes_ref_order))):
        b.store_uint(v, lane_bits)
    for r in refs:
        b.store_ref(r)
    return b.end_cell()


def prove(root: Cell, digits: list[int]) -> Cell:
    """The Merkle-proof cell for the path `digits` (root's first) in an arbitrary tree."""

    def walk(c: Cell, ds: list[int]) -> Cell:
        b = begin_cell().store_bits(c.bits)
        for i, r in enumerate(c.refs):
            if ds and i == ds[0]:
                b.store_ref(walk(r, ds[1:]))
            else:
                b.store_ref(_pruned(r.get_hash(0), r.get_depth(0)))
        return b.end_cell()

    return _merkle_proof(walk(root, digits))


def role_root(subtree: Cell, total: int, role: int = Role.GPU) -> Cell:
    """A root over four role subtrees: `subtree` (of `total`) at `role`, empty cells elsewhere."""
    empty = begin_cell().end_cell()
    lanes = [total if r == role else 0 for r in Role]
    return node(lanes, [subtree if r == role else empty for r in Role])


def path_of(digits: list[int]) -> int:
    p = 1
    for d in reversed(digits):
        p = (p << 2) | d
    return p


def setup_provider(pay: PayEnv, name: str = "claimer", role: int = Role.GPU):
    fund_pool(pay, ton(10), 0)
    who = pay.bc.treasury(name)
    return who, register_provider(pay, who, role)


def test_root_is_a_leaf_and_non_canonical_paths_pay_once(pay: PayEnv) -> None:
    """A tree whose root is one leaf cannot be adopted any more (the root must be a node of
    four role sums: the report fails on the load). A gpu subtree that is one leaf: paths
    0b100, 0b1000 and 0b1100 (spare marker bits) all reach it. And a gpu subtree of one node:
    0b10000, 0b100000, 0b110000 reach the same leaf. Whatever the encoding, the leaf is paid once."""
    who, p = setup_provider(pay)
    leaf = leaf_cell(p.address, Role.GPU, ton(1))
    report = report_of(pay, 1, ton(10), leaf, ton(1))
    res = pay.post_report(report, sign_report(report, pay.validators[:3]))
    assert find_tx(res, to=pay.pool.address, op=Op.POST_EPOCH_REPORT).exit_code == 9  # cell underflow
    root = role_root(leaf, ton(1))
    adopt(pay, 1, ton(10), root, ton(1))
    proof = prove(root, [Role.GPU])
    res = claim_raw(pay, who, p, ton(1), 0b100, proof)
    find_tx(res, from_=pay.pool.address, to=who.address, op=Op.RECEIVE_REWARD)
    for path in (0b1000, 0b1100):
        res = claim_raw(pay, who, p, ton(1), path, proof)
        find_tx(res, to=p.address, exit_code=ExitCode.NOTHING_TO_CLAIM)
    # one node in the subtree, the leaf grows to 2 TON: paid 1 more, once, under any encoding
    leaf2 = leaf_cell(p.address, Role.GPU, ton(2))
    root = role_root(node([ton(2)], [leaf2]), ton(2))
    adopt(pay, 2, 0, root, ton(2))
    proof = prove(root, [Role.GPU, 0])
    paid = []
    for path in (0b100000, 0b10000, 0b110000):  # 0b100000: levels = 2, digits 0 0, marker 0b10
        res = claim_raw(pay, who, p, ton(2), path, proof)
        paid.append(received_rewards(pay, res, who))
        if len(paid) > 1:
            find_tx(res, to=p.address, exit_code=ExitCode.NOTHING_TO_CLAIM)
    assert ton(1) < paid[0] < ton(1) + CLAIM_VALUE and paid[1:] == [0, 0]
    assert provider_claimed(pay, p) == ton(2) == pay.pool_data().claimed


def test_a_leaf_outside_its_role_subtree_is_refused_and_bounces(pay: PayEnv) -> None:
    """Validators put a gpu Provider's leaf under the router branch (within the router's
    share, so the report passes): its path's first branch is not its role, the pool refuses
    the claim and the record comes back. A router Provider's leaf under the gpu branch
    likewise. In its own role's place the same leaf pays."""
    who, p = setup_provider(pay)
    r_who = pay.bc.treasury("router")
    rp = register_provider(pay, r_who, Role.ROUTER)
    gpu_leaf = leaf_cell(p.address, Role.GPU, ton(1))
    router_leaf = leaf_cell(rp.address, Role.ROUTER, ton(1))
    empty = begin_cell().end_cell()
    root = node([ton(1), 0, ton(1)], [router_leaf, empty, gpu_leaf, empty])  # swapped places
    adopt(pay, 1, ton(10), root, ton(2))
    for w, prov, digit in ((who, p, Role.ROUTER), (r_who, rp, Role.GPU)):
        res = claim_raw(pay, w, prov, ton(1), path_of([digit]), prove(root, [digit]))
        find_tx(res, to=pay.pool.address, exit_code=ExitCode.INVALID_PROOF)
        find_tx(res, from_=pay.pool.address, to=prov.address, bounced=True, success=True)
        assert provider_claimed(pay, prov) == 0
    assert pay.pool_data().claimed == 0
    root = node([ton(1), 0, ton(1)], [gpu_leaf, empty, router_leaf, empty])  # each in its place
    adopt(pay, 2, 0, root, ton(2))
    for w, prov, digit in ((who, p, Role.GPU), (r_who, rp, Role.ROUTER)):
        res = claim_raw(pay, w, prov, ton(1), path_of([digit]), prove(root, [digit]))
        find_tx(res, from_=pay.pool.address, to=w.address, op=Op.RECEIVE_REWARD)
        assert provider_claimed(pay, prov) == ton(1)
    assert pay.pool_data().claimed == ton(2) and solvent(pay)


def test_lanes_that_sum_only_modulo_2_128_or_2_120_are_refused(pay: PayEnv) -> None:
    """The walk adds lanes in 257-bit integers: lanes whose sum equals the parent's figure only
    modulo 2^128 (or 2^120, the coins width) never match, and the leaf under such a lane cannot
    be paid its (huge) lane value."""
    who, p = setup_provider(pay)
    big_leaf_total = (1 << 120) - 1  # the largest a leaf can hold
    leaf = leaf_cell(p.address, Role.GPU, big_leaf_total)
    filler = leaf_cell(who.address, Role.GPU, 1)
    # lane 0 = 2^120 - 1, lane 1 chosen so the sum is rootTotal + 2^128
    root_total = ton(5)
    lanes = [big_leaf_total, root_total + (1 << 128) - big_leaf_total]
    root = role_root(node(lanes, [leaf, filler]), root_total)
    adopt(pay, 1, ton(10), root, root_total)
    proof = prove(root, [Role.GPU, 0])
    # the Provider refuses >= 2^96; the lane value itself
    res = claim_raw(pay, who, p, big_leaf_total, path_of([Role.GPU, 0]), proof)
    find_tx(res, to=p.address, exit_code=ExitCode.INVALID_PROOF)
    # a claim of root_total (what the parent says) against that leaf
    res = claim_raw(pay, who, p, root_total, path_of([Role.GPU, 0]), proof)
    find_tx(res, to=pay.pool.address, exit_code=ExitCode.INVALID_PROOF)
    assert pay.pool_data().claimed == 0 and provider_claimed(pay, p) == 0


def test_node_with_more_lanes_than_refs_and_leaf_with_extra_bits(pay: PayEnv) -> None:
    """Lane 1 has no reference (the path into it fails on the load); a leaf with extra data
    bits after its total is paid its total (the bits are ignored); a leaf with a reference is
    refused. Nothing pays more than a leaf's total, nothing pays twice."""
    who, p = setup_provider(pay)
    extra = begin_cell().store_address(p.address).store_uint(Role.GPU, 8).store_coins(ton(1))
    extra = extra.store_uint(2**64 - 1, 64).end_cell()
    root = role_root(node([ton(1), ton(3)], [extra]), ton(4))
    adopt(pay, 1, ton(10), root, ton(4))
    res = claim_raw(pay, who, p, ton(3), path_of([Role.GPU, 1]), prove(root, [Role.GPU, 0]))
    assert find_tx(res, to=pay.pool.address).exit_code == 9  # cell underflow: no such reference
    assert provider_claimed(pay, p) == 0
    res = claim_raw(pay, who, p, ton(1), path_of([Role.GPU, 0]), prove(root, [Role.GPU, 0]))
    find_tx(res, from_=pay.pool.address, to=who.address, op=Op.RECEIVE_REWARD)
    assert provider_claimed(pay, p) == ton(1) == pay.pool_data().claimed


def test_same_provider_in_two_leaves_is_paid_at_most_the_larger(pay: PayEnv) -> None:
    """Validators put the Provider in two leaves (1 and 3 TON). Claiming both, in either order,
    pays 3 TON in all: the record is cumulative."""
    who, p = setup_provider(pay)
    a = leaf_cell(p.address, Role.GPU, ton(1))
    b = leaf_cell(p.address, Role.GPU, ton(3))
    root = role_root(node([ton(1), ton(3)], [a, b]), ton(4))
    adopt(pay, 1, ton(10), root, ton(4))
    for digit, total in ((0, ton(1)), (1, ton(3)), (0, ton(1))):
        claim_raw(pay, who, p, total, path_of([Role.GPU, digit]), prove(root, [Role.GPU, digit]))
    assert provider_claimed(pay, p) == ton(3) == pay.pool_data().claimed
    assert solvent(pay)


# =============================================================================================
# 3. Races, value at every hop, exact accounting
# =============================================================================================


def claim_msg(p: Provider, cumulative: int, path: int, proof: Cell, value: int = CLAIM_VALUE):
    body = Provider.claim_reward_body(cumulative=cumulative, path=path, proof=proof)
    return (message_relaxed(dest=p.address, value=value, body=body), 1)


def report_msg(pay: PayEnv, epoch: int, c: int, root: Cell | MerkleSumTree, root_total: int):
    report = report_of(pay, epoch, c, root, root_total)
    body = RewardPool.post_epoch_report_body(report=report, signatures=sign_report(report, pay.validators[:3]))
    return (message_relaxed(dest=pay.pool.address, value=ton("0.2"), body=body), 1)


def test_claims_racing_epoch_reports_in_one_wallet_transaction(pay: PayEnv) -> None:
    """The owner relays the next epoch's report in the same wallet transaction as claims under
    the old tree, the new tree (not adopted yet when sent), and a repeat; every order. The
    record always equals what the pool paid, which never exceeds the current leaf."""
    fund_pool(pay, ton(10), 0)
    who = pay.bc.treasury("racer")
    p = register_provider(pay, who, Role.GPU)
    other = pay.bc.treasury("other")
    trees = {
        e: MerkleSumTree([Leaf(p.address, Role.GPU, ton(e)), Leaf(other.address, Role.GPU, ton(e))]) for e in (1, 2, 3)
    }
    adopt(pay, 1, ton(10), trees[1], trees[1].root_total)
    snap = pay.bc.snapshot()
    import itertools

    def cm(e):
        pr = trees[e].proof(0)
        return claim_msg(p, pr.cumulative, pr.path, pr.cell)

    combos = [
        [cm(1), report_msg(pay, 2, 0, trees[2], trees[2].root_total), cm(2)],
        [cm(2), report_msg(pay, 2, 0, trees[2], trees[2].root_total), cm(1)],
        [report_msg(pay, 2, 0, trees[2], trees[2].root_total), cm(1), cm(2), cm(2)],
        [cm(1), cm(2), report_msg(pay, 2, 0, trees[2], trees[2].root_total)],
    ]
    for combo in combos:
        for perm in itertools.permutations(combo):
            pay.bc.load_from(snap)
            before = pay.bc.account(who.address).balance
            res = who.send_messages(list(perm))
            paid_value = received_rewards(pay, res, who)
            d = pay.pool_data()
            rec = provider_claimed(pay, p)
            assert rec == d.claimed, res.tree()
            assert rec <= ton(2)
            assert paid_value >= rec and paid_value < rec + ton("0.1") * 4
            assert solvent(pay)
            # the rest is always claimable with the adopted tree
            e = d.epoch
            pr = trees[e].proof(0)
            if rec < pr.cumulative:
                pay.claim(who, p, pr)
            assert provider_claimed(pay, p) == pay.pool_data().claimed == ton(e)
            assert pay.bc.account(who.address).balance - before > ton(e) - ton(1)


def test_pool_balance_changes_by_exactly_the_payouts(pay: PayEnv) -> None:
    """Successful and refused claims alike: the pool's balance moves by exactly -payout (the
    clock is fixed, so no storage fee). Any gas or forward fee paid from the pool's own money
    would show here as a drip."""
    fund_pool(pay, ton(10), 0)
    who = pay.bc.treasury("drip")
    p = register_provider(pay, who, Role.GPU)
    paid = 0
    for e in range(1, 6):
        tree = MerkleSumTree([Leaf(p.address, Role.GPU, ton("0.1") * e)], depth=e)
        adopt(pay, e, ton(10) if e == 1 else 0, tree, tree.root_total)
        pr = tree.proof(0)
        for value in (ton("0.06"), CLAIM_VALUE, ton(1)):
            bad = replace(pr, leaf=replace(pr.leaf, total=pr.cumulative + 1))
            b0 = pool_balance(pay)
            res = pay.claim(who, p, bad, value=value)
            assert pool_balance(pay) == b0, (value, res.tree())
        b0 = pool_balance(pay)
        res = pay.claim(who, p, pr, value=ton("0.06"))
        payout = pr.cumulative - paid
        assert pool_balance(pay) == b0 - payout, (b0 - pool_balance(pay) - payout, res.tree())
        paid = pr.cumulative
    assert solvent(pay)


def test_pool_short_of_money_bounces_and_the_record_comes_back(pay: PayEnv) -> None:
    """If the payout cannot be sent (the pool's balance is short: e.g. storage ate the
    reserve and more), the action phase fails; the claim must still bounce to the record."""
    fund_pool(pay, ton(10), 0)
    who = pay.bc.treasury("short")
    p = register_provider(pay, who, Role.GPU)
    tree = MerkleSumTree([Leaf(p.address, Role.GPU, ton(5))])
    adopt(pay, 1, ton(10), tree, tree.root_total)
    pay.bc.set_balance(pay.pool.address, ton(1))  # test set-up: an insolvent pool
    res = pay.claim(who, p, tree.proof(0))
    pool_tx = find_tx(res, to=pay.pool.address)
    assert (pool_tx.exit_code, pool_tx.action_code) == (0, 37)  # 37: not enough funds
    find_tx(res, from_=pay.pool.address, to=p.address, bounced=True, success=True)
    assert provider_claimed(pay, p) == 0 == pay.pool_data().claimed


def test_a_provider_in_storage_debt_refuses_claims_until_topped_up(pay: PayEnv) -> None:
    """FIXED. An owner who withdrew everything and left the Provider idle for years (reserve
    gone, a storage debt under freeze_due_limit) claimed with a proof the pool refuses. The
    bounce is non-bounceable, so it is credited first and the storage phase took the debt out
    of it: the handler never ran and the record stayed up with nothing paid. Claims now need
    the Provider's own balance to hold CLAIM_MIN_OWN_BALANCE (STORAGE_DEBT otherwise); after
    a plain transfer tops it up, a refused claim bounces back and the true one pays."""
    fund_pool(pay, ton(10), 0)
    who = pay.bc.treasury("idle")
    p = register_provider(pay, who, Role.GPU)
    tree = MerkleSumTree([Leaf(p.address, Role.GPU, ton(5))])
    adopt(pay, 1, ton(10), tree, tree.root_total)
    _withdraw_everything(pay, who, p)
    snap = pay.bc.snapshot()
    pr = tree.proof(0)
    bad = replace(pr, leaf=replace(pr.leaf, total=ton(4)))
    for years in (6, 9, 11):  # in debt, not yet frozen (that comes at ~11.7 years)
        pay.bc.load_from(snap)
        pay.bc.now += years * YEAR
        res = pay.claim(who, p, bad, value=ton("0.07"))
        find_tx(res, to=p.address, exit_code=ExitCode.STORAGE_DEBT)
        assert claimed_raw(pay, p) == 0
    ok(who.send(p.address, ton("0.1"), None))  # a plain transfer pays the debt
    res = pay.claim(who, p, bad, value=ton("0.07"))
    find_tx(res, to=pay.pool.address, exit_code=ExitCode.INVALID_PROOF)
    find_tx(res, from_=pay.pool.address, to=p.address, bounced=True, success=True)
    assert claimed_raw(pay, p) == 0
    res = pay.claim(who, p, pr)
    find_tx(res, from_=pay.pool.address, to=who.address, op=Op.RECEIVE_REWARD)
    assert claimed_raw(pay, p) == ton(5) == pay.pool_data().claimed


def test_idle_pool_storage_eating_owed_money_bounces_claims_instead_of_stranding_them(pay: PayEnv) -> None:
    """FIXED. Storage fees come out of the pool's balance; only POOL_STORAGE_RESERVE (0.1 TON)
    covers them. After years without deposits the balance is below what is owed; the last
    claim's payout then fails in the action phase (37: not enough funds), which did not
    bounce: the record stayed at the full leaf, nothing paid. Now it bounces, the record goes
    back, and once anyone tops the pool up the same claim pays."""
    fund_pool(pay, ton(10), 0)
    who = pay.bc.treasury("late")
    roles = (Role.GPU, Role.ROUTER, Role.VALIDATOR)  # compute revenue: 7 + 1.5 + 1 TON
    provs = [register_provider(pay, who, r) for r in roles]
    shares = [ton(7), ton("1.5"), ton(1)]  # everything allocated
    tree = MerkleSumTree([Leaf(p.address, r, t) for p, r, t in zip(provs, roles, shares, strict=True)])
    adopt(pay, 1, ton(10), tree, tree.root_total)
    assert solvent(pay)
    pay.bc.now += 16 * YEAR
    for i in (0, 1):  # the first claims still find the money
        res = pay.claim(who, provs[i], tree.proof(i))
        find_tx(res, from_=pay.pool.address, to=who.address, op=Op.RECEIVE_REWARD)
    res = pay.claim(who, provs[2], tree.proof(2))
    pool_tx = find_tx(res, to=pay.pool.address)
    assert (pool_tx.exit_code, pool_tx.action_code) == (0, 37)
    find_tx(res, from_=pay.pool.address, to=provs[2].address, bounced=True, success=True)
    assert provider_claimed(pay, provs[2]) == 0 and pay.pool_data().claimed == ton("8.5")
    ok(who.send(pay.pool.address, ton(1), None))  # anyone may top the pool up
    res = pay.claim(who, provs[2], tree.proof(2))
    find_tx(res, from_=pay.pool.address, to=who.address, op=Op.RECEIVE_REWARD)
    assert provider_claimed(pay, provs[2]) == ton(1) and pay.pool_data().claimed == ton("9.5")


def test_library_and_pruned_proof_cells_are_refused_and_bounce(pay: PayEnv) -> None:
    """The proof as a library cell naming the real proof's hash; a Merkle proof whose root is a
    pruned branch of the real root (a valid proof cell: its hash is the root's); a Merkle proof
    whose path cell is a library cell of the real leaf (hash mismatch: refused before any
    contract runs)."""
    import pytest

    who, p = setup_provider(pay)
    tree = MerkleSumTree([Leaf(p.address, Role.GPU, ton(1)), Leaf(who.address, Role.GPU, ton(2))])
    adopt(pay, 1, ton(10), tree, tree.root_total)
    real = tree.proof(0)
    lib = Builder(type_=2).store_uint(2, 8).store_bytes(real.cell.hash).end_cell()
    res = claim_raw(pay, who, p, ton(1), real.path, lib)
    find_tx(res, to=pay.pool.address, exit_code=ExitCode.INVALID_PROOF)
    root_depth = real.cell.refs[0].get_depth(0)
    pruned_root = _merkle_proof(_pruned(tree.root_hash, root_depth))
    res = claim_raw(pay, who, p, ton(1), real.path, pruned_root)
    assert find_tx(res, to=pay.pool.address).exit_code == 9  # a pruned branch cannot be loaded
    leaf = real.cell.refs[0].refs[0]
    inner = begin_cell().store_bits(real.cell.refs[0].bits)
    inner.store_ref(Builder(type_=2).store_uint(2, 8).store_bytes(leaf.hash).end_cell())
    for r in real.cell.refs[0].refs[1:]:
        inner.store_ref(r)
    fake = Builder(type_=3).store_uint(3, 8).store_bytes(tree.root_hash).store_uint(root_depth, 16)
    fake = fake.store_ref(inner.end_cell())
    with pytest.raises(ValueError, match="malformed BOC"):
        claim_raw(pay, who, p, ton(1), real.path, fake.end_cell())
    assert provider_claimed(pay, p) == 0 == pay.pool_data().claimed
    ok(pay.claim(who, p, real))

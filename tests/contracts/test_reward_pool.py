"""RewardPool: pots, Root's config push, epoch reports with validator quorums, claims."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from offchain.protocol.epoch import RevenueSplit, build_report, sign_report, split_revenue
from offchain.protocol.merkle import Leaf, MerkleSumTree
from offchain.ton.blockchain import ton
from offchain.ton.transaction import find_tx, raw
from tests.contracts.conftest import validator_keys
from tests.contracts.payments import PayEnv, fund_pool, provider_claimed, pub, register_provider
from wrappers.errors import ExitCode
from wrappers.messages import ComputeSplit, DataSplit, PoolConfig, SyncPoolConfig
from wrappers.opcodes import Op
from wrappers.provider import Provider, Role
from wrappers.reward_pool import RewardPool, RewardPoolConfig
from wrappers.root import Root

SPLIT_C = ComputeSplit(gpu=7000, router=1500, validator=1000, protocol=500)
SPLIT_D = DataSplit(bandwidth=7000, router=1500, validator=1000, protocol=500)


def report_for(pay: PayEnv, epoch: int, c: int, d: int, tree: MerkleSumTree, signers=None):
    report = build_report(pay.pool.address, epoch, compute_consumed=c, data_consumed=d, tree=tree)
    return report, sign_report(report, pay.validators[:3] if signers is None else signers)


def split_tree(pay: PayEnv, split: RevenueSplit, delta: tuple[int, int, int, int] = (0, 0, 0, 0)) -> MerkleSumTree:
    """One leaf per role (owners that need not be registered: nobody claims) at the role's
    share of `split`, plus `delta[role]`."""
    return MerkleSumTree([Leaf(pay.bc.treasury(f"share-{r}").address, r, split.of(r) + delta[r]) for r in Role])


def one_provider_epoch(pay: PayEnv, role: int = Role.GPU, total: int | None = None, depth: int | None = None):
    """Fund the pots, register one provider, report an epoch paying it its role's whole share."""
    fund_pool(pay, ton(10), ton(4))
    who = pay.bc.treasury(f"provider-{role}")
    p = register_provider(pay, who, role)
    split = split_revenue(ton(10), ton(4), SPLIT_C, SPLIT_D)
    total = split.of(role) if total is None else total
    tree = MerkleSumTree([Leaf(p.address, role, total)], depth=depth)
    report, sigs = report_for(pay, 1, ton(10), ton(4), tree)
    res = pay.post_report(report, sigs)
    find_tx(res, to=pay.pool.address, op=Op.POST_EPOCH_REPORT, success=True)
    return who, p, tree, res


# ---- pots and config ----------------------------------------------------------------------


def test_deposit_revenue_fills_the_pots_and_checks_the_value(pay: PayEnv, gas_snapshot):
    res = fund_pool(pay, ton(3), ton(2))
    gas_snapshot.record("reward_pool.deposit_revenue", res)
    d = pay.pool_data()
    assert (d.compute_pot, d.data_pot) == (ton(3), ton(2))
    body = RewardPool.deposit_revenue_body(compute=ton(3), data=ton(2))
    res = pay.owner.send(pay.pool.address, ton(5) - 1, body)
    find_tx(res, to=pay.pool.address, exit_code=ExitCode.DEPOSIT_VALUE_MISMATCH)
    find_tx(res, from_=pay.pool.address, to=pay.owner.address, bounced=True)
    assert pay.pool_data().compute_pot == ton(3)


def test_root_pushes_its_config_and_the_pool_keeps_only_newer_versions(pay: PayEnv, gas_snapshot):
    pool = pay.pool
    cfg = PoolConfig.from_cell(pay.bc.run_get_method(pool.address, "get_pool_config").cell())
    root_version = pay.bc.run_get_method(pay.root.address, "get_root_data").stack[2]
    assert cfg.version == root_version and cfg.threshold == 3
    assert set(cfg.validators) == {pub(k) for k in pay.validators}
    assert cfg.treasury == pay.treasury.address and cfg.compute_split == SPLIT_C

    # a new split at Root reaches the pool only when someone pushes it (anyone may)
    new_c = ComputeSplit(gpu=6000, router=2000, validator=1500, protocol=500)
    pay.owner.send(pay.root.address, ton("0.1"), Root.set_splits_body(compute=new_c, data=SPLIT_D))
    stranger = pay.bc.treasury("stranger")
    res = stranger.send(pay.root.address, ton("0.1"), Root.push_pool_config_body())
    gas_snapshot.record("root.push_pool_config", res)
    find_tx(res, from_=pay.root.address, to=pool.address, op=Op.SYNC_POOL_CONFIG, success=True)
    find_tx(res, from_=pool.address, to=stranger.address, op=Op.RETURN_EXCESS)
    cfg2 = PoolConfig.from_cell(pay.bc.run_get_method(pool.address, "get_pool_config").cell())
    assert cfg2.compute_split == new_c and cfg2.version == root_version + 1

    # only Root may sync, and an older version is ignored
    forged = SyncPoolConfig(query_id=0, config=cfg, excess_to=stranger.address).to_cell()
    res = stranger.send(pool.address, ton("0.1"), forged)
    find_tx(res, to=pool.address, exit_code=ExitCode.NOT_FROM_ROOT)
    pay.bc.send_internal(src=pay.root.address, to=pool.address, value=ton("0.1"), body=forged)
    assert PoolConfig.from_cell(pay.bc.run_get_method(pool.address, "get_pool_config").cell()) == cfg2


def test_unconfigured_pool_refuses_reports_and_claims(pay: PayEnv):
    other = RewardPool.create_from_config(RewardPoolConfig(pay.owner.address), pay.bc.account(pay.pool.address).code)
    pay.owner.send(other.address, ton(1), None, init=other.init)
    assert pay.pool_data().config_version >= 1
    tree = MerkleSumTree([Leaf(pay.owner.address, Role.GPU, 1)])
    report = build_report(other.address, 1, compute_consumed=0, data_consumed=0, tree=tree)
    body = RewardPool.post_epoch_report_body(report=report, signatures=sign_report(report, pay.validators[:3]))
    res = pay.owner.send(other.address, ton("0.2"), body)
    find_tx(res, to=other.address, exit_code=ExitCode.POOL_NOT_CONFIGURED)


# ---- epoch reports ----------------------------------------------------------------------


def test_epoch_report_pays_the_protocol_and_adopts_the_root(pay: PayEnv, gas_snapshot):
    fund_pool(pay, ton(10), ton(4))
    who = pay.bc.treasury("gpu")
    p = register_provider(pay, who, Role.GPU)
    split = split_revenue(ton(10), ton(4), SPLIT_C, SPLIT_D)
    assert split.providers + split.protocol == ton(14)
    leaves = [Leaf(p.address, Role.GPU, split.gpu - 5)]
    leaves += [Leaf(pay.bc.treasury(f"share-{r}").address, r, split.of(r)) for r in Role if r != Role.GPU]
    tree = MerkleSumTree(leaves)
    report, sigs = report_for(pay, 1, ton(10), ton(4), tree)
    before = pay.bc.account(pay.treasury.address).balance
    res = pay.post_report(report, sigs)
    gas_snapshot.record("reward_pool.epoch_report_3_of_5", res)
    find_tx(res, to=pay.pool.address, success=True)
    fee = find_tx(res, from_=pay.pool.address, to=pay.treasury.address, op=Op.RECEIVE_PROTOCOL_FEE)
    assert fee.value >= split.protocol
    assert pay.bc.account(pay.treasury.address).balance - before >= split.protocol - fee.total_fees
    d = pay.pool_data()
    assert (d.epoch, d.compute_pot, d.data_pot) == (1, 0, 0)
    assert d.merkle_root == int.from_bytes(tree.root_hash, "big") and d.root_total == tree.root_total
    assert d.carry == 5  # allocated but not put in the tree: kept for later epochs
    assert pay.bc.account(pay.pool.address).balance >= d.owed
    roles = pay.pool_roles()
    assert (
        roles.totals.as_tuple() == tree.role_totals == (split.gpu - 5, split.bandwidth, split.router, split.validator)
    )
    assert roles.carries.as_tuple() == (5, 0, 0, 0)  # the carry is the gpu role's


def test_epoch_report_rejections(pay: PayEnv):
    fund_pool(pay, ton(10), ton(4))
    split = split_revenue(ton(10), ton(4), SPLIT_C, SPLIT_D)
    tree = split_tree(pay, split)
    report, sigs = report_for(pay, 1, ton(10), ton(4), tree)

    def rejected(code, report=report, sigs=sigs, value=200_000_000):
        res = pay.post_report(report, sigs, value=value)
        find_tx(res, to=pay.pool.address, op=Op.POST_EPOCH_REPORT, exit_code=code)
        assert pay.pool_data().epoch in (0, 1)

    forged = dict(sigs)
    k0 = next(iter(forged))
    forged[k0] = bytes(64)
    rejected(ExitCode.INVALID_SIGNATURE, sigs=forged)
    outsider = validator_keys(1, "outsider")
    rejected(ExitCode.UNKNOWN_VALIDATOR, sigs={**sign_report(report, outsider), **sigs})
    # duplicates collapse in the map: two distinct validators are not a quorum of three
    rejected(ExitCode.NOT_ENOUGH_SIGNATURES, sigs=sign_report(report, pay.validators[:2] + pay.validators[:2]))
    too_big = split_tree(pay, split, (1, 0, 0, 0))
    rejected(ExitCode.BAD_ROOT_TOTAL, *report_for(pay, 1, ton(10), ton(4), too_big))
    rejected(ExitCode.CONSUMED_EXCEEDS_POT, *report_for(pay, 1, ton(10) + 1, ton(4), tree))
    wrong_pool = build_report(pay.root.address, 1, compute_consumed=0, data_consumed=0, tree=tree)
    rejected(ExitCode.WRONG_POOL, wrong_pool, sign_report(wrong_pool, pay.validators[:3]))
    rejected(ExitCode.NOT_ENOUGH_VALUE, value=ton("0.05"))
    assert pay.pool_data().epoch == 0

    res = pay.post_report(report, sigs)
    find_tx(res, to=pay.pool.address, success=True)
    rejected(ExitCode.EPOCH_NOT_NEW)  # a replay
    # the tree's total never shrinks
    smaller = split_tree(pay, split, (-1, 0, 0, 0))
    rejected(ExitCode.BAD_ROOT_TOTAL, *report_for(pay, 2, 0, 0, smaller))
    # a quorum-signed report for a far epoch would leave no epoch after it: only last + 1 is taken
    same = split_tree(pay, split)
    rejected(ExitCode.EPOCH_SKIPPED, *report_for(pay, 2**32 - 1, 0, 0, same))
    rejected(ExitCode.EPOCH_SKIPPED, *report_for(pay, 3, 0, 0, same))
    assert pay.pool_data().epoch == 1
    find_tx(pay.post_report(*report_for(pay, 2, 0, 0, same)), to=pay.pool.address, success=True)
    assert pay.pool_data().epoch == 2


def test_epoch_report_over_allocating_one_role_is_refused(pay: PayEnv):
    """The total is exactly what the epoch allocated, but one role gets 1 nanoTON of another
    role's share: refused (BAD_ROLE_TOTAL), for every pair of roles. The exact split passes."""
    fund_pool(pay, ton(10), ton(4))
    split = split_revenue(ton(10), ton(4), SPLIT_C, SPLIT_D)
    for over in Role:
        for under in Role:
            if over == under:
                continue
            delta = tuple(1 if r == over else -1 if r == under else 0 for r in Role)
            tree = split_tree(pay, split, delta)  # type: ignore[arg-type]
            assert tree.root_total == split.providers
            res = pay.post_report(*report_for(pay, 1, ton(10), ton(4), tree))
            find_tx(res, to=pay.pool.address, op=Op.POST_EPOCH_REPORT, exit_code=ExitCode.BAD_ROLE_TOTAL)
    assert pay.pool_data().epoch == 0
    tree = split_tree(pay, split)
    find_tx(pay.post_report(*report_for(pay, 1, ton(10), ton(4), tree)), to=pay.pool.address, success=True)
    assert pay.pool_roles().totals.as_tuple() == (split.gpu, split.bandwidth, split.router, split.validator)
    assert pay.pool_data().carry == 0


def test_role_shares_round_down_per_pot_with_the_dust_to_the_protocol(pay: PayEnv):
    """6 nanoTON of compute and 6 of data: router and validator get floor(0.9) + floor(0.9) and
    floor(0.6) + floor(0.6), i.e. nothing (a split of the 12 together would give the router
    1), gpu and bandwidth floor(4.2) = 4 each; the 4 left are the protocol's. A tree giving the
    router 1 (and bandwidth 3: the total within bounds) is refused; split_revenue's is taken."""
    fund_pool(pay, 6, 6)
    split = split_revenue(6, 6, SPLIT_C, SPLIT_D)
    assert (split.gpu, split.bandwidth, split.router, split.validator, split.protocol) == (4, 4, 0, 0, 4)
    greedy = split_tree(pay, split, (0, -1, 1, 0))
    res = pay.post_report(*report_for(pay, 1, 6, 6, greedy))
    find_tx(res, to=pay.pool.address, op=Op.POST_EPOCH_REPORT, exit_code=ExitCode.BAD_ROLE_TOTAL)
    before = pay.bc.account(pay.treasury.address).balance
    res = pay.post_report(*report_for(pay, 1, 6, 6, split_tree(pay, split)))
    fee = find_tx(res, from_=pay.pool.address, to=pay.treasury.address, op=Op.RECEIVE_PROTOCOL_FEE)
    assert fee.value >= split.protocol and pay.bc.account(pay.treasury.address).balance > before - fee.total_fees
    assert pay.pool_roles().totals.as_tuple() == (4, 4, 0, 0)


def test_each_role_keeps_its_own_carry_and_never_shrinks(pay: PayEnv):
    """Epoch 1 leaves 5 of the gpu share out of the tree: only the gpu subtree may take it
    later (the router may not, though the total's carry would allow it). A role's total may
    not fall, even while the tree's total grows."""
    fund_pool(pay, ton(10), ton(4))
    split = split_revenue(ton(10), ton(4), SPLIT_C, SPLIT_D)
    pay.adopt(split_tree(pay, split, (-5, 0, 0, 0)), compute=ton(10), data=ton(4))
    assert pay.pool_roles().carries.as_tuple() == (5, 0, 0, 0) and pay.pool_data().carry == 5
    router_takes = split_tree(pay, split, (-5, 0, 1, 0))
    res = pay.post_report(*report_for(pay, 2, 0, 0, router_takes))
    find_tx(res, to=pay.pool.address, op=Op.POST_EPOCH_REPORT, exit_code=ExitCode.BAD_ROLE_TOTAL)
    pay.adopt(split_tree(pay, split), epoch=2)  # the gpu role takes its 5
    assert pay.pool_roles().carries.as_tuple() == (0, 0, 0, 0) and pay.pool_data().carry == 0
    fund_pool(pay, ton(1), 0)
    shrinking = split_tree(pay, split, (-1, 0, ton("0.15"), 0))  # router's new share, gpu - 1
    res = pay.post_report(*report_for(pay, 3, ton(1), 0, shrinking))
    find_tx(res, to=pay.pool.address, op=Op.POST_EPOCH_REPORT, exit_code=ExitCode.BAD_ROLE_TOTAL)
    assert pay.pool_data().epoch == 2


def test_epoch_report_with_a_root_node_not_of_its_tree_is_refused(pay: PayEnv):
    """The report's root node must be a Merkle-proof cell of its `merkle_root` whose four sums
    add up to its `root_total`: validators cannot show the pool other role totals than the
    tree's."""
    from dataclasses import replace

    from pytoniq_core import begin_cell

    fund_pool(pay, ton(10), ton(4))
    split = split_revenue(ton(10), ton(4), SPLIT_C, SPLIT_D)
    tree = split_tree(pay, split)
    report, _ = report_for(pay, 1, ton(10), ton(4), tree)
    # all at the gpu share: the sums of this other tree add up to root_total too
    other = split_tree(pay, split, (0, 1, -1, 0))
    plain = begin_cell().store_uint(3, 8).store_uint(report.merkle_root, 256).end_cell()
    for bad in (
        replace(report, root_node=other.root_node_proof()),  # another tree's root
        replace(report, root_node=plain),  # an ordinary cell
        replace(report, root_total=report.root_total - 1),  # sums above the stated total
    ):
        res = pay.post_report(bad, sign_report(bad, pay.validators[:3]))
        find_tx(res, to=pay.pool.address, op=Op.POST_EPOCH_REPORT, exit_code=ExitCode.BAD_ROOT_NODE)
    assert pay.pool_data().epoch == 0


# ---- claims -------------------------------------------------------------------------------


@pytest.mark.parametrize(("leaves", "depth"), [("2^4", 2), ("2^20", 10), ("2^20_one_role", 11)])
def test_claim_pays_the_difference_and_records_it(pay: PayEnv, gas_snapshot, leaves, depth):
    """A tree as deep as one of 2^4 or 2^20 leaves spread over the four roles (the root, then
    a 4-ary role subtree: depth 2 or 10), or of 2^20 leaves all in one role (depth 11); the
    claim's gas does not depend on how full it is, see the next test and
    benchmarks/claim_gas.py."""
    who, p, tree, _ = one_provider_epoch(pay, depth=depth)
    proof = tree.proof(0)
    assert (proof.path.bit_length() - 1) // 2 == depth
    before = pay.bc.account(who.address).balance
    res = pay.claim(who, p, proof)
    gas_snapshot.record(f"reward_pool.claim_{leaves}_leaves", res)
    find_tx(res, from_=who.address, to=p.address, op=Op.CLAIM_REWARD, success=True)
    find_tx(res, from_=p.address, to=pay.pool.address, op=Op.FORWARD_CLAIM, success=True)
    reward = find_tx(res, from_=pay.pool.address, to=who.address, op=Op.RECEIVE_REWARD)
    assert reward.value > proof.cumulative
    assert len(res.transactions) == 4  # the wallet, the Provider, the pool, the wallet
    assert provider_claimed(pay, p) == proof.cumulative
    assert pay.bc.account(who.address).balance - before > proof.cumulative - ton("0.05")
    d = pay.pool_data()
    assert d.claimed == proof.cumulative
    assert pay.bc.account(pay.pool.address).balance >= d.owed

    # a second claim of the same total pays nothing: refused at the Provider, value returned
    res = pay.claim(who, p, proof)
    find_tx(res, to=p.address, exit_code=ExitCode.NOTHING_TO_CLAIM)
    find_tx(res, from_=p.address, to=who.address, bounced=True)
    assert pay.pool_data().claimed == proof.cumulative


def test_claim_gas_does_not_grow_with_the_number_of_providers(pay: PayEnv):
    """Claim gas depends on the proof's depth only: 1 or 16 real leaves in a depth-2 tree cost
    the same, and going from depth 2 (2^4 leaves, 4 a role) to 10 (2^20, 2^18 a role) adds a
    fixed cost per level."""
    gas = {}
    snap = pay.bc.snapshot()
    for depth, others in ((2, 0), (2, 15), (10, 0)):
        pay.bc.load_from(snap)
        fund_pool(pay, ton(10), ton(4))
        who = pay.bc.treasury("claimer")
        p = register_provider(pay, who, Role.GPU)
        # 16 leaves in a depth-2 tree: four per role subtree
        fillers = [Leaf(pay.bc.treasury(f"x{i}").address, list(Role)[(i + 1) % 4], 1000 + i) for i in range(others)]
        tree = MerkleSumTree([Leaf(p.address, Role.GPU, ton(1)), *fillers], depth=depth)
        res = pay.post_report(*report_for(pay, 1, ton(10), ton(4), tree))
        find_tx(res, to=pay.pool.address, op=Op.POST_EPOCH_REPORT, success=True)
        gas[(depth, others)] = pay.claim(who, p, tree.proof(0)).gas()
    pay.bc.load_from(snap)
    assert gas[(2, 0)] == gas[(2, 15)], gas
    per_level = (gas[(10, 0)] - gas[(2, 0)]) / 8
    assert 0 < per_level < 700, gas


def test_claim_rejections(pay: PayEnv):
    who, p, tree, _ = one_provider_epoch(pay)
    proof = tree.proof(0)
    # a claim of another total than the leaf's: the pool refuses, the record goes back
    from dataclasses import replace

    bad = replace(proof, leaf=replace(proof.leaf, total=proof.leaf.total + 1))
    res = pay.claim(who, p, bad)
    find_tx(res, to=pay.pool.address, exit_code=ExitCode.INVALID_PROOF)
    find_tx(res, from_=pay.pool.address, to=p.address, bounced=True, success=True)
    find_tx(res, from_=p.address, to=who.address, op=Op.RETURN_EXCESS)
    assert provider_claimed(pay, p) == 0
    # another owner's Provider cannot use this leaf (the leaf names the Provider's address)
    thief = pay.bc.treasury("thief")
    tp = register_provider(pay, thief, Role.GPU)
    res = pay.claim(thief, tp, proof)
    find_tx(res, to=pay.pool.address, exit_code=ExitCode.INVALID_PROOF)
    assert provider_claimed(pay, tp) == 0
    # ForwardClaim straight from a wallet is not from a Provider
    from wrappers.messages import ForwardClaim

    fc = ForwardClaim(
        query_id=0,
        payout=proof.cumulative,
        cumulative=proof.cumulative,
        owner=who.address,
        role=Role.GPU,
        path=proof.path,
        proof=proof.cell,
    )
    res = who.send(pay.pool.address, ton("0.1"), fc.to_cell())
    find_tx(res, to=pay.pool.address, exit_code=ExitCode.NOT_A_PROVIDER)
    # two claims in flight: the first records the total at once, so the second claims nothing
    body = Provider.claim_reward_body(cumulative=proof.cumulative, path=proof.path, proof=proof.cell)
    from offchain.ton.messages import message_relaxed

    m = message_relaxed(dest=p.address, value=ton("0.1"), body=body)
    res = who.send_messages([(m, 1), (m, 1)])
    find_tx(res, to=p.address, exit_code=ExitCode.NOTHING_TO_CLAIM)
    assert provider_claimed(pay, p) == proof.cumulative
    assert pay.pool_data().claimed == proof.cumulative
    # too little value, and someone else's Provider
    res = pay.claim(who, p, proof, value=ton("0.01"))
    find_tx(res, to=p.address, exit_code=ExitCode.NOT_ENOUGH_VALUE)
    res = pay.claim(thief, p, proof)
    find_tx(res, to=p.address, exit_code=ExitCode.NOT_OWNER)


def test_malformed_proofs_bounce_and_restore_the_record(pay: PayEnv):
    """Whatever the proof, a refusal at the pool leaves the Provider's record as it was."""
    from dataclasses import replace

    from pytoniq_core import begin_cell

    who, p, tree, _ = one_provider_epoch(pay, depth=2)
    proof = tree.proof(0)
    total = proof.cumulative
    other = MerkleSumTree([Leaf(p.address, Role.GPU, total), Leaf(who.address, Role.GPU, 5)])
    # (an ordinary cell may not hold pruned branches: the message would not even load)
    plain = begin_cell().store_uint(3, 8).store_bytes(tree.root_hash).store_ref(proof.leaf.cell()).end_cell()
    cell_underflow = 9  # the VM's: loading a pruned branch, or a reference that is not there
    cases = {
        "an ordinary cell dressed as a proof": (replace(proof, cell=plain), ExitCode.INVALID_PROOF),
        "a proof of another tree": (other.proof(0), ExitCode.INVALID_PROOF),
        "a path into a pruned branch": (replace(proof, path=proof.path ^ 0b01), cell_underflow),
        "a path ending above the leaf": (replace(proof, path=0b100), ExitCode.INVALID_PROOF),
        "a path running past the leaf": (replace(proof, path=proof.path << 2), cell_underflow),
    }
    for name, (bad, code) in cases.items():
        res = pay.claim(who, p, replace(bad, leaf=replace(bad.leaf, total=total)))
        pool_tx = find_tx(res, to=pay.pool.address)
        assert pool_tx.exit_code == code, name
        find_tx(res, from_=pay.pool.address, to=p.address, bounced=True, success=True)
        assert provider_claimed(pay, p) == 0, name
    assert pay.pool_data().claimed == 0
    # a proof cell deeper than MAX_PROOF_DEPTH is refused at the Provider already
    deep = begin_cell().end_cell()
    for _ in range(40):
        deep = begin_cell().store_ref(deep).end_cell()
    res = pay.claim(who, p, replace(proof, cell=deep))
    find_tx(res, to=p.address, exit_code=ExitCode.INVALID_PROOF)
    # and the real proof still pays
    res = pay.claim(who, p, proof)
    find_tx(res, from_=pay.pool.address, to=who.address, op=Op.RECEIVE_REWARD)
    assert provider_claimed(pay, p) == total == pay.pool_data().claimed


def test_a_refused_claim_in_flight_never_leaves_the_record_above_what_was_paid(pay: PayEnv):
    """Two claims leave the Provider before the pool answers the first: the first (a bad proof)
    bounces after the second (good) was paid. The record ends at exactly what was paid, and
    the next claim pays the rest."""
    from dataclasses import replace

    from offchain.ton.messages import message_relaxed

    who, p, tree, _ = one_provider_epoch(pay, total=ton(3))
    good = tree.proof(0)
    bad = replace(good, leaf=replace(good.leaf, total=ton(1)))  # a smaller total than the leaf's
    msgs = [
        (
            message_relaxed(
                dest=p.address,
                value=ton("0.1"),
                body=Provider.claim_reward_body(cumulative=x.cumulative, path=x.path, proof=x.cell),
            ),
            1,
        )
        for x in (bad, good)
    ]
    before = pay.bc.account(who.address).balance
    res = who.send_messages(msgs)
    find_tx(res, to=pay.pool.address, exit_code=ExitCode.INVALID_PROOF)
    paid = find_tx(res, from_=pay.pool.address, to=who.address, op=Op.RECEIVE_REWARD)
    assert paid.value > ton(2)  # the good claim paid 3 - 1: the bad one had recorded 1 first
    assert provider_claimed(pay, p) == ton(2) == pay.pool_data().claimed
    res = pay.claim(who, p, good)
    find_tx(res, from_=pay.pool.address, to=who.address, op=Op.RECEIVE_REWARD)
    assert provider_claimed(pay, p) == ton(3) == pay.pool_data().claimed
    assert pay.bc.account(who.address).balance - before > ton(3) - ton("0.2")


def test_pool_never_pays_more_than_the_tree_even_if_validators_sign_nonsense(pay: PayEnv):
    """Epoch 2's tree drops A (who claimed 100) and gives B 150: B cannot take A's money."""
    fund_pool(pay, ton(1), 0)
    a_who, b_who = pay.bc.treasury("a"), pay.bc.treasury("b")
    a, b = register_provider(pay, a_who, Role.GPU), register_provider(pay, b_who, Role.GPU)
    t1 = MerkleSumTree([Leaf(a.address, Role.GPU, 100)])
    pay.post_report(*report_for(pay, 1, ton(1), 0, t1))
    pay.claim(a_who, a, t1.proof(0))
    assert pay.pool_data().claimed == 100
    t2 = MerkleSumTree([Leaf(a.address, Role.GPU, 0), Leaf(b.address, Role.GPU, 150)])
    res = pay.post_report(*report_for(pay, 2, 0, 0, t2))
    find_tx(res, to=pay.pool.address, success=True)
    res = pay.claim(b_who, b, t2.proof(1))
    find_tx(res, to=pay.pool.address, exit_code=ExitCode.CLAIM_EXCEEDS_ALLOCATED)
    assert provider_claimed(pay, b) == 0


def test_claim_without_a_reward_pool_is_refused(env):
    """A Provider registered while Root had no pool cannot claim (and keeps its value)."""
    from tests.contracts.conftest import MIN_STAKE

    who = env.bc.treasury("early")
    p, res = env.register(who, Role.BANDWIDTH, MIN_STAKE)
    tree = MerkleSumTree([Leaf(p.address, Role.BANDWIDTH, 1)])
    res = who.send(
        p.address,
        ton("0.1"),
        Provider.claim_reward_body(cumulative=1, path=tree.proof(0).path, proof=tree.proof(0).cell),
    )
    find_tx(res, to=p.address, exit_code=ExitCode.NO_REWARD_POOL)


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    epochs=st.lists(
        st.tuples(
            st.integers(min_value=0, max_value=ton(5)),  # compute revenue
            st.integers(min_value=0, max_value=ton(5)),  # data revenue
            st.lists(st.integers(min_value=0, max_value=100), min_size=4, max_size=4),  # weights
            st.lists(st.booleans(), min_size=4, max_size=4),  # who claims after the epoch
        ),
        min_size=1,
        max_size=3,
    )
)
def test_property_claims_never_overpay(pay: PayEnv, epochs):
    """Random revenue, random allocations, random claims: nobody is paid beyond its leaf, the
    pool pays out exactly what providers recorded, and its balance covers what it owes."""
    snap = pay.bc.snapshot()
    try:
        whos = [pay.bc.treasury(f"prop-{r}") for r in Role]
        provs = [register_provider(pay, w, r) for w, r in zip(whos, Role, strict=True)]
        cumulative = [0, 0, 0, 0]
        for n, (c, d, weights, claims) in enumerate(epochs, start=1):
            if c + d:
                fund_pool(pay, c, d)
            # each role's provider gets a random part (0-100%) of what its role may grow by
            split = split_revenue(c, d, SPLIT_C, SPLIT_D)
            carries = pay.pool_roles().carries.as_tuple()
            for i, w in enumerate(weights):
                cumulative[i] += (split.of(i) + carries[i]) * w // 100
            tree = MerkleSumTree(
                [Leaf(p.address, r, cumulative[i]) for i, (p, r) in enumerate(zip(provs, Role, strict=True))]
            )
            res = pay.post_report(*report_for(pay, n, c, d, tree))
            find_tx(res, to=pay.pool.address, op=Op.POST_EPOCH_REPORT, success=True)
            for i, go in enumerate(claims):
                if go and cumulative[i] > provider_claimed(pay, provs[i]):
                    pay.claim(whos[i], provs[i], tree.proof(i))
                    assert provider_claimed(pay, provs[i]) == cumulative[i]
            d_ = pay.pool_data()
            assert d_.claimed == sum(provider_claimed(pay, p) for p in provs)
            assert d_.claimed <= d_.root_total
            assert pay.bc.account(pay.pool.address).balance >= d_.owed
    finally:
        pay.bc.load_from(snap)


def test_every_leaf_of_partly_filled_trees_claims_on_chain(pay: PayEnv):
    """Trees the off-chain code builds (full nodes, a last node with 1-3 children, one leaf)
    are what the contract walks: every provider of a 6-leaf tree (two levels) claims."""
    fund_pool(pay, ton(10), ton(10))
    whos = [pay.bc.treasury(f"leaf-{i}") for i in range(6)]
    provs = [register_provider(pay, w, list(Role)[i % 4]) for i, w in enumerate(whos)]
    tree = MerkleSumTree([Leaf(p.address, list(Role)[i % 4], ton(1) + i) for i, p in enumerate(provs)])
    assert tree.depth == 2
    res = pay.post_report(*report_for(pay, 1, ton(10), ton(10), tree))
    find_tx(res, to=pay.pool.address, op=Op.POST_EPOCH_REPORT, success=True)
    for i, (w, p) in enumerate(zip(whos, provs, strict=True)):
        res = pay.claim(w, p, tree.proof(i))
        find_tx(res, from_=pay.pool.address, to=w.address, op=Op.RECEIVE_REWARD)
        assert provider_claimed(pay, p) == ton(1) + i
    assert pay.pool_data().claimed == tree.root_total


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    batches=st.lists(
        st.lists(st.tuples(st.integers(min_value=1, max_value=3), st.booleans()), min_size=1, max_size=4),
        min_size=1,
        max_size=4,
    )
)
def test_property_claims_in_flight_never_leave_the_record_above_what_was_paid(pay: PayEnv, batches):
    """Claims go out in batches of up to four in one wallet transaction, so they are in flight
    together: each names an epoch's total (1, 2 or 3 TON, the epochs' cumulative totals) with
    the pool's current proof or one of a tree the pool never adopted. Whatever the order of
    refusals and payments, the Provider's record ends equal to what the pool paid, never above
    the leaf, and the owner received exactly that much."""
    from dataclasses import replace

    from offchain.ton.messages import message_relaxed

    snap = pay.bc.snapshot()
    try:
        fund_pool(pay, ton(10), 0)
        who = pay.bc.treasury("in-flight")
        p = register_provider(pay, who, Role.GPU)
        proofs = {}
        for epoch in (1, 2, 3):  # cumulative 1, 2, 3 TON; claims below use the newest tree
            tree = MerkleSumTree([Leaf(p.address, Role.GPU, ton(epoch))])
            res = pay.post_report(*report_for(pay, epoch, ton(10) if epoch == 1 else 0, 0, tree))
            find_tx(res, to=pay.pool.address, op=Op.POST_EPOCH_REPORT, success=True)
            proofs[epoch] = tree.proof(0)
        newest = proofs[3]
        received = 0
        for batch in batches:
            msgs = []
            for total, true in batch:
                # true: the newest tree's leaf (3 TON) or an older epoch's total against it (refused);
                # forged: a proof of a tree the pool never adopted
                if true:
                    proof = newest if total == 3 else replace(newest, leaf=replace(newest.leaf, total=ton(total)))
                else:
                    stranger = [Leaf(p.address, Role.GPU, ton(total)), Leaf(who.address, Role.GPU, 1)]
                    proof = MerkleSumTree(stranger).proof(0)
                body = Provider.claim_reward_body(cumulative=proof.cumulative, path=proof.path, proof=proof.cell)
                msgs.append((message_relaxed(dest=p.address, value=ton("0.1"), body=body), 1))
            res = who.send_messages(msgs)
            received += sum(
                t.value
                for t in res.transactions
                if t.src == raw(pay.pool.address) and t.dst == raw(who.address) and t.op == Op.RECEIVE_REWARD
            )
            record = provider_claimed(pay, p)
            assert record == pay.pool_data().claimed <= ton(3)
        # each payment carried its payout plus the unspent value of its claim (< 0.1 TON each)
        paid = pay.pool_data().claimed
        assert paid <= received < paid + ton("0.1") * sum(len(b) for b in batches)
        # and whatever happened, the true proof now pays exactly the rest
        if provider_claimed(pay, p) < ton(3):
            pay.claim(who, p, newest)
        assert provider_claimed(pay, p) == pay.pool_data().claimed == ton(3)
    finally:
        pay.bc.load_from(snap)

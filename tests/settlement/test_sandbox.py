"""What the settlement builds, the real RewardPool takes: two epochs on the sandbox.

A client pays a router through a channel; the router redeems twice (epoch 1, epoch 2).
The core settles each epoch from the router's ledger (and refuses an inflated one from a
second router), the report goes to the pool with a 3-of-5 quorum, and every provider claims
with the proof from the published result.json. The pool's per-role carries are the core's
dust, to the nanoTON, and at the end claims + protocol + carries == what was redeemed.
"""

from __future__ import annotations

import argparse
import asyncio
import json
from pathlib import Path

import pytest

from offchain.protocol.epoch import sign_report
from offchain.protocol.merkle import proof_from_json
from offchain.settlement import Redeemed, SettlementError, adopted_root, publish, settle, verify_published
from offchain.settlement._command import add_epoch_command
from offchain.ton.network import EmulatorProvider, NetworkProvider
from offchain.ton.transaction import find_tx, raw
from tests.contracts.payments import PayEnv, fund_pool, provider_claimed, register_provider
from tests.settlement.helpers import USAGE_EPOCH, addr, crawl, gpu, inputs, ledger, relay
from wrappers.opcodes import Op
from wrappers.provider import Role
from wrappers.reward_pool import RoleAmounts

DEPOSIT = 100 * 10**9


def _redeem(pay: PayEnv, ch, compute: int, data: int) -> None:
    res = pay.redeem(ch, pay.voucher(ch, compute, data))
    find_tx(res, from_=ch.address, to=pay.pool.address, op=Op.DEPOSIT_REVENUE, success=True)


def _post(pay: PayEnv, result) -> None:
    res = pay.post_report(result.report, sign_report(result.report, pay.validators[1:4]))
    find_tx(res, to=pay.pool.address, op=Op.POST_EPOCH_REPORT, success=True)


def _claim_all(pay: PayEnv, folder: Path, who_of: dict[str, object], providers: dict[str, object]) -> int:
    """Every provider of the published epoch claims with its proof from result.json."""
    paid = 0
    for entry in json.loads((folder / "result.json").read_text())["providers"]:
        p = providers[entry["provider"]]
        before = provider_claimed(pay, p)
        if entry["cumulative"] == before:
            continue
        res = pay.claim(who_of[entry["provider"]], p, proof_from_json(entry["proof"]))
        find_tx(res, from_=pay.pool.address, op=Op.RECEIVE_REWARD)
        assert provider_claimed(pay, p) == entry["cumulative"]
        paid += entry["cumulative"] - before
    return paid


def test_two_epochs_of_the_core_are_adopted_and_claimed(pay: PayEnv, tmp_path: Path, monkeypatch, capsys):
    epochs = tmp_path / "epochs"
    ch, _ = pay.open_channel(DEPOSIT)
    # the providers, registered through Root; the validator's crawl rows name its wallet
    whos = {name: pay.bc.treasury(f"settle-{name}") for name in ("g0", "g1", "g2", "b0", "b1", "v0", "v1")}
    roles = {"g": Role.GPU, "b": Role.BANDWIDTH, "v": Role.VALIDATOR}
    provs = {name: register_provider(pay, who, roles[name[0]]) for name, who in whos.items()}
    router_p = register_provider(pay, pay.router, Role.ROUTER)
    a = {name: raw(p.address) for name, p in provs.items()}
    who_of = {raw(p.address): whos[n] for n, p in provs.items()} | {raw(router_p.address): pay.router}
    by_addr = {raw(p.address): p for p in provs.values()} | {raw(router_p.address): router_p}
    router = raw(pay.router.address)
    v0_wallet = raw(whos["v0"].address)

    # ---- epoch 1: compute 1,000,000,007 and data 300,000,011 redeemed -----------------------
    c1, d1 = 1_000_000_007, 300_000_011
    _redeem(pay, ch, c1, d1)
    rows = [gpu(a["g0"], 3, 400_000_000), gpu(a["g1"], 3, 400_000_000), gpu(a["g2"], 1, 200_000_007),
            relay(a["b0"], 10, 200_000_000), relay(a["b1"], 7, 90_000_011), crawl(v0_wallet, 5, 10_000_000)]
    honest = ledger(router, rows, provider=raw(router_p.address))
    liar = ledger(addr("liar"), [gpu(a["g2"], 10**6, 10**9)])  # its channels redeemed nothing
    pots = pay.pool_data()
    assert (pots.compute_pot, pots.data_pot) == (c1, d1)
    inp1 = inputs(
        [honest, liar], compute=pots.compute_pot, data=pots.data_pot, epoch=pots.epoch + 1,
        pool=raw(pay.pool.address), redeemed={router: Redeemed(c1, d1)},
        reputations={a["g2"]: 500_000}, verifications={a["v1"]: 2}, validator_providers={v0_wallet: a["v0"]},
    )
    r1 = settle(inp1)
    assert [x.router for x in r1.refused] == [addr("liar")]
    assert all(x.dust > 0 for x in r1.roles if x.name in ("gpu", "bandwidth"))  # dust in the roles
    folder1 = publish(r1, inp1, epochs)
    _post(pay, r1)
    roles1 = pay.pool_roles()
    assert roles1.totals == r1.role_totals and roles1.carries == r1.carries
    assert pay.pool_data().carry == sum(r1.carries.as_tuple())
    assert verify_published(folder1, pay.pool_data().merkle_root, pay.pool_data().root_total) == []
    # two providers claim at once from epoch 1's proofs
    paid = 0
    for name in ("g0", "b0"):
        entry = next(e for e in json.loads((folder1 / "result.json").read_text())["providers"]
                     if e["provider"] == a[name])
        res = pay.claim(whos[name], provs[name], proof_from_json(entry["proof"]))
        find_tx(res, from_=pay.pool.address, to=whos[name].address, op=Op.RECEIVE_REWARD)
        paid += entry["cumulative"]

    # ---- epoch 2: more compute and data; g1, b1 and the validators do nothing ----------------
    c2, d2 = 500_000_003, 100_000_001
    _redeem(pay, ch, c1 + c2, d1 + d2)
    e2 = USAGE_EPOCH + 1
    rows = [gpu(a["g0"], 2, 250_000_000, epoch=e2), gpu(a["g2"], 5, 250_000_003, epoch=e2),
            relay(a["b0"], 3, 100_000_001, epoch=e2)]
    honest2 = ledger(router, rows, provider=raw(router_p.address), epoch=USAGE_EPOCH + 1)
    pots = pay.pool_data()
    assert (pots.compute_pot, pots.data_pot, pots.epoch) == (c2, d2, 1)
    books = pay.pool_roles()
    inp2 = inputs(
        [honest2], compute=pots.compute_pot, data=pots.data_pot, epoch=pots.epoch + 1,
        pool=raw(pay.pool.address), usage_epoch=USAGE_EPOCH + 1, redeemed={router: Redeemed(c2, d2)},
        reputations={a["g2"]: 500_000}, validator_providers={v0_wallet: a["v0"]},
        previous=r1.books()["previous"], role_totals=books.totals, carries=books.carries,
    )
    r2 = settle(inp2)
    assert r2.refused == [] and r2.tree.root_total > r1.tree.root_total
    assert r2.books()["role_totals"] == r2.role_totals
    # leaves persist: g1, b1, v0 and v1 earned nothing, their totals stand
    for name in ("g1", "b1", "v0", "v1"):
        assert r2.cumulative[(a[name], roles[name[0]])] == r1.cumulative[(a[name], roles[name[0]])]
    # the validator role had no work: its share joins its carry
    v_line = r2.roles[Role.VALIDATOR]
    assert v_line.allocated == 0 and v_line.dust == v_line.share + r1.carries.validator
    folder2 = publish(r2, inp2, epochs)
    _post(pay, r2)
    roles2 = pay.pool_roles()
    assert roles2.totals == r2.role_totals and roles2.carries == r2.carries
    assert roles2.carries.validator == r2.carries.validator > 0

    # the chain's view of both epochs: epoch 2 from the pool's state, epoch 1 from its transaction
    net = NetworkProvider(EmulatorProvider(pay.bc))
    got2 = asyncio.run(adopted_root(net, raw(pay.pool.address), 2))
    got1 = asyncio.run(adopted_root(net, raw(pay.pool.address), 1))
    assert got2.where == "the pool's state" and got1.where.startswith("transaction lt=")
    assert (got1.merkle_root, got1.root_total) == (int(r1.summary.merkle_root, 16), r1.tree.root_total)
    assert verify_published(folder1, got1.merkle_root, got1.root_total) == []
    assert verify_published(folder2, got2.merkle_root, got2.root_total) == []
    assert verify_published(folder1, got2.merkle_root) != []  # epoch 1's files are not epoch 2's root

    # `cocoon epoch verify N --network`, on this chain (the command's runner: offchain.cli's
    # parser imports onnxruntime, which must not load after the sandbox's emulator)
    import offchain.ton.network

    async def this_chain(*_args, **_kw):
        return NetworkProvider(EmulatorProvider(pay.bc))

    monkeypatch.setattr(offchain.ton.network, "create_network_provider", this_chain)
    parser = argparse.ArgumentParser()
    verify = add_epoch_command(parser.add_subparsers())
    base = ["--dir", str(epochs), "--network", "sandbox", "--root", raw(pay.root.address)]
    capsys.readouterr()
    for n in ("1", "2"):
        assert verify(parser.parse_args(["epoch", "verify", n, *base])) == 0
        assert "sandbox: adopted" in capsys.readouterr().out
    with pytest.raises(SettlementError, match="is not a Root: get_params failed"):
        verify(parser.parse_args(["epoch", "verify", "1", *base[:-1], addr("another-root")]))
    bad_root = register_provider(pay, pay.bc.treasury("not-root"), Role.GPU)  # a contract, not a Root
    with pytest.raises(SettlementError):
        verify(parser.parse_args(["epoch", "verify", "1", *base[:-1], raw(bad_root.address)]))

    # ---- every provider claims the rest with epoch 2's proofs --------------------------------
    paid += _claim_all(pay, folder2, who_of, by_addr)
    pool = pay.pool_data()
    assert paid == pool.claimed == pool.root_total == r2.tree.root_total
    # to the nanoTON: providers' claims + the protocol's shares + the roles' carries = redeemed
    protocol = r1.summary.protocol + r2.summary.protocol
    assert paid + protocol + sum(r2.carries.as_tuple()) == c1 + d1 + c2 + d2
    assert pool.owed == pool.carry == sum(r2.carries.as_tuple())
    assert pay.bc.account(pay.pool.address).balance >= pool.owed


def test_an_epoch_nobody_earned_in_is_adopted_with_an_empty_tree(pay: PayEnv):
    """Revenue came in, the only ledger was refused (it claimed twice what its channels paid):
    that router's revenue is consumed all the same, the core's empty tree is accepted and each
    role carries its whole share; the next epoch pays it out."""
    fund_pool(pay, 10**9, 10**8)
    liar = ledger(raw(pay.router.address), [gpu(addr("g-liar"), 1, 2 * 10**9), relay(addr("b-liar"), 1, 2 * 10**8)],
                  provider=addr("router-p"))
    red = {raw(pay.router.address): Redeemed(10**9, 10**8)}
    inp = inputs([liar], compute=10**9, data=10**8, pool=raw(pay.pool.address), redeemed=red)
    r = settle(inp)
    assert len(r.refused) == 1 and (r.summary.compute_consumed, r.summary.data_consumed) == (10**9, 10**8)
    assert r.tree.root_total == 0 and r.allocations == []
    _post(pay, r)
    assert pay.pool_roles().carries == r.carries == RoleAmounts(*(r.split.of(x) for x in Role))
    who = pay.bc.treasury("late-gpu")
    p = register_provider(pay, who, Role.GPU)
    g = ledger(raw(pay.router.address), [gpu(raw(p.address), 1, 0)], provider=addr("router-p"))
    r2 = settle(inputs([g], compute=0, data=0, epoch=2, pool=raw(pay.pool.address), **r.books()))
    _post(pay, r2)
    res = pay.claim(who, p, r2.proof(p.address, Role.GPU))
    find_tx(res, from_=pay.pool.address, to=who.address, op=Op.RECEIVE_REWARD)
    assert provider_claimed(pay, p) == r.split.gpu

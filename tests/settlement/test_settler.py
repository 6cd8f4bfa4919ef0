"""The validator's settlement loop (`offchain.validator._settle.Settler`) against the real
pool on the sandbox: 3-of-5, four validators settle the same router epoch at once.

Three get the router's honest ledger and compute the same bytes; they exchange signatures
(the test relays them as the router does), one reaches the quorum and posts, the pool adopts
it, each publishes. The fourth got another ledger (the router signed a second version): its
digest differs, it is named in the logs, never counted, and posts nothing. The fifth never
signs: the quorum is reached without it. Then a second epoch settles from the published
first, deposits counted once, with the fifth taking part: it saw none of epoch 1, credits it
from the published inputs and computes the same bytes; and the money adds up to the nanoTON.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

from offchain.protocol.wire import ReportSignature
from offchain.settlement import sign_ledger, verify_published
from offchain.settlement._claimer import ClaimConfig, Claimer
from offchain.ton.network import EmulatorProvider, NetworkProvider
from offchain.ton.transaction import raw
from offchain.validator._settle import SettleConfig, Settler, SettleStore
from tests.contracts.payments import PayEnv, provider_claimed, register_provider
from tests.settlement.helpers import crawl, gpu, relay
from wrappers.provider import Role
from wrappers.reward_pool import CLAIM_FEE

DEPOSIT = 100 * 10**9


class _Sent:
    def __init__(self, res) -> None:
        self.res = res

    async def wait_delivered(self, timeout: float = 60.0):
        return self.res.transactions[1:2]  # the destination's transaction


class _Wallet:
    """A sandbox treasury as the agents' wallet Sender (send -> wait_delivered)."""

    def __init__(self, treasury) -> None:
        self.treasury = treasury
        self.address = treasury.address

    async def send(self, *, to, value, body=None, init=None, bounce=True, mode=1):
        return _Sent(self.treasury.send(to, value, body, init=init, bounce=bounce, mode=mode))


def _settlers(pay: PayEnv, tmp: Path, ledgers: list, n: int) -> list[Settler]:
    settlers: list[Settler] = []

    def relay_from(i: int):
        async def send(frame: ReportSignature) -> None:  # the router: to every other validator session
            for j, s in enumerate(settlers):
                if j != i:
                    s.on_signature(frame)

        return send

    for i in range(n):
        async def request(epoch: int, i: int = i):
            return ledgers[i](epoch)

        settlers.append(
            Settler(
                SettleConfig(epoch_seconds=10, epochs_dir=tmp / f"v{i}" / "epochs", quorum_timeout=3.0),
                chain=EmulatorProvider(pay.bc),
                wallet=_Wallet(pay.bc.treasury(f"validator-wallet-{i}")),
                root=raw(pay.root.address),
                key=pay.validators[i],
                router_key=bytes(pay.router_key.verify_key),
                store=SettleStore(tmp / f"v{i}" / "settle.db"),
                request_ledger=request,
                send_signature=relay_from(i),
            )
        )
    return settlers


def test_a_quorum_of_settlers_posts_publishes_and_outvotes_a_different_tree(pay: PayEnv, tmp_path: Path, caplog):
    caplog.set_level(logging.INFO, logger="cocoon.validator.settle")
    ch, _ = pay.open_channel(DEPOSIT)
    b0, b1 = pay.bc.treasury("node-0"), pay.bc.treasury("node-1")
    p0, p1 = register_provider(pay, b0, Role.BANDWIDTH), register_provider(pay, b1, Role.BANDWIDTH)
    v_wallet = pay.bc.treasury("crawler")
    v_prov = register_provider(pay, v_wallet, Role.VALIDATOR)
    router_prov = register_provider(pay, pay.router, Role.ROUTER)
    router, router_p = raw(pay.router.address), raw(router_prov.address)
    e1 = 1_000
    rows = [relay(raw(p0.address), 30, 300_000_000, epoch=e1), relay(raw(p1.address), 10, 100_000_007, epoch=e1),
            crawl(raw(v_wallet.address), 4, 40_000_000, epoch=e1)]
    paid_in = 440_000_007
    pay.redeem(ch, pay.voucher(ch, 0, paid_in))

    def honest(epoch: int):
        return sign_ledger(pay.router_key, 1, epoch=epoch, router=router, provider=router_p,
                           rows=[r for r in rows if r.epoch == epoch])

    def other(epoch: int):  # a second ledger the router signed: an extra gpu row of a model Root does not allow
        extra = [gpu(raw(p0.address).replace("0:", "0:f", 1)[:66], 1, 5, epoch=epoch)]
        return sign_ledger(pay.router_key, 1, epoch=epoch, router=router, provider=router_p,
                           rows=[r for r in rows if r.epoch == epoch] + extra)

    everyone = _settlers(pay, tmp_path, [honest, honest, honest, other, honest], 5)
    settlers = everyone[:4]  # the fifth sits epoch 1 out

    async def epoch(n: int):
        # every validator reads the pool before any posts (as at one boundary on a real chain)
        barrier = asyncio.Barrier(len(settlers))
        for s in settlers:
            async def read_then_wait(ledger, threshold, s=s):
                inputs = await Settler.build_inputs(s, ledger, threshold)
                await barrier.wait()
                return inputs

            s.build_inputs = read_then_wait
        return await asyncio.gather(*(s.settle_epoch(n) for s in settlers))

    results = asyncio.run(epoch(e1))
    assert results[3] is None and all(r is not None for r in results[:3])
    digest = results[0].digest()
    assert results[1].digest() == results[2].digest() == digest
    pool = pay.pool_data()
    assert pool.epoch == 1 and f"{pool.merkle_root:064x}" == results[0].summary.merkle_root
    named = [r.getMessage() for r in caplog.records if "signed another result" in r.getMessage()]
    key3 = bytes(pay.validators[3].verify_key).hex()
    # the honest ones (their digest) name the odd one; it names them from its side
    assert any(key3 in m and f"ours {digest.hex()[:16]}" in m for m in named)
    assert all(key3 in m for m in named if f"ours {digest.hex()[:16]}" in m)
    for i in range(3):
        folder = tmp_path / f"v{i}" / "epochs" / "1"
        assert verify_published(folder, pool.merkle_root, pool.root_total) == []
        assert settlers[i].store.outcome(e1)[1] == "adopted"
    assert not (tmp_path / "v3" / "epochs" / "1").exists() and settlers[3].store.outcome(e1)[1] == "no_quorum"
    r1 = results[0]
    cum = r1.cumulative
    assert cum[(raw(p0.address), Role.BANDWIDTH)] > cum[(raw(p1.address), Role.BANDWIDTH)] > 0
    assert cum[(raw(v_prov.address), Role.VALIDATOR)] > 0  # the crawl rows named the wallet: its Provider got it
    assert cum[(router_p, Role.ROUTER)] > 0

    # ---- epoch 2: a new deposit; the three honest settle from their published epoch 1 -------------
    e2 = e1 + 1
    rows.append(relay(raw(p1.address), 50, 200_000_000, epoch=e2))
    pay.redeem(ch, pay.voucher(ch, 0, paid_in + 200_000_000))
    import shutil

    shutil.copytree(tmp_path / "v0" / "epochs", tmp_path / "v4" / "epochs")  # the fifth fetches what was published
    settlers = [everyone[0], everyone[1], everyone[4]]
    results2 = asyncio.run(epoch(e2))
    assert all(r is not None for r in results2) and pay.pool_data().epoch == 2
    r2 = results2[0]
    assert results2[2].digest() == r2.digest()  # the fifth credited epoch 1 from its inputs: the same bytes
    assert everyone[4].store.credited_through() == 2
    assert r2.refused == []  # the credit: epoch 1's ledger was credited, only the new deposit backs epoch 2
    assert r2.cumulative[(raw(p0.address), Role.BANDWIDTH)] == cum[(raw(p0.address), Role.BANDWIDTH)]
    # nothing new in the pots: no report
    assert asyncio.run(epoch(e2 + 1)) == [None, None, None] and pay.pool_data().epoch == 2

    # every provider claims; claims + protocol + carries == what the channel paid in
    from tests.settlement.test_sandbox import _claim_all

    who_of = {raw(p0.address): b0, raw(p1.address): b1, raw(v_prov.address): v_wallet, router_p: pay.router}
    by_addr = {raw(p0.address): p0, raw(p1.address): p1, raw(v_prov.address): v_prov, router_p: router_prov}
    folder = tmp_path / "v0" / "epochs"
    paid = 0
    for p, who in ((p0, b0), (p1, b1)):  # the data nodes' claimers: above their threshold only
        net = NetworkProvider(EmulatorProvider(pay.bc), _Wallet(who))
        owed = r2.cumulative[(raw(p.address), Role.BANDWIDTH)]
        high = Claimer(net, p, Role.BANDWIDTH, ClaimConfig(epochs_dir=folder, threshold=owed))
        assert asyncio.run(high.claim_once()) == 0 and provider_claimed(pay, p) == 0
        low = Claimer(net, p, Role.BANDWIDTH, ClaimConfig(epochs_dir=folder, threshold=1))
        assert low.config.floor == CLAIM_FEE  # never below what a claim may cost
        assert asyncio.run(low.claim_once()) == owed == provider_claimed(pay, p)
        assert asyncio.run(low.claim_once()) == 0  # nothing new
        paid += owed
    paid += _claim_all(pay, folder / "2", who_of, by_addr)
    assert provider_claimed(pay, p1) == r2.cumulative[(raw(p1.address), Role.BANDWIDTH)]
    protocol = r1.summary.protocol + r2.summary.protocol
    assert paid + protocol + sum(r2.carries.as_tuple()) == paid_in + 200_000_000
    for s in everyone:
        s.store.close()

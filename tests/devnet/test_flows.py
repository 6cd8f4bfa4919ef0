"""TON flows on the emulator: after transfers, a bounce and a fresh account, every balance
change plus every fee sums to zero, and each account's change is what it sent and received."""

from __future__ import annotations

from offchain.devnet._flows import flows, mark, settled_flows
from offchain.ton._wallet import WalletKey
from offchain.ton.network import create_network_provider

TON = 10**9


async def test_every_nanoton_is_accounted_for() -> None:
    net = await create_network_provider("sandbox", env={})
    a = WalletKey.localnet(0, with_secret=False).address
    b = WalletKey.localnet(1, with_secret=False).address
    fresh = WalletKey.localnet(40, with_secret=False).address  # not deployed: a bounceable send bounces
    seeds = [a, b]
    marks = await mark(net.chain, seeds)
    await (await net.sender().send(to=b, value=2 * TON)).wait_delivered()
    await (await net.sender().send(to=fresh, value=TON, bounce=True)).wait_delivered()
    await (await net.sender().send(to=fresh, value=TON // 2, bounce=False)).wait_delivered()
    got = await flows(net.chain, marks)
    assert got.balanced, got
    assert got.fees > 0 and got.forward > 0 and got.transactions >= 6
    raw = {x: x.to_str(False) for x in (a, b, fresh)}
    assert 2 * TON - TON // 1000 < got.deltas[raw[b]] < 2 * TON  # what was sent, less its own gas
    assert TON // 2 - TON // 1000 < got.deltas[raw[fresh]] <= TON // 2  # the bounced TON came back
    assert got.deltas[raw[a]] < -(2 * TON + TON // 2)
    assert (await settled_flows(net.chain, marks)).deltas == got.deltas


async def test_an_unaccounted_change_shows_as_a_residue() -> None:
    net = await create_network_provider("sandbox", env={})
    a = WalletKey.localnet(0, with_secret=False).address
    b = WalletKey.localnet(1, with_secret=False).address
    marks = await mark(net.chain, [a])  # b's starting balance is not known to the marks
    await (await net.sender().send(to=b, value=TON)).wait_delivered()
    got = await flows(net.chain, marks)
    assert not got.balanced  # b counted from 0: its whole balance looks created

"""Settlement across real processes: what the router earned reaches the RewardPool on chain,
whatever happens. A Provider's key update is followed; the router redeems on shutdown; a
redeem that fails (the router's wallet cannot pay) is retried and never loses the voucher;
a cooperative close pays the pool exactly the charge and refunds the rest; a unilateral close
waits Root's close delay, during which the router redeems what it earned.

Money is read where an operator reads it: the router's SQLite books (read-only) and the
channel's transactions on the local chain, decoded into the contracts' events."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from nacl.signing import SigningKey
from pytoniq_core import Address

from offchain.client import CocoonClient
from offchain.devnet import Devnet, DevnetConfig, wallet_env
from offchain.devnet._network import FIRST_WORKER, FOUNDATION, ROUTER
from offchain.errors import ContractRefused
from offchain.ton._wallet import WalletKey, localnet_mnemonic
from offchain.ton.network import ChainContractProvider, LocalnetProvider, ToncenterProvider, WalletSender
from offchain.ton.watcher import MessageReceived
from wrappers.channel import CHANNEL_DEPOSIT_FEE, Channel, ChannelData, ChannelState
from wrappers.errors import ExitCode
from wrappers.events import ChannelClosed, ChannelClosing, RevenueDeposited, VoucherRedeemed, default_registry
from wrappers.opcodes import Op

from ._helpers import MODEL, embed, logs, router_config, router_db, wait_log, wait_until

TON = 10**9
CLOSE_DELAY = 5  # seconds: long enough to be refused before it, short enough to wait out
CLOSE_VALUE = 50_000_000  # what CocoonClient attaches to StartClose / FinishClose / CooperativeClose


# ---- fixtures and readers -------------------------------------------------------------------------
@pytest.fixture(scope="module")
def net(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Devnet]:
    """Nothing is redeemed by the timer (600 s); a request worth 0.001 TON or more is redeemed
    at once (the threshold), smaller ones wait. Root's close delay is CLOSE_DELAY seconds."""
    d = Devnet(tmp_path_factory.mktemp("settle"), DevnetConfig(
        workers=2, coefficients=[1000, 1000], redeem_interval=600.0, redeem_threshold="0.001",
        close_delay=CLOSE_DELAY))
    d.start()
    yield d
    d.close()


def charged(net: Devnet, channel: str) -> int:
    rows = router_db(net, "SELECT charged_compute FROM accounts WHERE channel = ?", channel)
    return int(rows[0][0]) if rows else 0


def vouchers(net: Devnet, channel: str) -> list[int]:
    return [c for (c,) in router_db(net, "SELECT compute FROM vouchers WHERE channel = ? ORDER BY compute", channel)]


def earned(net: Devnet, channel: str) -> int:
    """The voucher the router may redeem: the newest it holds at or below what it charged."""
    total = charged(net, channel)
    return max(v for v in vouchers(net, channel) if v <= total)


def redeems(net: Devnet, channel: str) -> list[tuple[int, str, str]]:
    return router_db(net, "SELECT compute, status, detail FROM redeems WHERE channel = ? ORDER BY id", channel)


def usage(net: Devnet, provider: str) -> int:
    (n,) = router_db(net, "SELECT coalesce(sum(requests), 0) FROM usage WHERE provider = ?", provider)[0]
    return int(n)


def gateway_channel(net: Devnet) -> str:
    return str(net.sup.procs["gateway"].info["channel"])


async def events(chain: ToncenterProvider, address: str) -> list[Any]:
    """Every event of the account's transactions, oldest first."""
    registry = default_registry()
    txs = sorted(await chain.get_transactions(address, limit=100), key=lambda t: t.lt)
    return [e for tx in txs for e in registry.decode(tx)]


async def wait_events(
    chain: ToncenterProvider, address: str, check: Callable[[list[Any]], bool], what: str, net: Devnet,
    timeout: float = 30.0,
) -> list[Any]:
    deadline = time.monotonic() + timeout
    while True:
        got = await events(chain, address)
        if check(got):
            return got
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not on {address} within {timeout:g}s: {got}\n{logs(net)}")
        await asyncio.sleep(0.2)


def of(kind: type, evs: list[Any]) -> list[Any]:
    return [e for e in evs if isinstance(e, kind)]


def after(kind: type, evs: list[Any]) -> list[Any]:
    """The events after the first `kind` (none if there is none)."""
    first = next((i for i, e in enumerate(evs) if isinstance(e, kind)), len(evs))
    return evs[first + 1:]


async def channel_data(chain: ToncenterProvider, address: str) -> ChannelData:
    return await Channel.create_from_address(Address(address)).get_channel_data(
        ChainContractProvider(chain, Address(address)))


def wallet(chain: ToncenterProvider, i: int) -> WalletSender:
    return WalletSender(chain, WalletKey.from_mnemonic(localnet_mnemonic(i)))


@contextlib.asynccontextmanager
async def direct_client(net: Devnet, store: Path) -> AsyncIterator[tuple[CocoonClient, ToncenterProvider]]:
    """A CocoonClient of its own (not the gateway's): the spare funded wallet, a fresh channel key
    (so a fresh channel), its own store."""
    store.mkdir(parents=True, exist_ok=True)
    chain = LocalnetProvider(net.api_url)
    client = CocoonClient(router_config(net), chain=chain, wallet=wallet(chain, net.client_wallet + 1),
                          channel_key=SigningKey.generate(), store=store / "client.db")
    try:
        yield client, chain
    finally:
        await client.close()
        await chain.close()


# ---- a cooperative close ---------------------------------------------------------------------------
def test_cooperative_close_pays_the_pool_exactly_the_charge_and_refunds_the_rest(net: Devnet, tmp_path: Path) -> None:
    async def main() -> None:
        async with direct_client(net, tmp_path) as (client, chain):
            channel = await client.open_channel(deposit=TON)
            # worth more than the threshold: redeemed at once; then three below it, left for the close
            big = await client.embed([f"sentence number {i} about settling a payment channel" for i in range(100)],
                                     model=MODEL)
            assert big.cost >= 10**6
            await wait_events(chain, channel, lambda e: bool(of(VoucherRedeemed, e)), "the threshold redeem", net)
            costs = [big.cost] + [(await client.embed([f"small {i}"], model=MODEL)).cost for i in range(3)]
            approval = await client.close_cooperative()
            evs = await wait_events(chain, channel, lambda e: bool(of(ChannelClosed, e)), "ChannelClosed", net)
            data = await channel_data(chain, channel)
            balance = (await chain.get_account(channel)).balance
            assert data.reward_pool is not None
            pool = data.reward_pool.to_str(is_user_friendly=False)
            deposited = [e for e in of(RevenueDeposited, await events(chain, pool)) if e.src == channel]

        total = charged(net, channel)
        assert approval.compute == total == sum(costs) == client.charged_compute and approval.data == 0
        (closed,) = of(ChannelClosed, evs)
        redeemed = of(VoucherRedeemed, evs)
        assert closed.how == "cooperative" and closed.client == client.client
        assert len(redeemed) == 1 and 0 < redeemed[0].compute == redeemed[0].total_compute < total
        assert closed.compute > 0, "the close paid what the threshold redeem had not"
        assert redeemed[0].compute + closed.compute == total, "the pool got exactly the router's charge"
        assert redeemed[0].pool == pool and [e.compute for e in deposited] == [redeemed[0].compute, closed.compute]
        assert data.state == ChannelState.CLOSED and data.deposit == TON and data.redeemed_compute == total
        # the rest goes back: the deposit less the charge, plus what the contract documents as the
        # client's (its deposit fee, the close message's unspent value), less gas
        assert TON - total <= closed.refund <= TON - total + CHANNEL_DEPOSIT_FEE + CLOSE_VALUE
        assert balance == 0, "nothing stays on a closed channel"

    asyncio.run(main())


# ---- a unilateral close ----------------------------------------------------------------------------
def test_router_redeems_what_it_earned_when_the_channel_starts_closing(net: Devnet, tmp_path: Path) -> None:
    """Below the threshold and long before the timer: the close delay is the router's last
    chance, so ChannelClosing must trigger a redeem of whatever was earned."""

    async def main() -> None:
        async with direct_client(net, tmp_path) as (client, chain):
            channel = await client.open_channel(deposit=TON)
            costs = [(await client.embed([f"a request before closing {i}"], model=MODEL)).cost for i in range(3)]
            total = charged(net, channel)
            assert total == sum(costs) < 10**6
            assert not of(VoucherRedeemed, await events(chain, channel)), "below the threshold: not redeemed yet"
            await client.start_close()
            evs = await wait_events(chain, channel, lambda e: bool(of(VoucherRedeemed, after(ChannelClosing, e))),
                                    "a VoucherRedeemed after ChannelClosing", net, timeout=CLOSE_DELAY)
            (redeemed,) = of(VoucherRedeemed, after(ChannelClosing, evs))
            assert redeemed.total_compute == earned(net, channel) <= total

    asyncio.run(main())


def test_unilateral_close_is_refused_before_the_delay_and_refunds_after_it(net: Devnet, tmp_path: Path) -> None:
    async def main() -> None:
        async with direct_client(net, tmp_path) as (client, chain):
            channel = await client.open_channel(deposit=TON)
            for i in range(2):
                await client.embed([f"a request before a unilateral close {i}"], model=MODEL)
            await client.disconnect()
            await client.start_close()
            closing = await channel_data(chain, channel)
            assert closing.state == ChannelState.CLOSING and closing.close_delay == CLOSE_DELAY
            assert of(ChannelClosing, await events(chain, channel))

            with pytest.raises(ContractRefused) as early:  # too early: refused, the channel stays closing
                await client.finish_close()
            assert early.value.exit_code == ExitCode.CLOSE_DELAY_NOT_OVER
            evs = await events(chain, channel)
            refused = [e for e in of(MessageReceived, evs) if e.op == Op.FINISH_CLOSE]
            assert refused and not refused[-1].success and refused[-1].exit_code == ExitCode.CLOSE_DELAY_NOT_OVER
            assert (await channel_data(chain, channel)).state == ChannelState.CLOSING and not of(ChannelClosed, evs)

            while time.time() < closing.close_at + 1:  # bounded by the close delay
                await asyncio.sleep(0.2)
            await client.finish_close()
            evs = await wait_events(chain, channel, lambda e: bool(of(ChannelClosed, e)), "ChannelClosed", net)
            data = await channel_data(chain, channel)

        (closed,) = of(ChannelClosed, evs)
        assert closed.how == "finish" and closed.client == client.client and closed.compute == 0
        assert data.state == ChannelState.CLOSED
        # whatever the router redeemed during the delay went to the pool; the client gets the rest
        # (plus its deposit fee and the unspent value of StartClose and FinishClose, less gas)
        paid = sum(e.compute for e in of(VoucherRedeemed, evs))
        assert paid == data.redeemed_compute
        assert TON - paid <= closed.refund <= TON - paid + CHANNEL_DEPOSIT_FEE + 2 * CLOSE_VALUE

    asyncio.run(main())


# ---- UpdateNode --------------------------------------------------------------------------------------
def test_update_node_drops_the_worker_and_refuses_its_old_key(net: Devnet) -> None:
    """worker0's owner moves its Provider to another node key (`provider update-node`): the
    router drops worker0 at once and refuses its reconnects with the old key; worker1 serves."""
    from scripts._runner import run_script_async

    provider0, provider1 = (w.info["provider"] for w in net.workers)
    new_key = bytes(SigningKey.generate().verify_key).hex()
    changed = time.time()
    asyncio.run(run_script_async("provider", [
        "--network", "localnet", "--url", net.api_url, "update-node", "--root", net.root, "--role", "gpu",
        "--node-key", new_key, "--endpoint", "worker://devnet-0-moved"], env=wallet_env(FIRST_WORKER)))
    wait_log(net, "router", f"dropping worker {provider0}")
    (dropped,) = [json.loads(line)["ts"] for line in net.sup.procs["router"].output(400).splitlines()
                  if f"dropping worker {provider0}" in line]
    assert dropped - changed < 5, "dropped when the directory's next poll sees the new key (0.3 s polls)"
    # it reconnects with its old key and is refused
    wait_log(net, "worker0", "NOT_A_PROVIDER: the node key is not the one the Provider holds")
    served0, served1 = usage(net, provider0), usage(net, provider1)
    costs = [embed(net, [f"served by the worker whose key still matches {i}"]) for i in range(3)]
    assert all(c > 0 for c in costs)
    assert usage(net, provider0) == served0 and usage(net, provider1) == served1 + 3


# ---- redeem on shutdown (last on this network: it stops the router) ----------------------------------
def test_router_redeems_what_it_earned_on_shutdown(net: Devnet) -> None:
    channel = gateway_channel(net)
    costs = [embed(net, [f"a small request before shutdown {i}"]) for i in range(3)]
    total, voucher = charged(net, channel), earned(net, channel)
    assert all(c > 0 for c in costs) and 0 < voucher <= total < 10**6

    async def on_chain() -> list[Any]:
        chain = LocalnetProvider(net.api_url)
        try:
            return await events(chain, channel)
        finally:
            await chain.close()

    assert not of(VoucherRedeemed, asyncio.run(on_chain())), "below the threshold, before the timer: nothing yet"
    assert net.sup.stop("router") == 0, logs(net)  # SIGTERM: a graceful stop
    (redeemed,) = of(VoucherRedeemed, asyncio.run(on_chain()))
    assert redeemed.total_compute == voucher and redeemed.router == net.router["address"]
    assert redeems(net, channel)[-1][:2] == (voucher, "ok")


# ---- a redeem that fails ------------------------------------------------------------------------------
@pytest.fixture
def timer_net(tmp_path: Path) -> Iterator[Devnet]:
    """The timer redeems every second; the threshold never triggers."""
    d = Devnet(tmp_path, DevnetConfig(workers=1, redeem_interval=1.0, redeem_threshold="1000"))
    d.start()
    yield d
    d.close()


def test_a_failed_redeem_keeps_the_voucher_and_is_retried(timer_net: Devnet) -> None:
    """The failure is real: the router's wallet (localnet wallet 1) is emptied down to less than
    REDEEM_FEE, so its RedeemVoucher never leaves it; refilled, the next timer round redeems."""
    net = timer_net
    channel = gateway_channel(net)
    keep = 20_000_000  # below REDEEM_FEE: the router's wallet can pay its own gas, not a RedeemVoucher

    async def move(frm: int, to: int, value: Callable[[int], int]) -> None:
        chain = LocalnetProvider(net.api_url)
        try:
            sender = wallet(chain, frm)
            await sender.send(to=wallet(chain, to).address, value=value(await sender.balance()))
        finally:
            await chain.close()

    async def on_chain() -> tuple[list[Any], ChannelData]:
        chain = LocalnetProvider(net.api_url)
        try:
            return await events(chain, channel), await channel_data(chain, channel)
        finally:
            await chain.close()

    asyncio.run(move(ROUTER, FOUNDATION, lambda balance: balance - keep))  # nothing is earned yet
    costs = [embed(net, [f"a request the router cannot redeem yet {i}"]) for i in range(3)]
    total = charged(net, channel)
    assert total == sum(costs) > 0
    voucher = earned(net, channel)
    # the router's wallet accepts its own message but cannot attach REDEEM_FEE: nothing reaches
    # the channel, and the redeem is recorded as refused
    wait_until("a refused redeem in the router's books", net,
               lambda: (voucher, "refused") in [(c, s) for c, s, _ in redeems(net, channel)])
    wait_until("a second try", net, lambda: len(redeems(net, channel)) >= 2, timeout=10)
    assert all(s == "refused" for _, s, _ in redeems(net, channel))
    evs, data = asyncio.run(on_chain())
    assert not of(VoucherRedeemed, evs) and data.redeemed_compute == 0
    assert voucher in vouchers(net, channel), "the earned voucher stays in the books"

    asyncio.run(move(FOUNDATION, ROUTER, lambda _: 10 * TON))

    def landed() -> tuple[list[Any], ChannelData] | None:
        evs, data = asyncio.run(on_chain())
        return (evs, data) if of(VoucherRedeemed, evs) else None

    evs, data = wait_until("the retried redeem on chain (after the refill)", net, landed)
    (redeemed,) = of(VoucherRedeemed, evs)
    assert 0 < redeemed.total_compute == voucher <= total and data.redeemed_compute == voucher
    # the router records the outcome after the chain shows it: wait for its row (bounded)
    wait_until("the router's record of the redeem", net, lambda: redeems(net, channel)[-1][:2] == (voucher, "ok"))
    assert [s for _, s, _ in redeems(net, channel)].count("ok") == 1

"""The event watcher: decoding, cursors, restarts, and a SIGKILL in the middle of 500 transactions."""

from __future__ import annotations

import asyncio
import base64
import sqlite3
import subprocess
import sys
import threading
import time
from dataclasses import dataclass

import pytest
from pytoniq_core import Address, begin_cell

from offchain.errors import StorageError
from offchain.ton._chain_types import ChainTx
from offchain.ton._wallet import WalletKey, localnet_mnemonic
from offchain.ton.build import PROJECT_ROOT
from offchain.ton.messages import message_relaxed
from offchain.ton.network import NetworkProvider, create_network_provider
from offchain.ton.watcher import (
    CursorStore,
    DecoderRegistry,
    ExternalReceived,
    MessageBounced,
    MessageReceived,
    Watcher,
    WatchEvent,
)

from .conftest import LocalnetProcess

ONE_TON = 10**9
OP_PING = 0x50494E47


@dataclass(frozen=True, kw_only=True)
class Pinged(WatchEvent):
    """What a wrapper's decoder would return: a typed event for its own opcode."""

    n: int


def decode_ping(tx: ChainTx) -> Pinged | None:
    s = tx.in_msg.body_slice() if tx.in_msg else None
    if s is None or s.remaining_bits < 96:
        return None
    s.skip_bits(32)
    return Pinged(tx=tx, n=s.load_uint(64))


def ping(n: int):
    return begin_cell().store_uint(OP_PING, 32).store_uint(n, 64).end_cell()


@pytest.fixture
async def sandbox() -> NetworkProvider:
    return await create_network_provider("sandbox", env={})


async def drain(watcher: Watcher) -> list[WatchEvent]:
    """Everything new, through run(): returns once a poll finds nothing."""
    seen: list[WatchEvent] = []
    txs = await watcher.poll()
    for tx in txs:
        await watcher._handle(tx, lambda evs, db: seen.extend(evs))
    return seen


async def test_generic_events_for_wallet_traffic(sandbox: NetworkProvider, tmp_path) -> None:
    via = sandbox.sender()
    receiver = WalletKey.localnet(1, with_secret=False).address
    await via.send(to=receiver, value=ONE_TON)
    await via.send(to=Address((0, b"\x66" * 32)), value=ONE_TON, bounce=True)  # bounces back
    w = Watcher(sandbox.chain, [via.address, receiver], store=CursorStore(tmp_path / "w.db"))
    events = await drain(w)
    kinds = [(e.kind, e.account == f"0:{via.address.hash_part.hex()}") for e in events]
    assert kinds == [
        ("ExternalReceived", True),
        ("MessageReceived", False),
        ("ExternalReceived", True),
        ("MessageBounced", True),
    ]
    received = next(e for e in events if isinstance(e, MessageReceived))
    assert received.value == ONE_TON and received.success and received.src == f"0:{via.address.hash_part.hex()}"
    assert isinstance(events[-1], MessageBounced) and events[-1].value < ONE_TON
    assert all(isinstance(e, ExternalReceived) and e.success for e in events[::2])


async def test_registered_decoders_take_precedence_by_opcode_and_account(sandbox: NetworkProvider, tmp_path) -> None:
    via = sandbox.sender()
    a = WalletKey.localnet(1, with_secret=False).address
    b = WalletKey.localnet(2, with_secret=False).address
    registry = DecoderRegistry()
    registry.register(OP_PING, decode_ping, accounts=[a])
    for n, dest in enumerate([a, b, a]):
        await via.send(to=dest, value=ONE_TON // 10, body=ping(n))
    w = Watcher(sandbox.chain, [a, b], store=CursorStore(tmp_path / "w.db"), registry=registry)
    events = await drain(w)
    assert [(type(e).__name__, getattr(e, "n", None)) for e in events] == [
        ("Pinged", 0),
        ("MessageReceived", None),
        ("Pinged", 2),
    ]
    assert events[1].op == OP_PING  # generic, because b is outside the decoder's scope
    with pytest.raises(ValueError):
        registry.register(2**32, decode_ping)


async def test_a_restarted_watcher_continues_after_its_cursor(sandbox: NetworkProvider, tmp_path) -> None:
    via = sandbox.sender()
    dest = WalletKey.localnet(1, with_secret=False).address
    db = tmp_path / "w.db"
    for n in range(3):
        await via.send(to=dest, value=ONE_TON // 10, body=ping(n))
    first = await drain(Watcher(sandbox.chain, [dest], store=CursorStore(db)))
    for n in range(3, 5):
        await via.send(to=dest, value=ONE_TON // 10, body=ping(n))
    second = await drain(Watcher(sandbox.chain, [dest], store=CursorStore(db)))
    assert [e.query_id for e in first] == [0, 1, 2] and [e.query_id for e in second] == [3, 4]
    assert await drain(Watcher(sandbox.chain, [dest], store=CursorStore(db))) == []


async def test_start_latest_skips_history(sandbox: NetworkProvider, tmp_path) -> None:
    via = sandbox.sender()
    dest = WalletKey.localnet(1, with_secret=False).address
    await via.send(to=dest, value=ONE_TON // 10, body=ping(0))
    w = Watcher(sandbox.chain, [dest], store=CursorStore(tmp_path / "w.db"), start="latest")
    assert await drain(w) == []
    await via.send(to=dest, value=ONE_TON // 10, body=ping(1))
    assert [e.query_id for e in await drain(w)] == [1]


async def test_a_cursor_from_another_chain_is_refused(sandbox: NetworkProvider, tmp_path) -> None:
    via = sandbox.sender()
    dest = WalletKey.localnet(1, with_secret=False).address
    await via.send(to=dest, value=ONE_TON // 10)
    store = CursorStore(tmp_path / "w.db")
    store.set(dest, 1, b"\x13" * 32)  # a cursor the chain never had
    await via.send(to=dest, value=ONE_TON // 10)
    with pytest.raises(StorageError, match="not on this chain"):
        await Watcher(sandbox.chain, [dest], store=store).poll()


async def test_handler_failure_rolls_back_and_the_transaction_comes_again(sandbox: NetworkProvider, tmp_path) -> None:
    via = sandbox.sender()
    dest = WalletKey.localnet(1, with_secret=False).address
    await via.send(to=dest, value=ONE_TON // 10, body=ping(0))
    store = CursorStore(tmp_path / "w.db")
    w = Watcher(sandbox.chain, [dest], store=store, poll_interval=0.01)

    def broken(events, db):
        raise RuntimeError("consumer crashed")

    with pytest.raises(RuntimeError):
        await w.run(broken)
    assert store.get(dest) is None
    assert [e.query_id for e in await drain(w)] == [0]


async def test_events_iterator_yields_and_stops_on_close(sandbox: NetworkProvider, tmp_path) -> None:
    via = sandbox.sender()
    dest = WalletKey.localnet(1, with_secret=False).address
    w = Watcher(sandbox.chain, [dest], store=CursorStore(tmp_path / "w.db"), poll_interval=0.01)
    got: list[WatchEvent] = []

    async def consume() -> None:
        async for e in w.events():
            got.append(e)
            if len(got) == 2:
                w.close()

    task = asyncio.create_task(consume())
    for n in range(2):
        await via.send(to=dest, value=ONE_TON // 10, body=ping(n))
    await asyncio.wait_for(task, 5)
    assert [e.query_id for e in got] == [0, 1]


# -- the kill test --------------------------------------------------------------------------------
def _count(db_path) -> int:
    try:
        with sqlite3.connect(db_path, timeout=5) as db:
            return db.execute("SELECT count(*) FROM seen").fetchone()[0]
    except sqlite3.OperationalError:
        return 0


def _table_exists(db_path) -> bool:
    try:
        with sqlite3.connect(db_path, timeout=5) as db:
            db.execute("SELECT count(*) FROM seen").fetchone()
        return True
    except sqlite3.OperationalError:
        return False


def _start_watcher(url: str, db_path, account: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "tests.network._watch_process", url, str(db_path), account],
        cwd=PROJECT_ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


def test_watcher_killed_mid_burst_of_500_misses_and_repeats_nothing(start_localnet, tmp_path) -> None:
    net: LocalnetProcess = start_localnet(state=None, block_time=0.0)
    sender = WalletKey.from_mnemonic(localnet_mnemonic(0))
    receiver = WalletKey.localnet(1, with_secret=False).address
    account = receiver.to_str(False)
    db_path = tmp_path / "watcher.db"
    exts = [
        sender.transfer(i, [(message_relaxed(dest=receiver, value=ONE_TON // 100, body=ping(i)), 3)])
        for i in range(500)
    ]
    sent: list[int] = []

    def burst() -> None:
        ready = time.monotonic() + 20
        while not _table_exists(db_path) and time.monotonic() < ready:  # the watcher is up
            time.sleep(0.02)
        for i, ext in enumerate(exts):
            if i == 300:  # hold the rest until the watcher was killed: the kill lands mid-burst
                killed.wait(30)
            status, doc = net.post("sendBoc", {"boc": base64.b64encode(ext.to_boc()).decode()})
            assert status == 200, doc
            sent.append(i)

    killed = threading.Event()
    watcher = _start_watcher(net.url, db_path, account)
    restarted = None
    try:
        t = threading.Thread(target=burst)
        t.start()
        deadline = time.monotonic() + 30
        while _count(db_path) < 120 and time.monotonic() < deadline:
            time.sleep(0.01)
        watcher.kill()  # SIGKILL, mid-burst
        watcher.wait(5)
        killed_at, sent_at_kill = _count(db_path), len(sent)
        killed.set()
        assert killed_at > 0 and sent_at_kill < 500, "the kill must land in the middle of the burst"
        print(f"killed after {killed_at} events, {sent_at_kill} of 500 sent")
        restarted = _start_watcher(net.url, db_path, account)
        t.join(60)
        assert len(sent) == 500
        while _count(db_path) < 500 and time.monotonic() < deadline + 30:
            assert restarted.poll() is None, restarted.stderr.read().decode() if restarted.stderr else ""
            time.sleep(0.05)
        time.sleep(0.3)  # would a duplicate still arrive?
    finally:
        killed.set()
        for p in (watcher, restarted):
            if p is not None and p.poll() is None:
                p.kill()
                p.wait(5)
    with sqlite3.connect(db_path) as db:
        rows = db.execute("SELECT lt, idx, kind FROM seen ORDER BY rowid").fetchall()
    assert len(rows) == 500
    assert len({(lt, idx) for lt, idx, _ in rows}) == 500  # nothing repeated
    assert [lt for lt, _, _ in rows] == sorted(lt for lt, _, _ in rows)  # in chain order
    chain_lts = []
    lt = h = None
    while True:
        q = {"address": account, "limit": 100, "lt": lt, "hash": h}
        page = net.get("getTransactions", **q)["result"]
        page = [p for p in page if p["transaction_id"]["lt"] != lt]
        if not page:
            break
        chain_lts += [int(p["transaction_id"]["lt"]) for p in page]
        lt, h = page[-1]["transaction_id"]["lt"], page[-1]["transaction_id"]["hash"]
    assert sorted(chain_lts) == [lt for lt, _, _ in rows]  # nothing missed
    assert {kind for _, _, kind in rows} == {"MessageReceived"}

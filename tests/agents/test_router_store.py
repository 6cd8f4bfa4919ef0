"""The router's SQLite books: group commit, all-or-nothing batches, durability, usage sums."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest
from nacl.signing import SigningKey
from pytoniq_core import Address

from offchain.errors import StorageError
from offchain.protocol.voucher import sign_voucher
from offchain.router._store import RouterStore

KEY = SigningKey(b"\x05" * 32)
CHANNEL = Address((0, b"\x0a" * 32))
CH = CHANNEL.to_str(is_user_friendly=False)
CLIENT = "0:" + "11" * 32
BAD_OP = ("INSERT INTO no_such_table VALUES (?)", (1,))


@pytest.fixture
def store(tmp_path: Path) -> Iterator[RouterStore]:
    s = RouterStore(tmp_path / "router.sqlite")
    yield s
    s.close()


async def test_write_concurrent_calls_share_commits(store: RouterStore) -> None:
    await store.write([store.op_account(CH, CLIENT, bytes(KEY.verify_key))])
    before = store.commits
    vouchers = [sign_voucher(KEY, CHANNEL, compute=i, data=0) for i in range(1, 51)]
    async with asyncio.timeout(10):
        await asyncio.gather(*(store.write([store.op_voucher(v)]) for v in vouchers))
    commits = store.commits - before
    assert 1 <= commits < 50
    assert store.vouchers(CH) == vouchers


async def test_write_failing_statement_fails_whole_batch(store: RouterStore) -> None:
    await store.write([store.op_account(CH, CLIENT, b"k")])
    gate = asyncio.Event()
    entered = asyncio.Event()
    real_commit = store._commit

    def held_commit(ops: list[tuple[str, object]]) -> None:
        # hold the first commit in its thread so that the next writes stage into one batch
        if not entered.is_set():
            entered.set()
            asyncio.run_coroutine_threadsafe(gate.wait(), loop).result()
        real_commit(ops)  # type: ignore[arg-type]

    loop = asyncio.get_running_loop()
    store._commit = held_commit  # type: ignore[method-assign]
    async with asyncio.timeout(10):
        first = asyncio.create_task(store.write([store.op_charge(CH, 1, 0)]))
        await entered.wait()
        v1 = sign_voucher(KEY, CHANNEL, compute=10, data=0)
        v2 = sign_voucher(KEY, CHANNEL, compute=20, data=0)
        batch = [
            asyncio.create_task(store.write([store.op_voucher(v1)])),
            asyncio.create_task(store.write([BAD_OP])),
            asyncio.create_task(store.write([store.op_voucher(v2), store.op_charge(CH, 5, 5)])),
        ]
        loop.call_soon(gate.set)  # runs after the three tasks' first steps: all three have staged
        await first
        results = await asyncio.gather(*batch, return_exceptions=True)
    assert all(isinstance(r, StorageError) for r in results), results
    assert isinstance(results[1].__cause__, Exception)
    assert store.vouchers(CH) == []
    assert store.account(CH) == (1, 0)  # the first batch's charge, not the failed one's

    store._commit = real_commit  # type: ignore[method-assign]
    async with asyncio.timeout(10):
        await store.write([store.op_voucher(v1)])  # the store goes on after a failed batch
    assert store.vouchers(CH) == [v1]


async def test_write_failing_alone_raises_storage_error(store: RouterStore) -> None:
    with pytest.raises(StorageError):
        async with asyncio.timeout(10):
            await store.write([store.op_account(CH, CLIENT, b"k"), BAD_OP])
    assert store.account(CH) is None


async def test_write_nothing_returns(store: RouterStore) -> None:
    async with asyncio.timeout(5):
        await store.write([])
    assert store.commits == 0


async def test_store_data_survives_reopening(tmp_path: Path) -> None:
    path = tmp_path / "books" / "router.sqlite"
    s = RouterStore(path)
    v = sign_voucher(KEY, CHANNEL, compute=30, data=3)
    async with asyncio.timeout(10):
        await s.write([s.op_account(CH, CLIENT, bytes(KEY.verify_key)), s.op_voucher(v)])
        await s.write([s.op_charge(CH, 30, 3), s.op_usage(epoch=1, provider="w", model="m", units=3, requests=1)])
        await s.write([s.op_redeem(CH, 30, 3, 1.5, "sent")])
    s.close()

    s = RouterStore(path)
    try:
        assert s.account(CH) == (30, 3)
        assert s.vouchers(CH) == [v]
        assert s.usage(1) == [(1, "w", "m", 3, 1, 0, 0, 0)]
        assert s.redeems(CH) == [(CH, 30, 3, "sent", "")]
    finally:
        s.close()


async def test_usage_upsert_accumulates(store: RouterStore) -> None:
    async with asyncio.timeout(10):
        await store.write([store.op_usage(epoch=7, provider="w1", model="m", units=10, requests=1, earned=100)])
        await asyncio.gather(
            store.write([store.op_usage(epoch=7, provider="w1", model="m", units=5, requests=1, latency_ms=20)]),
            store.write([store.op_usage(epoch=7, provider="w1", model="m", failures=1, requests=1)]),
            store.write([store.op_usage(epoch=7, provider="w2", model="m", units=1, requests=1)]),
            store.write([store.op_usage(epoch=8, provider="w1", model="m", units=2, requests=1)]),
        )
    assert store.usage(7) == [(7, "w1", "m", 15, 3, 1, 20, 100), (7, "w2", "m", 1, 1, 0, 0, 0)]
    assert [r[0] for r in store.usage()] == [7, 7, 8]


async def test_prune_keeps_the_earned_voucher_and_newer(store: RouterStore) -> None:
    vs = [sign_voucher(KEY, CHANNEL, compute=c, data=0) for c in (10, 20, 30)]
    async with asyncio.timeout(10):
        await store.write([store.op_voucher(v) for v in vs])
        await store.write([store.op_prune(CH, vs[1])])
    assert store.vouchers(CH) == vs[1:]


def test_store_unopenable_path_raises_storage_error(tmp_path: Path) -> None:
    (tmp_path / "dir.sqlite").mkdir()
    with pytest.raises(StorageError):
        RouterStore(tmp_path / "dir.sqlite")

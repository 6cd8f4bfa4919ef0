"""The router's books in SQLite (WAL, `synchronous=FULL`: a commit is on disk when it returns).

What money depends on is committed before the action it pays for: a new voucher before its
request is forwarded, a charge (and its usage row) before the result goes back to the
client. Concurrent requests share commits (group commit): writes staged while a commit is
running go together in the next one, so the fsync cost is paid once per batch, not once
per request, and the event loop never blocks on the disk (commits run in a thread).

Tables: `accounts` (a channel's charged totals), `vouchers` (every voucher held and not yet
superseded by an earned one), `usage` (per epoch, provider and model: units, requests,
failures, latency, earnings: what the epoch settlement reads), `redeems` (each redeem sent,
with its outcome).
"""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pytoniq_core import Address

from offchain.errors import StorageError
from offchain.protocol.voucher import SignedVoucher

__all__ = ["RouterStore", "UsageRow"]

Op = tuple[str, Sequence[Any]]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS accounts (
    channel TEXT PRIMARY KEY, client TEXT NOT NULL, client_key BLOB NOT NULL,
    charged_compute INTEGER NOT NULL DEFAULT 0, charged_data INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS vouchers (
    channel TEXT NOT NULL, compute INTEGER NOT NULL, data INTEGER NOT NULL, signature BLOB NOT NULL,
    PRIMARY KEY (channel, compute, data)
);
CREATE TABLE IF NOT EXISTS usage (
    epoch INTEGER NOT NULL, provider TEXT NOT NULL, model TEXT NOT NULL,
    units INTEGER NOT NULL DEFAULT 0, requests INTEGER NOT NULL DEFAULT 0, failures INTEGER NOT NULL DEFAULT 0,
    latency_ms INTEGER NOT NULL DEFAULT 0, earned INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (epoch, provider, model)
);
CREATE TABLE IF NOT EXISTS redeems (
    id INTEGER PRIMARY KEY AUTOINCREMENT, channel TEXT NOT NULL, compute INTEGER NOT NULL, data INTEGER NOT NULL,
    sent_at REAL NOT NULL, status TEXT NOT NULL, detail TEXT NOT NULL DEFAULT ''
);
"""

_USAGE_UPSERT = """
INSERT INTO usage (epoch, provider, model, units, requests, failures, latency_ms, earned)
VALUES (?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (epoch, provider, model) DO UPDATE SET
    units = units + excluded.units, requests = requests + excluded.requests,
    failures = failures + excluded.failures, latency_ms = latency_ms + excluded.latency_ms,
    earned = earned + excluded.earned
"""


class UsageRow(tuple[int, str, str, int, int, int, int, int]):
    """(epoch, provider, model, units, requests, failures, latency_ms, earned)."""


class RouterStore:
    """The router's SQLite file. Writes go through `write` (group commit); reads are for
    start-up and reports. One instance per file; `write` may be awaited by many tasks."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self.db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
            self.db.execute("PRAGMA journal_mode=WAL")
            self.db.execute("PRAGMA synchronous=FULL")
            self.db.executescript(_SCHEMA)
        except sqlite3.Error as err:
            raise StorageError(f"cannot open the router's store {self.path}: {err}") from err
        self._lock = threading.Lock()  # the connection is used by the commit thread and by reads
        self._staged: list[Op] = []
        self._next: asyncio.Future[None] | None = None
        self._running = False
        self._drainer: asyncio.Task[None] | None = None
        self.commits = 0

    # ---- writes --------------------------------------------------------------------------
    async def write(self, ops: Sequence[Op]) -> None:
        """Commit `ops` (with whatever else is staged); returns once they are on disk.

        Cancelling the caller does not cancel the commit (other writers share it).

        Raises:
            StorageError: the commit failed (nothing of it was written).
        """
        if not ops:
            return  # nothing to commit (a drain would find nothing staged and never answer)
        loop = asyncio.get_running_loop()
        self._staged.extend(ops)
        if self._next is None:
            self._next = loop.create_future()
        fut = self._next
        if not self._running:
            self._running = True
            self._drainer = loop.create_task(self._drain())  # held: the loop keeps only weak refs
        await asyncio.shield(fut)

    async def _drain(self) -> None:
        try:
            while self._staged:
                ops, fut = self._staged, self._next
                self._staged, self._next = [], None
                try:
                    await asyncio.to_thread(self._commit, ops)
                except Exception as err:
                    if fut is not None and not fut.done():
                        exc = StorageError(f"router store commit failed: {err}")
                        exc.__cause__ = err
                        fut.set_exception(exc)
                    continue
                if fut is not None and not fut.done():
                    fut.set_result(None)
        finally:
            self._running = False

    def _commit(self, ops: list[Op]) -> None:
        with self._lock:
            self.db.execute("BEGIN IMMEDIATE")
            try:
                for sql, params in ops:
                    self.db.execute(sql, params)
                self.db.execute("COMMIT")
            except BaseException:
                if self.db.in_transaction:  # a failed COMMIT may leave it open: the next BEGIN would fail
                    self.db.execute("ROLLBACK")
                raise
            self.commits += 1

    # ---- the statements (built here, written by the router in one `write`) -----------------
    @staticmethod
    def op_account(channel: str, client: str, client_key: bytes) -> Op:
        return (
            "INSERT OR IGNORE INTO accounts (channel, client, client_key) VALUES (?, ?, ?)",
            (channel, client, client_key),
        )

    @staticmethod
    def op_voucher(v: SignedVoucher) -> Op:
        return (
            "INSERT OR IGNORE INTO vouchers (channel, compute, data, signature) VALUES (?, ?, ?, ?)",
            (v.channel.to_str(is_user_friendly=False), v.compute, v.data, v.signature),
        )

    @staticmethod
    def op_charge(channel: str, compute: int, data: int) -> Op:
        return ("UPDATE accounts SET charged_compute = ?, charged_data = ? WHERE channel = ?", (compute, data, channel))

    @staticmethod
    def op_prune(channel: str, below: SignedVoucher) -> Op:
        """Drop vouchers that an earned (redeemable) one supersedes."""
        return (
            "DELETE FROM vouchers WHERE channel = ? AND compute <= ? AND data <= ? AND NOT (compute = ? AND data = ?)",
            (channel, below.compute, below.data, below.compute, below.data),
        )

    @staticmethod
    def op_usage(
        *,
        epoch: int,
        provider: str,
        model: str,
        units: int = 0,
        requests: int = 0,
        failures: int = 0,
        latency_ms: int = 0,
        earned: int = 0,
    ) -> Op:
        return (_USAGE_UPSERT, (epoch, provider, model, units, requests, failures, latency_ms, earned))

    @staticmethod
    def op_redeem(channel: str, compute: int, data: int, sent_at: float, status: str, detail: str = "") -> Op:
        return (
            "INSERT INTO redeems (channel, compute, data, sent_at, status, detail) VALUES (?, ?, ?, ?, ?, ?)",
            (channel, compute, data, sent_at, status, detail),
        )

    # ---- reads ----------------------------------------------------------------------------
    def _query(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        with self._lock:
            return self.db.execute(sql, params).fetchall()

    def account(self, channel: str) -> tuple[int, int] | None:
        rows = self._query("SELECT charged_compute, charged_data FROM accounts WHERE channel = ?", (channel,))
        return (rows[0][0], rows[0][1]) if rows else None

    def vouchers(self, channel: str) -> list[SignedVoucher]:
        """The vouchers held for `channel`, oldest (lowest) first."""
        addr = Address(channel)
        rows = self._query(
            "SELECT compute, data, signature FROM vouchers WHERE channel = ? ORDER BY compute + data", (channel,)
        )
        return [SignedVoucher(addr, c, d, bytes(s)) for c, d, s in rows]

    def usage(self, epoch: int | None = None) -> list[UsageRow]:
        sql = "SELECT epoch, provider, model, units, requests, failures, latency_ms, earned FROM usage"
        rows = self._query(
            sql + (" WHERE epoch = ?" if epoch is not None else "") + " ORDER BY epoch, provider, model",
            (epoch,) if epoch is not None else (),
        )
        return [UsageRow(r) for r in rows]

    def redeems(self, channel: str | None = None) -> list[tuple[Any, ...]]:
        sql = "SELECT channel, compute, data, status, detail FROM redeems"
        return self._query(
            sql + (" WHERE channel = ?" if channel else "") + " ORDER BY id", (channel,) if channel else ()
        )

    def close(self) -> None:
        with self._lock:
            self.db.close()

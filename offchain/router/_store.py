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

from pathlib import Path
from typing import Any

from pytoniq_core import Address

from offchain.protocol.voucher import SignedVoucher
from offchain.sqlite_store import Op, SqliteStore

__all__ = ["RouterStore", "UsageRow"]


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


class RouterStore(SqliteStore):
    """The router's SQLite file. Writes go through `write` (group commit); reads are for
    start-up and reports. One instance per file; `write` may be awaited by many tasks."""

    def __init__(self, path: Path | str) -> None:
        super().__init__(path, _SCHEMA, what="the router's store")

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
    def account(self, channel: str) -> tuple[int, int] | None:
        rows = self.query("SELECT charged_compute, charged_data FROM accounts WHERE channel = ?", (channel,))
        return (rows[0][0], rows[0][1]) if rows else None

    def held_accounts(self) -> list[tuple[str, str, bytes]]:
        """(channel, client, client key) of every account that still holds a voucher: what a
        restarted router must load to redeem (on its timer, at close, at shutdown) even if
        the client never comes back."""
        rows = self.query("SELECT a.channel, a.client, a.client_key FROM accounts a "
                          "WHERE EXISTS (SELECT 1 FROM vouchers v WHERE v.channel = a.channel)")
        return [(c, cl, bytes(k)) for c, cl, k in rows]

    def vouchers(self, channel: str) -> list[SignedVoucher]:
        """The vouchers held for `channel`, oldest (lowest) first."""
        addr = Address(channel)
        rows = self.query(
            "SELECT compute, data, signature FROM vouchers WHERE channel = ? ORDER BY compute + data", (channel,)
        )
        return [SignedVoucher(addr, c, d, bytes(s)) for c, d, s in rows]

    def usage(self, epoch: int | None = None) -> list[UsageRow]:
        sql = "SELECT epoch, provider, model, units, requests, failures, latency_ms, earned FROM usage"
        rows = self.query(
            sql + (" WHERE epoch = ?" if epoch is not None else "") + " ORDER BY epoch, provider, model",
            (epoch,) if epoch is not None else (),
        )
        return [UsageRow(r) for r in rows]

    def redeems(self, channel: str | None = None) -> list[tuple[Any, ...]]:
        sql = "SELECT channel, compute, data, status, detail FROM redeems"
        return self.query(
            sql + (" WHERE channel = ?" if channel else "") + " ORDER BY id", (channel,) if channel else ()
        )

"""The validator's SQLite file: every probe's outcome, each worker's reputation, and the
signed fraud records with what became of their slashing orders.

    workers(provider, score, probes, failures, accused)     one row per Provider probed
    probes(id, at, provider, inputs_hash, answer_hash,       one row per probe
           receipt, worker_key, min_cosine, passed)
    fraud(hash, provider, at, body, validator, signature,   one row per fraud record
          status, nonce, detail)                           status: signed | awaiting_quorum | relayed | refused
    nodes(provider, score, fetches, failures)               one row per data node that relayed a crawl's fetch
"""

from __future__ import annotations

from pathlib import Path

import msgspec

from offchain.protocol.wire import Receipt
from offchain.sqlite_store import Op, SqliteStore
from offchain.validator._core import Evidence, FraudRecord, WorkerRecord

__all__ = ["ValidatorStore"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS workers (
    provider TEXT PRIMARY KEY, score REAL NOT NULL, probes INTEGER NOT NULL, failures INTEGER NOT NULL,
    accused INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS probes (
    id INTEGER PRIMARY KEY AUTOINCREMENT, at INTEGER NOT NULL, provider TEXT NOT NULL, inputs_hash BLOB NOT NULL,
    answer_hash BLOB NOT NULL, receipt BLOB, worker_key BLOB NOT NULL, min_cosine REAL NOT NULL,
    passed INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS probes_provider ON probes (provider, id);
CREATE TABLE IF NOT EXISTS fraud (
    hash BLOB PRIMARY KEY, provider TEXT NOT NULL, at INTEGER NOT NULL, body BLOB NOT NULL, validator BLOB NOT NULL,
    signature BLOB NOT NULL, status TEXT NOT NULL, nonce INTEGER, detail TEXT NOT NULL DEFAULT ''
);
CREATE TABLE IF NOT EXISTS nodes (
    provider TEXT PRIMARY KEY, score REAL NOT NULL, fetches INTEGER NOT NULL, failures INTEGER NOT NULL
);
"""

_receipt_enc = msgspec.msgpack.Encoder()
_receipt_dec = msgspec.msgpack.Decoder(Receipt)


class ValidatorStore(SqliteStore):
    def __init__(self, path: Path | str) -> None:
        super().__init__(path, _SCHEMA, what="the validator's store")

    # ---- writes -----------------------------------------------------------------------------
    @staticmethod
    def op_probe(e: Evidence, passed: bool) -> Op:
        return (
            "INSERT INTO probes (at, provider, inputs_hash, answer_hash, receipt, worker_key, min_cosine, passed)"
            " VALUES (?,?,?,?,?,?,?,?)",
            (
                e.at,
                e.provider,
                e.inputs_hash,
                e.answer_hash,
                _receipt_enc.encode(e.receipt) if e.receipt is not None else None,
                e.worker_key,
                e.min_cosine,
                int(passed),
            ),
        )

    @staticmethod
    def op_worker(rec: WorkerRecord) -> Op:
        return (
            "INSERT INTO workers (provider, score, probes, failures, accused) VALUES (?,?,?,?,?) ON CONFLICT (provider)"
            " DO UPDATE SET score=excluded.score, probes=excluded.probes, failures=excluded.failures,"
            " accused=excluded.accused",
            (rec.provider, rec.score, rec.probes, rec.failures, int(rec.accused)),
        )

    @staticmethod
    def op_fraud(r: FraudRecord, at: int, status: str) -> Op:
        return (
            "INSERT OR IGNORE INTO fraud (hash, provider, at, body, validator, signature, status)"
            " VALUES (?,?,?,?,?,?,?)",
            (r.hash, r.provider, at, r.body, r.validator, r.signature, status),
        )

    @staticmethod
    def op_fraud_status(record_hash: bytes, status: str, *, nonce: int | None = None, detail: str = "") -> Op:
        return (
            "UPDATE fraud SET status = ?, nonce = COALESCE(?, nonce), detail = ? WHERE hash = ?",
            (status, nonce, detail, record_hash),
        )

    @staticmethod
    def op_node(provider: str, score: float, fetches: int, failures: int) -> Op:
        return (
            "INSERT INTO nodes (provider, score, fetches, failures) VALUES (?,?,?,?) ON CONFLICT (provider)"
            " DO UPDATE SET score=excluded.score, fetches=excluded.fetches, failures=excluded.failures",
            (provider, score, fetches, failures),
        )

    # ---- reads ------------------------------------------------------------------------------
    def nodes(self) -> list[tuple[str, float, int, int]]:
        """(provider, score, fetches, failures) of every data node measured."""
        rows = self.query("SELECT provider, score, fetches, failures FROM nodes ORDER BY provider")
        return [(p, float(s), int(n), int(f)) for p, s, n, f in rows]

    def workers(self) -> list[tuple[str, float, int, int, bool]]:
        rows = self.query("SELECT provider, score, probes, failures, accused FROM workers ORDER BY provider")
        return [(p, float(s), int(n), int(f), bool(a)) for p, s, n, f, a in rows]

    def recent(self, provider: str, window: int) -> list[Evidence | None]:
        """The provider's last `window` probes, oldest first: the evidence of a failed one,
        None for a passed one."""
        rows = self.query(
            "SELECT at, inputs_hash, answer_hash, receipt, worker_key, min_cosine, passed FROM probes"
            " WHERE provider = ? ORDER BY id DESC LIMIT ?",
            (provider, window),
        )
        out: list[Evidence | None] = []
        for at, ih, ah, receipt, wk, cos, passed in reversed(rows):
            if passed:
                out.append(None)
            else:
                r = _receipt_dec.decode(receipt) if receipt is not None else None
                out.append(Evidence(provider, bytes(ih), bytes(ah), r, bytes(wk), float(cos), int(at)))
        return out

    def frauds(self) -> list[tuple[str, bytes, str, int | None]]:
        """(provider, record hash, status, nonce) of every fraud record."""
        return [
            (p, bytes(h), s, n)
            for p, h, s, n in self.query("SELECT provider, hash, status, nonce FROM fraud ORDER BY at")
        ]

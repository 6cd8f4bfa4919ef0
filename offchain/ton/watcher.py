"""Event watcher: follows the transactions of a set of accounts and turns them into typed events.

    registry = DecoderRegistry()            # wrappers add decoders: registry.register(Op.STAKE, decode_staked)
    async with Watcher(chain, [root, pool], store=CursorStore("agent.db"), registry=registry) as w:
        await w.run(handle)                 # handle(events, db) runs inside the cursor's SQLite transaction

Guarantees, for one store per watcher:

- order: an account's transactions are handled oldest first; across accounts, by lt;
- no gaps: new transactions are fetched back to the stored cursor (lt, hash), paging as
  far as needed; if the cursor's transaction is not an ancestor of what the chain now shows
  (a different chain, e.g. a localnet started afresh), `StorageError` says so instead of
  silently skipping;
- exactly once with `run(handler)`: the handler gets an open SQLite transaction (`db`) and
  the cursor advances in that same transaction, so whatever the handler writes to `db`
  commits together with the cursor or not at all. A kill at any moment neither loses nor
  repeats an event. (`events()`, an async iterator, is at-least-once: the transaction being
  handled when the process dies is delivered again.)

The store is SQLite in WAL mode (one file plus its -wal while open); a cursor per account.
The watcher only depends on the `ChainProvider` protocol and on decoders.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pytoniq_core import Address, Cell

from offchain.errors import StorageError
from offchain.ton._chain_types import ChainTx
from offchain.ton.network import ChainProvider
from offchain.ton.transaction import raw

__all__ = [
    "AccountDeployed",
    "CursorStore",
    "Decoder",
    "DecoderRegistry",
    "ExternalReceived",
    "MessageBounced",
    "MessageReceived",
    "WatchEvent",
    "Watcher",
    "generic_events",
]

log = logging.getLogger("cocoon.watcher")


# -- events ---------------------------------------------------------------------------------
@dataclass(frozen=True, kw_only=True)
class WatchEvent:
    """Base of every event: the transaction it came from and its position among that tx's events."""

    tx: ChainTx = field(repr=False)
    index: int = 0

    @property
    def account(self) -> str:
        return self.tx.address

    @property
    def lt(self) -> int:
        return self.tx.lt

    @property
    def kind(self) -> str:
        return type(self).__name__

    @property
    def key(self) -> tuple[str, int, int]:
        """(account, lt, index): unique per event; what a consumer can deduplicate on."""
        return self.tx.address, self.tx.lt, self.index


@dataclass(frozen=True, kw_only=True)
class MessageReceived(WatchEvent):
    """An internal message processed by the account (successfully or not)."""

    src: str | None
    value: int
    op: int | None
    query_id: int | None
    body: Cell = field(repr=False)
    success: bool
    exit_code: int | None


@dataclass(frozen=True, kw_only=True)
class MessageBounced(WatchEvent):
    """A message this account sent came back bounced (`op` is the original opcode)."""

    src: str | None
    value: int
    op: int | None
    body: Cell = field(repr=False)


@dataclass(frozen=True, kw_only=True)
class ExternalReceived(WatchEvent):
    """An external message (e.g. a wallet's signed transfer) accepted by the account."""

    success: bool
    exit_code: int | None


@dataclass(frozen=True, kw_only=True)
class AccountDeployed(WatchEvent):
    """The account became active in this transaction."""


Decoder = Callable[[ChainTx], "WatchEvent | Sequence[WatchEvent] | None"]
"""Turns a transaction into typed events (index them 0, 1, ...); None: not mine, try the next."""


def generic_events(tx: ChainTx) -> list[WatchEvent]:
    """The events every transaction yields when no registered decoder claims it."""
    out: list[WatchEvent] = []
    m = tx.in_msg
    if m is not None and m.kind == "internal" and m.bounced:
        out.append(MessageBounced(tx=tx, src=m.src, value=m.value, op=m.op, body=m.body))
    elif m is not None and m.kind == "internal":
        out.append(
            MessageReceived(
                tx=tx, src=m.src, value=m.value, op=m.op, query_id=m.query_id, body=m.body,
                success=tx.success, exit_code=tx.exit_code,
            )
        )
    elif m is not None and m.kind == "external-in":
        out.append(ExternalReceived(tx=tx, success=tx.success, exit_code=tx.exit_code))
    if tx.deployed:
        out.append(AccountDeployed(tx=tx))
    return [_with_index(e, i) for i, e in enumerate(out)]


def _with_index(e: WatchEvent, i: int) -> WatchEvent:
    if e.index == i:
        return e
    import dataclasses

    return dataclasses.replace(e, index=i)


class DecoderRegistry:
    """Decoders by incoming opcode (optionally restricted to accounts), then the generic ones.

    Wrappers register one decoder per message they define, e.g.
    `registry.register(Op.REQUEST_UNSTAKE, UnstakeRequested.from_tx)`.
    """

    def __init__(self) -> None:
        self._by_op: dict[int, list[tuple[frozenset[str] | None, Decoder]]] = {}
        self._any: list[tuple[frozenset[str] | None, Decoder]] = []

    def register(
        self, op: int | None, decoder: Decoder, *, accounts: Iterable[Address | str] | None = None
    ) -> Decoder:
        """Add a decoder for transactions whose incoming message has opcode `op` (None: any).

        Raises:
            ValueError: `op` is not a 32-bit opcode.
        """
        if op is not None and not 0 <= op < 2**32:
            raise ValueError(f"opcode {op!r} is not a uint32")
        scope = frozenset(raw(a) or "" for a in accounts) if accounts is not None else None
        (self._by_op.setdefault(op, []) if op is not None else self._any).append((scope, decoder))
        return decoder

    def decoder(
        self, op: int | None, *, accounts: Iterable[Address | str] | None = None
    ) -> Callable[[Decoder], Decoder]:
        """Decorator form of `register`."""
        return lambda fn: self.register(op, fn, accounts=accounts)

    def decode(self, tx: ChainTx) -> list[WatchEvent]:
        candidates = [*self._by_op.get(tx.op, []), *self._any] if tx.op is not None else self._any
        for scope, dec in candidates:
            if scope is not None and tx.address not in scope:
                continue
            got = dec(tx)
            if got is None:
                continue
            events = [got] if isinstance(got, WatchEvent) else list(got)
            return [_with_index(e, i) for i, e in enumerate(events)]
        return generic_events(tx)


# -- cursor store ---------------------------------------------------------------------------
class CursorStore:
    """Per-account cursors (lt, hash of the last handled transaction) in SQLite, WAL mode.

    One store belongs to one watcher (and one thread: the watcher's event loop).
    """

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.db = sqlite3.connect(self.path, isolation_level=None)
            self.db.execute("PRAGMA journal_mode=WAL")
            self.db.execute("PRAGMA synchronous=FULL")
            self.db.execute(
                "CREATE TABLE IF NOT EXISTS watcher_cursor ("
                " account TEXT PRIMARY KEY, lt INTEGER NOT NULL, hash BLOB NOT NULL)"
            )
        except sqlite3.Error as err:
            raise StorageError(f"cannot open watcher store {self.path}: {err}") from err

    def get(self, account: Address | str) -> tuple[int, bytes] | None:
        row = self.db.execute("SELECT lt, hash FROM watcher_cursor WHERE account = ?", (raw(account),)).fetchone()
        return (int(row[0]), bytes(row[1])) if row else None

    def set(self, account: Address | str, lt: int, hash_: bytes) -> None:
        """Store a cursor; inside `transaction()` it commits with everything else written there."""
        self.db.execute(
            "INSERT INTO watcher_cursor(account, lt, hash) VALUES (?, ?, ?) "
            "ON CONFLICT(account) DO UPDATE SET lt = excluded.lt, hash = excluded.hash",
            (raw(account), lt, hash_),
        )

    def close(self) -> None:
        self.db.close()


Handler = Callable[[list[WatchEvent], sqlite3.Connection], Awaitable[None] | None]


# -- the watcher ------------------------------------------------------------------------------
class Watcher:
    """Follows `accounts` on `chain`, decoding each new transaction through `registry`.

    Args:
        chain: any `ChainProvider` (sandbox, localnet, Toncenter).
        accounts: the addresses to follow.
        store: where cursors live.
        registry: decoders (default: generic events only).
        poll_interval: seconds between polls when nothing is new.
        start: where an account without a cursor starts: "genesis" (its whole history) or
            "latest" (only transactions after the first poll).
    """

    def __init__(
        self,
        chain: ChainProvider,
        accounts: Iterable[Address | str],
        *,
        store: CursorStore,
        registry: DecoderRegistry | None = None,
        poll_interval: float = 1.0,
        start: str = "genesis",
    ) -> None:
        if start not in ("genesis", "latest"):
            raise ValueError("start is 'genesis' or 'latest'")
        self.chain = chain
        self.accounts = [raw(a) or "" for a in accounts]
        self.store = store
        self.registry = registry or DecoderRegistry()
        self.poll_interval = poll_interval
        self.start = start
        self._closed = asyncio.Event()

    async def __aenter__(self) -> Watcher:
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Make `run()` / `events()` return after the transaction in hand. Safe from any task."""
        self._closed.set()

    def follow(self, account: Address | str) -> bool:
        """Follow one more account from the next poll on (a poll in progress may pick it up too).

        Its cursor, if the store has one, is where it resumes; without one it starts as
        `start` says. Safe while `run()` / `events()` / `poll()` are running: `poll()`
        walks `accounts` by index, so an account appended meanwhile is polled in this round
        or the next. Returns False when the account was already followed.
        """
        a = raw(account) or ""
        if a in self.accounts:
            return False
        self.accounts.append(a)
        return True

    async def fetch_new(self, account: str) -> list[ChainTx]:
        """Transactions of `account` after its cursor, oldest first (pages back as far as needed).

        Raises:
            StorageError: the stored cursor is not on this chain.
        """
        cursor = self.store.get(account)
        if cursor is None and self.start == "latest":
            latest = await self.chain.get_transactions(account, limit=1)
            if latest:
                self.store.set(account, latest[0].lt, latest[0].hash)
            return []
        after_lt = cursor[0] if cursor else 0
        got: list[ChainTx] = []
        lt: int | None = None
        h: bytes | None = None
        while True:
            page = await self.chain.get_transactions(account, limit=100, lt=lt, hash=h, to_lt=after_lt)
            got.extend(page)
            if len(page) < 100 or page[-1].prev_lt <= after_lt:
                break
            lt, h = page[-1].prev_lt, page[-1].prev_hash
        got.reverse()
        if got and cursor is not None and (got[0].prev_lt, got[0].prev_hash) != cursor:
            raise StorageError(
                f"watcher cursor {account} lt={cursor[0]} is not on this chain (the next transaction follows "
                f"lt={got[0].prev_lt}); was the chain reset? delete {self.store.path} to start over"
            )
        return got

    async def poll(self) -> list[ChainTx]:
        """One round: every account's new transactions, merged by lt."""
        txs: list[ChainTx] = []
        for a in self.accounts:
            txs.extend(await self.fetch_new(a))
        txs.sort(key=lambda t: (t.lt, t.address))
        return txs

    async def run(self, handler: Handler) -> None:
        """Decode and hand over every new transaction's events, forever (until `close()`).

        `handler(events, db)` is called once per transaction (events may be empty: the cursor
        still moves) inside `BEGIN IMMEDIATE` on the store's connection; the cursor is set in
        the same transaction, committed after the handler returns, rolled back if it raises
        (the exception propagates and the transaction comes again on the next run).
        Cancelling is safe: an interrupted transaction is rolled back.
        """
        while not self._closed.is_set():
            txs = await self.poll()
            for tx in txs:
                await self.handle(tx, handler)
                if self._closed.is_set():
                    return
            if not txs:
                with _suppress_timeout():
                    await asyncio.wait_for(self._closed.wait(), self.poll_interval)

    async def handle(self, tx: ChainTx, handler: Handler) -> None:
        """What `run()` does with one transaction from `poll()`: the handler, then the cursor,
        in one SQLite transaction (committed on return, rolled back if the handler raises).

        For a consumer that drives its own loop (`poll()`, then `handle()` for each, in
        order). A handler that never awaits while it holds `db` keeps the transaction closed
        to every other task on the connection. Cancelling is safe (rolled back).
        """
        events = self.registry.decode(tx)
        db = self.store.db
        db.execute("BEGIN IMMEDIATE")
        try:
            res = handler(events, db)
            if asyncio.iscoroutine(res) or isinstance(res, Awaitable):
                await res
            self.store.set(tx.address, tx.lt, tx.hash)
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")

    _handle = handle  # the earlier private name, which tests drive rounds with

    async def events(self) -> AsyncIterator[WatchEvent]:
        """Every new event, forever (until `close()`); at-least-once (see the module doc).

        A transaction's cursor is committed when the consumer asks for the event after its last.
        """
        while not self._closed.is_set():
            txs = await self.poll()
            for tx in txs:
                for e in self.registry.decode(tx):
                    yield e
                self.store.db.execute("BEGIN IMMEDIATE")
                self.store.set(tx.address, tx.lt, tx.hash)
                self.store.db.execute("COMMIT")
                if self._closed.is_set():
                    return
            if not txs:
                with _suppress_timeout():
                    await asyncio.wait_for(self._closed.wait(), self.poll_interval)


class _suppress_timeout:
    def __enter__(self) -> None:
        return None

    def __exit__(self, et: Any, ev: Any, tb: Any) -> bool:
        return et is TimeoutError or et is asyncio.TimeoutError

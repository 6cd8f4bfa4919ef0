"""The chain view every agent shares: Providers, Channels and Root's parameters, kept in SQLite.

A router authenticates each peer ("this node key belongs to an active Provider of role R
with at least Root's minimum stake") and admits each client ("this client has an open
Channel to me with deposit D") on every connection and request. Asking the chain each time
would make a request as slow as a getter round trip and tie the router to the chain
backend's rate limit, so every agent reads this local view instead:

    async with Directory(chain, root_address, db_path="router.db") as d:
        p = await d.provider(owner, Role.GPU)          # SQLite; the chain once, if never seen
        if p is None or not p.eligible or p.node_key != peer_key: reject()
        d.subscribe(on_change)                          # an unstake or a slash -> disconnect

How it follows the chain: one `Watcher` over Root and every Provider and Channel the
directory was ever asked about, in exactly-once mode, with its cursors in the same SQLite
file as the views. On a transaction of a followed account the directory re-reads that
account's getters (`get_provider_data`, `get_channel_data`; for Root `get_root_data`, and
when Root's `version` moved, which every owner update does, `get_params` (prices, close
delay, whether the insecure `dev` attestation is allowed), `get_role_params` and
`get_child_codes`) rather than decoding every event kind, and writes
the new view in the transaction that advances the cursor: a kill at any moment never
leaves the two disagreeing. An account is re-read at most once per poll round (the read
comes after the round fetched its transactions, so it covers them all); a round in which
an account's transactions all failed changes nothing and reads nothing. Subscribers hear
of a view change after it commits, in chain order.

First look-up of an account: its cursor is recorded at its latest transaction *before* its
state is read, so a transaction landing in between is handled (re-read) by the next poll,
never missed. An account that does not exist yet is remembered as absent and followed from
its first transaction.

Two rules keep one SQLite connection safe for every task of the event loop: nothing awaits
while a transaction is open (chain reads happen before `BEGIN`), and poll rounds run one at
a time.

Known limitations:
- A Root parameter change (minimum stake, prices, close delay, the model allowlist)
  reaches the directory within one poll, not at once: a peer admitted in between was
  eligible under the parameters the directory last saw.
- The SQLite file's `watcher_cursor` table belongs to this directory's watcher; an agent's
  other watchers need their own file.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import sqlite3
from collections.abc import Awaitable, Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, Literal

from pytoniq_core import Address, Cell

from offchain.errors import ConfigError, GetMethodError, ProviderError, StorageError
from offchain.ton._chain_types import ChainTx
from offchain.ton.network import ChainContractProvider, ChainProvider
from offchain.ton.transaction import raw
from offchain.ton.watcher import CursorStore, Watcher, WatchEvent
from wrappers.channel import Channel, ChannelConfig, ChannelData, ChannelState
from wrappers.provider import Provider, ProviderConfig, ProviderData, ProviderState, Role
from wrappers.root import Root

__all__ = [
    "Change",
    "ChannelView",
    "Directory",
    "ProviderView",
    "RootView",
]

log = logging.getLogger("cocoon.directory")

Subscriber = Callable[["Change"], "Awaitable[None] | None"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS directory_root (
    address TEXT PRIMARY KEY, version INTEGER NOT NULL,
    compute_unit_price TEXT NOT NULL, data_unit_price TEXT NOT NULL, close_delay INTEGER NOT NULL,
    reward_pool TEXT, provider_code BLOB NOT NULL, channel_code BLOB NOT NULL,
    dev_attestation INTEGER NOT NULL DEFAULT 0);
CREATE TABLE IF NOT EXISTS directory_role (
    root TEXT NOT NULL, role INTEGER NOT NULL, min_stake TEXT NOT NULL, PRIMARY KEY (root, role));
CREATE TABLE IF NOT EXISTS directory_provider (
    address TEXT PRIMARY KEY, root TEXT NOT NULL, owner TEXT NOT NULL, role INTEGER NOT NULL,
    present INTEGER NOT NULL, state INTEGER, stake TEXT, node_key BLOB, endpoint TEXT, image_hash TEXT);
CREATE INDEX IF NOT EXISTS directory_provider_owner ON directory_provider (root, owner, role);
CREATE TABLE IF NOT EXISTS directory_channel (
    address TEXT PRIMARY KEY, root TEXT NOT NULL, client TEXT NOT NULL, router TEXT NOT NULL,
    client_key BLOB NOT NULL, router_key BLOB NOT NULL, present INTEGER NOT NULL, state INTEGER,
    deposit TEXT, redeemed_compute TEXT, redeemed_data TEXT, close_at INTEGER);
CREATE TABLE IF NOT EXISTS directory_model (
    root TEXT NOT NULL, hash BLOB NOT NULL, allowed INTEGER NOT NULL, PRIMARY KEY (root, hash));
"""
# Amounts are TEXT: coins reach 2^120 nanoTON and SQLite integers stop at 2^63.


# -- views -------------------------------------------------------------------------------------
@dataclass(frozen=True)
class RootView:
    """Root's parameters as the directory last saw them."""

    address: str
    version: int
    compute_unit_price: int
    data_unit_price: int
    close_delay: int
    reward_pool: str | None
    min_stake: dict[Role, int]
    """Root's current minimum stake per role (`get_role_params`)."""
    dev_attestation: bool = False
    """Whether Root allows the `dev` attestation (no TEE hardware, explicitly insecure)."""


@dataclass(frozen=True)
class ProviderView:
    """One registered Provider. `min_stake` is Root's current minimum for its role."""

    address: str
    owner: str
    role: Role
    state: ProviderState
    stake: int
    node_key: bytes
    endpoint: str | None
    image_hash: int | None
    min_stake: int

    @property
    def eligible(self) -> bool:
        """Active and staked at least Root's current minimum for the role."""
        return self.state == ProviderState.ACTIVE and self.stake >= self.min_stake


@dataclass(frozen=True)
class ChannelView:
    """One deployed Channel (addresses in raw form, keys as 32 bytes)."""

    address: str
    client: str
    router: str
    client_key: bytes
    router_key: bytes
    state: ChannelState
    deposit: int
    redeemed_compute: int
    redeemed_data: int
    close_at: int

    @property
    def open(self) -> bool:
        return self.state == ChannelState.OPEN

    @property
    def unredeemed(self) -> int:
        """What vouchers may still claim: the deposit less what was redeemed."""
        return self.deposit - self.redeemed_compute - self.redeemed_data


@dataclass(frozen=True)
class Change:
    """A committed change of one view; `view` is None when the account has no view (any more)."""

    kind: Literal["root", "provider", "channel"]
    address: str
    view: RootView | ProviderView | ChannelView | None


# -- what a chain read brings back (before it is written) ---------------------------------------
@dataclass(frozen=True)
class _RootRead:
    version: int
    compute_unit_price: int
    data_unit_price: int
    close_delay: int
    reward_pool: str | None
    min_stake: dict[Role, int]
    provider_code: Cell
    channel_code: Cell
    dev_attestation: bool


_Read = _RootRead | ProviderData | ChannelData | None


def _key(name: str, value: bytes) -> bytes:
    if not isinstance(value, bytes | bytearray) or len(value) != 32:
        raise ValueError(f"{name} must be 32 bytes")
    return bytes(value)


def _cursor_only(events: list[WatchEvent], db: sqlite3.Connection) -> None:
    return None


def _int(v: str | None) -> int:
    return int(v) if v is not None else 0


# -- the directory -------------------------------------------------------------------------------
class Directory:
    """Providers, Channels and Root's parameters of one Root, followed from the chain into SQLite.

    Args:
        chain: any `ChainProvider`; called for first look-ups and by the watcher, never for
            a view already in the database.
        root: Root's address.
        db_path: the SQLite file (WAL) holding the views and the watcher's cursors.
        poll_interval: seconds between watcher polls when nothing was new.

    One event loop only. Every method but `subscribe()` needs `start()` (or `async with`)
    first. Look-ups may run concurrently with each other and with the watcher's rounds.
    """

    def __init__(
        self, chain: ChainProvider, root: Address | str, *, db_path: Path | str, poll_interval: float = 1.0
    ) -> None:
        self.chain = chain
        self.root_address = raw(root) or ""
        self.db_path = Path(db_path)
        self.poll_interval = poll_interval
        self._root_contract = Root(Address(self.root_address))
        self._store: CursorStore | None = None
        self._watcher: Watcher | None = None
        self._root_view: RootView | None = None
        self._provider_code: Cell | None = None
        self._channel_code: Cell | None = None
        self._subscribers: list[Subscriber] = []
        self._poll_lock = asyncio.Lock()
        self._root_generation = 0  # bumped on every committed Root change (model cache writes check it)
        self._previous_min_stake: dict[Role, int] | None = None  # what Provider views were last announced with
        self._closing = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.synced_at: float | None = None
        """`loop.time()` when the last poll round completed (None before the first): how stale the view may be."""

    # -- lifecycle ------------------------------------------------------------------------------
    async def __aenter__(self) -> Directory:
        await self.start()
        return self

    async def __aexit__(
        self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    async def start(self) -> None:
        """Open the database, read Root once if it is not there yet, catch up with one watcher
        round, then follow the chain in a task (a round every `poll_interval`).

        Call once, before anything else. Cancelling is safe (nothing half-written; call
        `close()` to release the file).

        Raises:
            StorageError: the database cannot be opened.
            ProviderError, GetMethodError: Root could not be read (first start only).
            ConfigError: already started.
        """
        if self._store is not None:
            raise ConfigError("Directory.start() was called twice")
        self._store = CursorStore(self.db_path)
        try:
            await self._open()
        except BaseException:
            self._store.close()
            self._store = None
            raise
        self._task = asyncio.create_task(self._follow(), name=f"directory {self.root_address}")

    async def _open(self) -> None:
        assert self._store is not None
        try:
            self._store.db.executescript(_SCHEMA)
            self._migrate()
        except sqlite3.Error as err:
            raise StorageError(f"cannot create the directory tables in {self.db_path}: {err}") from err
        self._watcher = Watcher(self.chain, [self.root_address], store=self._store, poll_interval=self.poll_interval)
        if not self._load_root():
            latest = await self._latest(self.root_address)
            read = await self._read_root()
            assert read is not None
            with self._transaction() as db:
                if latest is not None:
                    self._store.set(self.root_address, *latest.cursor)
                self._write_root(db, read)
            self._load_root()
        for (address,) in self._db.execute(
            "SELECT address FROM directory_provider WHERE root = ? UNION ALL "
            "SELECT address FROM directory_channel WHERE root = ?",
            (self.root_address, self.root_address),
        ):
            self._watcher.follow(address)
        await self.poll_once()  # caught up with what was followed before a restart

    def _migrate(self) -> None:
        """A file written before Root had `dev_attestation`: add the column and forget the
        Root row, so `_open()` reads Root afresh (a default would claim "off" for a Root
        whose owner may have turned it on)."""
        db = self._db
        columns = {row[1] for row in db.execute("PRAGMA table_info(directory_root)")}
        if "dev_attestation" not in columns:
            with self._transaction():
                db.execute("ALTER TABLE directory_root ADD COLUMN dev_attestation INTEGER NOT NULL DEFAULT 0")
                db.execute("DELETE FROM directory_root WHERE address = ?", (self.root_address,))

    async def close(self) -> None:
        """Stop following the chain and close the database. Safe to call twice.

        Raises:
            the error that stopped the watcher task, if one did (after closing everything).
        """
        self._closing.set()
        task, self._task = self._task, None
        failure: BaseException | None = None
        if task is not None:
            if not task.done():
                task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                try:
                    await task
                except Exception as err:  # re-raised below, once the database is closed
                    failure = err
        if self._watcher is not None:
            self._watcher.close()
        if self._store is not None:
            self._store.close()
            self._store = None
        if failure is not None:
            raise failure

    async def _follow(self) -> None:
        """The watcher task: a round every `poll_interval`, at once again after a busy one."""
        handled = 0
        while not self._closing.is_set():
            if handled == 0:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._closing.wait(), self.poll_interval)
                if self._closing.is_set():
                    return
            try:
                handled = await self.poll_once()
            except (ProviderError, GetMethodError) as err:  # the backend is down or slow: next interval
                log.warning("directory poll failed root=%s error=%s", self.root_address, err)
                handled = 0
            except StorageError:  # a cursor not on this chain: following on would be wrong; close() raises it
                log.exception("directory stopped following root=%s", self.root_address)
                raise

    # -- reads -------------------------------------------------------------------------------------
    @property
    def root(self) -> RootView:
        """Root's parameters as of the last poll.

        Raises:
            ConfigError: `start()` has not run.
        """
        if self._root_view is None:
            raise ConfigError("Directory.start() has not run")
        return self._root_view

    def provider_address(self, owner: Address | str, role: Role) -> str:
        """The Provider address of (owner, role), from Root's Provider code (no chain call)."""
        if self._provider_code is None:
            raise ConfigError("Directory.start() has not run")
        cfg = ProviderConfig(Address(self.root_address), Address(raw(owner) or ""), Role(role))
        return raw(Provider.create_from_config(cfg, self._provider_code).address) or ""

    def channel_address(
        self, client: Address | str, router: Address | str, client_key: bytes, router_key: bytes
    ) -> str:
        """The Channel address of these parties and keys, from Root's Channel code (no chain call)."""
        if self._channel_code is None:
            raise ConfigError("Directory.start() has not run")
        cfg = ChannelConfig(
            root=Address(self.root_address),
            client=Address(raw(client) or ""),
            router=Address(raw(router) or ""),
            client_key=int.from_bytes(_key("client_key", client_key), "big"),
            router_key=int.from_bytes(_key("router_key", router_key), "big"),
        )
        return raw(Channel.create_from_config(cfg, self._channel_code).address) or ""

    async def provider(self, owner: Address | str, role: Role) -> ProviderView | None:
        """The Provider of (owner, role), or None if it is not deployed or never registered.

        From SQLite when known; otherwise read from the chain once, stored, and followed
        from then on. Any number of calls may run concurrently; cancelling is safe.

        Raises:
            ProviderError, GetMethodError: a first look-up could not read the chain.
        """
        address = self.provider_address(owner, role)
        row = self._provider_row(address)
        if row is not None:
            return self._provider_view(row)
        latest = await self._latest(address)
        read = await self._read_provider(address)
        if self._provider_row(address) is None:  # a concurrent look-up may have stored it meanwhile
            with self._transaction() as db:
                if latest is not None:
                    self._cursors.set(address, *latest.cursor)
                db.execute(
                    "INSERT INTO directory_provider (address, root, owner, role, present) VALUES (?, ?, ?, ?, 0)",
                    (address, self.root_address, raw(owner), int(role)),
                )
                self._write_provider(db, address, read)
            self._follow_account(address)
        row = self._provider_row(address)
        assert row is not None
        return self._provider_view(row)

    async def channel(
        self, client: Address | str, router: Address | str, client_key: bytes, router_key: bytes
    ) -> ChannelView | None:
        """The Channel of these parties and keys, or None if it is not deployed.

        Same pattern as `provider()`: SQLite, or the chain once and followed from then on.
        Any number of calls may run concurrently; cancelling is safe.

        Raises:
            ProviderError, GetMethodError: a first look-up could not read the chain.
        """
        address = self.channel_address(client, router, client_key, router_key)
        row = self._channel_row(address)
        if row is not None:
            return self._channel_view(row)
        latest = await self._latest(address)
        read = await self._read_channel(address)
        if self._channel_row(address) is None:
            with self._transaction() as db:
                if latest is not None:
                    self._cursors.set(address, *latest.cursor)
                db.execute(
                    "INSERT INTO directory_channel (address, root, client, router, client_key, router_key, present)"
                    " VALUES (?, ?, ?, ?, ?, ?, 0)",
                    (address, self.root_address, raw(client), raw(router), bytes(client_key), bytes(router_key)),
                )
                self._write_channel(db, address, read)
            self._follow_account(address)
        row = self._channel_row(address)
        assert row is not None
        return self._channel_view(row)

    async def is_model_allowed(self, model_hash: bytes) -> bool:
        """Whether Root's model allowlist holds `model_hash` (32 bytes).

        Asks Root once per hash; the answers are cached in SQLite and dropped on every
        Root change the watcher sees. Concurrent calls are fine; cancelling is safe.

        Raises:
            ValueError: not 32 bytes.
            ProviderError, GetMethodError: Root could not be asked.
        """
        return await self._allowed("model", _key("model_hash", model_hash))

    async def is_image_allowed(self, measurement: bytes) -> bool:
        """Whether Root's worker image allowlist holds `measurement` (32 bytes: an attested
        image, offchain.attestation.image_measurement). Cached as `is_model_allowed` is."""
        return await self._allowed("image", _key("measurement", measurement))

    async def _allowed(self, kind: str, h: bytes) -> bool:
        # one cache table for both lists: an image's key is prefixed so it never meets a model's
        key = h if kind == "model" else b"image:" + h
        row = self._db.execute(
            "SELECT allowed FROM directory_model WHERE root = ? AND hash = ?", (self.root_address, key)
        ).fetchone()
        if row is not None:
            return bool(row[0])
        generation = self._root_generation
        contract = self._contract(self.root_address)
        if kind == "model":
            allowed = await self._root_contract.get_is_model_allowed(contract, int.from_bytes(h))
        else:
            allowed = await self._root_contract.get_is_image_allowed(contract, int.from_bytes(h))
        if generation == self._root_generation:  # no Root change committed while we asked
            self._db.execute(
                "INSERT OR REPLACE INTO directory_model (root, hash, allowed) VALUES (?, ?, ?)",
                (self.root_address, key, int(allowed)),
            )
        return allowed

    def subscribe(self, callback: Subscriber) -> None:
        """Call `callback(change)` (awaited if it returns an awaitable) after each committed view change.

        Callbacks run in the watcher's task (or in the caller of `poll_once()`), in chain
        order; one that raises is logged and the others still run. A slow callback delays
        the next poll; a callback must not call `poll_once()` (the round in progress holds it).
        """
        self._subscribers.append(callback)

    # -- following ----------------------------------------------------------------------------------
    async def poll_once(self) -> int:
        """One watcher round: fetch every followed account's new transactions, re-read the accounts
        they touched, commit each transaction's views with its cursor, notify subscribers.

        Returns the number of transactions handled. Rounds never overlap (a concurrent call
        waits for the round in progress). Cancelling is safe: a transaction not yet
        committed comes again in the next round.

        Raises:
            ProviderError, GetMethodError: the chain could not be read (handled transactions stay committed).
            StorageError: a stored cursor is not on this chain (was it reset?).
        """
        watcher = self._require_watcher()
        async with self._poll_lock:
            txs = await watcher.poll()
            touched = {tx.address for tx in txs if tx.success or tx.deployed}
            done: set[str] = set()
            for tx in txs:
                address = tx.address
                changes: list[Change] = []
                if address in touched and address not in done:  # the first of this round: re-read
                    done.add(address)
                    read = await self._read(address)  # before BEGIN: nothing awaits inside the transaction
                    await watcher.handle(tx, self._writer(address, read, changes))
                else:  # already covered by this round's read (or failed): only the cursor moves
                    await watcher.handle(tx, _cursor_only)
                if any(c.kind == "root" for c in changes):
                    self._root_generation += 1
                    self._load_root()
                    changes = self._after_root_change(changes)
                await self._notify(changes)
            self.synced_at = asyncio.get_running_loop().time()
            return len(txs)

    # -- chain reads (never inside a transaction) ----------------------------------------------------
    async def _read(self, address: str) -> _Read:
        if address == self.root_address:
            stored = self._db.execute(
                "SELECT version FROM directory_root WHERE address = ?", (address,)
            ).fetchone()
            return await self._read_root(unless_version=stored[0] if stored else None)
        if self._provider_row(address) is not None:
            return await self._read_provider(address)
        return await self._read_channel(address)

    async def _read_root(self, *, unless_version: int | None = None) -> _RootRead | None:
        """Root's parameters; None if its version is still `unless_version` (nothing an owner sets moved)."""
        p = self._contract(self.root_address)
        data = await self._root_contract.get_root_data(p)
        if unless_version is not None and data.version == unless_version:
            return None
        params = await self._root_contract.get_params(p)
        min_stake = {role: (await self._root_contract.get_role_params(p, role)).min_stake for role in Role}
        codes = await self._root_contract.get_child_codes(p)
        return _RootRead(
            version=data.version,
            compute_unit_price=params.compute_unit_price,
            data_unit_price=params.data_unit_price,
            close_delay=params.close_delay,
            reward_pool=raw(params.reward_pool),
            min_stake=min_stake,
            provider_code=codes.provider,
            channel_code=codes.channel,
            dev_attestation=params.dev_attestation,
        )

    async def _read_provider(self, address: str) -> ProviderData | None:
        try:
            return await Provider(Address(address)).get_provider_data(self._contract(address))
        except (GetMethodError, ProviderError):  # backends differ in how they refuse a getter on no code
            if not await self._active(address):
                return None  # not deployed (or frozen): no Provider there
            raise

    async def _read_channel(self, address: str) -> ChannelData | None:
        try:
            return await Channel(Address(address)).get_channel_data(self._contract(address))
        except (GetMethodError, ProviderError):
            if not await self._active(address):
                return None
            raise

    async def _active(self, address: str) -> bool:
        return (await self.chain.get_account(address)).status == "active"

    async def _latest(self, address: str) -> ChainTx | None:
        txs = await self.chain.get_transactions(address, limit=1)
        return txs[0] if txs else None

    def _contract(self, address: str) -> ChainContractProvider:
        return ChainContractProvider(self.chain, Address(address))

    # -- writes (inside the watcher's transaction, or `_transaction()`) -------------------------------
    def _writer(
        self, address: str, read: _Read, out: list[Change]
    ) -> Callable[[list[WatchEvent], sqlite3.Connection], None]:
        def write(events: list[WatchEvent], db: sqlite3.Connection) -> None:
            out.extend(self._apply(db, address, read))

        return write

    def _apply(self, db: sqlite3.Connection, address: str, read: _Read) -> list[Change]:
        if address == self.root_address:
            if read is None:  # Root's version did not move
                return []
            assert isinstance(read, _RootRead)
            self._write_root(db, read)
            return [Change("root", address, None)]  # the view is filled in after the commit
        if self._provider_row(address) is not None:
            assert read is None or isinstance(read, ProviderData)
            before = self._provider_view(self._provider_row(address))
            self._write_provider(db, address, read)
            after = self._provider_view(self._provider_row(address))
            return [] if after == before else [Change("provider", address, after)]
        assert read is None or isinstance(read, ChannelData)
        before_c = self._channel_view(self._channel_row(address))
        self._write_channel(db, address, read)
        after_c = self._channel_view(self._channel_row(address))
        return [] if after_c == before_c else [Change("channel", address, after_c)]

    def _write_root(self, db: sqlite3.Connection, r: _RootRead) -> None:
        db.execute(
            "INSERT OR REPLACE INTO directory_root (address, version, compute_unit_price, data_unit_price,"
            " close_delay, reward_pool, provider_code, channel_code, dev_attestation)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                self.root_address, r.version, str(r.compute_unit_price), str(r.data_unit_price), r.close_delay,
                r.reward_pool, r.provider_code.to_boc(), r.channel_code.to_boc(), int(r.dev_attestation),
            ),
        )
        db.executemany(
            "INSERT OR REPLACE INTO directory_role (root, role, min_stake) VALUES (?, ?, ?)",
            [(self.root_address, int(role), str(v)) for role, v in r.min_stake.items()],
        )
        db.execute("DELETE FROM directory_model WHERE root = ?", (self.root_address,))

    def _write_provider(self, db: sqlite3.Connection, address: str, d: ProviderData | None) -> None:
        if d is None:
            db.execute(
                "UPDATE directory_provider SET present = 0, state = NULL, stake = NULL, node_key = NULL,"
                " endpoint = NULL, image_hash = NULL WHERE address = ?",
                (address,),
            )
            return
        db.execute(
            "UPDATE directory_provider SET present = 1, state = ?, stake = ?, node_key = ?, endpoint = ?,"
            " image_hash = ? WHERE address = ?",
            (
                int(d.state), str(d.stake), d.node_key.to_bytes(32, "big"), d.endpoint,
                None if d.image_hash is None else str(d.image_hash), address,
            ),
        )

    def _write_channel(self, db: sqlite3.Connection, address: str, d: ChannelData | None) -> None:
        if d is None:
            db.execute(
                "UPDATE directory_channel SET present = 0, state = NULL, deposit = NULL, redeemed_compute = NULL,"
                " redeemed_data = NULL, close_at = NULL WHERE address = ?",
                (address,),
            )
            return
        db.execute(
            "UPDATE directory_channel SET present = 1, state = ?, deposit = ?, redeemed_compute = ?,"
            " redeemed_data = ?, close_at = ? WHERE address = ?",
            (int(d.state), str(d.deposit), str(d.redeemed_compute), str(d.redeemed_data), d.close_at, address),
        )

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        """One SQLite transaction for a look-up's writes; the body must not await."""
        db = self._db
        db.execute("BEGIN IMMEDIATE")
        try:
            yield db
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")

    def _follow_account(self, address: str) -> None:
        self._require_watcher().follow(address)

    # -- after a commit ---------------------------------------------------------------------------------
    def _after_root_change(self, changes: list[Change]) -> list[Change]:
        """Fill in the Root view and add a change for every Provider whose role's minimum moved."""
        old = self._previous_min_stake or {}
        new = self.root.min_stake
        self._previous_min_stake = dict(new)
        out = [Change("root", c.address, self.root) if c.kind == "root" else c for c in changes]
        moved = [int(role) for role in Role if old.get(role) != new.get(role)]
        if moved:
            marks = ",".join("?" * len(moved))
            for row in self._db.execute(
                f"SELECT {_PROVIDER_COLUMNS} FROM directory_provider WHERE root = ? AND present = 1"
                f" AND role IN ({marks}) ORDER BY address",
                (self.root_address, *moved),
            ).fetchall():
                view = self._provider_view(row)
                if view is not None:
                    out.append(Change("provider", view.address, view))
        return out

    async def _notify(self, changes: Iterable[Change]) -> None:
        for change in changes:
            if log.isEnabledFor(logging.DEBUG):
                log.debug("directory change kind=%s address=%s", change.kind, change.address)
            for callback in list(self._subscribers):
                try:
                    res = callback(change)
                    if inspect.isawaitable(res):
                        await res
                except Exception:  # a subscriber's bug must not stop the view from following the chain
                    log.exception("directory subscriber failed kind=%s address=%s", change.kind, change.address)

    # -- rows and views ----------------------------------------------------------------------------------
    @property
    def _db(self) -> sqlite3.Connection:
        if self._store is None:
            raise ConfigError("Directory.start() has not run (or close() has)")
        return self._store.db

    @property
    def _cursors(self) -> CursorStore:
        if self._store is None:
            raise ConfigError("Directory.start() has not run (or close() has)")
        return self._store

    def _require_watcher(self) -> Watcher:
        if self._watcher is None or self._store is None:
            raise ConfigError("Directory.start() has not run")
        return self._watcher

    def _load_root(self) -> bool:
        row = self._db.execute(
            "SELECT version, compute_unit_price, data_unit_price, close_delay, reward_pool, provider_code,"
            " channel_code, dev_attestation FROM directory_root WHERE address = ?",
            (self.root_address,),
        ).fetchone()
        if row is None:
            return False
        roles = {
            Role(r): int(v)
            for r, v in self._db.execute(
                "SELECT role, min_stake FROM directory_role WHERE root = ?", (self.root_address,)
            )
        }
        self._root_view = RootView(
            address=self.root_address,
            version=row[0],
            compute_unit_price=int(row[1]),
            data_unit_price=int(row[2]),
            close_delay=row[3],
            reward_pool=row[4],
            min_stake=roles,
            dev_attestation=bool(row[7]),
        )
        if self._previous_min_stake is None:
            self._previous_min_stake = dict(roles)
        self._provider_code = Cell.one_from_boc(row[5])
        self._channel_code = Cell.one_from_boc(row[6])
        return True

    def _provider_row(self, address: str) -> tuple[Any, ...] | None:
        return self._db.execute(
            f"SELECT {_PROVIDER_COLUMNS} FROM directory_provider WHERE address = ?", (address,)
        ).fetchone()

    def _channel_row(self, address: str) -> tuple[Any, ...] | None:
        return self._db.execute(
            f"SELECT {_CHANNEL_COLUMNS} FROM directory_channel WHERE address = ?", (address,)
        ).fetchone()

    def _provider_view(self, row: tuple[Any, ...] | None) -> ProviderView | None:
        if row is None:
            return None
        address, owner, role, present, state, stake, node_key, endpoint, image_hash = row
        if not present or state == ProviderState.UNREGISTERED:
            return None
        return ProviderView(
            address=address,
            owner=owner,
            role=Role(role),
            state=ProviderState(state),
            stake=_int(stake),
            node_key=bytes(node_key),
            endpoint=endpoint,
            image_hash=None if image_hash is None else int(image_hash),
            min_stake=self.root.min_stake.get(Role(role), 0),
        )

    def _channel_view(self, row: tuple[Any, ...] | None) -> ChannelView | None:
        if row is None:
            return None
        address, client, router, client_key, router_key, present, state, deposit, rc, rd, close_at = row
        if not present:
            return None
        return ChannelView(
            address=address,
            client=client,
            router=router,
            client_key=bytes(client_key),
            router_key=bytes(router_key),
            state=ChannelState(state),
            deposit=_int(deposit),
            redeemed_compute=_int(rc),
            redeemed_data=_int(rd),
            close_at=close_at or 0,
        )


_PROVIDER_COLUMNS = "address, owner, role, present, state, stake, node_key, endpoint, image_hash"
_CHANNEL_COLUMNS = (
    "address, client, router, client_key, router_key, present, state, deposit, redeemed_compute, redeemed_data,"
    " close_at"
)

"""The localnet's chain: a sandbox `Blockchain` plus blocks, a transaction index and a state file.

No HTTP here (the ASGI app in `localnet.py` is a thin layer over `LocalChain`). Every call
runs on one thread, the server's event loop; only `write_state` may run on a worker thread,
and it receives a detached `StateImage`, never the live objects.

Messages: `submit()` checks an external message against the current state the way a
liteserver does (a dry run: not accepted → `ToncenterInputError`), then queues it;
`produce_block()` runs the queue in order, each message with its whole trace. With
`block_interval == 0` every accepted message is its own block, processed before `submit()`
returns.

State file: one JSON document (accounts as ShardAccount BOCs, transactions as BOCs, clock,
lt, block height), replaced atomically: written to a temporary file in the same folder,
fsynced, renamed over the old one, folder fsynced. A kill at any moment leaves either the
old or the new file, never a torn one.
"""

from __future__ import annotations

import bisect
import hashlib
import json
import logging
import os
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pytoniq_core import Address, Cell

from offchain.errors import EmulationError, GetMethodError, StorageError
from offchain.ton._chain_types import decode_transaction
from offchain.ton._toncenter import ToncenterInputError
from offchain.ton._wallet import MAINNET_GLOBAL_ID, WALLET_V5R1_CODE, WalletKey
from offchain.ton.blockchain import AccountState, Blockchain, GetResult, Snapshot, message_destination
from offchain.ton.executor import StackValue, TransactionArgs
from offchain.ton.transaction import raw

__all__ = ["Block", "LocalChain", "StateImage", "TxRecord", "write_state"]

log = logging.getLogger("cocoon.localnet")

STATE_FORMAT = "cocoon-localnet/1"
DEFAULT_BALANCE = 1_000_000 * 10**9
MAX_QUEUE = 10_000


class TxRecord:
    """One transaction in the index: lt, BOC, and its hash, computed on first use.

    Hashing a transaction is a pure-Python BOC parse (~1 ms): settling a message does not
    need it, so it waits until a reader asks (and the decoded form is cached for rendering).
    """

    __slots__ = ("_hash", "boc", "lt")

    def __init__(self, lt: int, boc: str, hash_: bytes | None = None) -> None:
        self.lt = lt
        self.boc = boc
        self._hash = hash_

    @property
    def hash(self) -> bytes:
        if self._hash is None:
            self._hash = decode_transaction(self.boc).hash
        return self._hash

    def __eq__(self, other: object) -> bool:
        return isinstance(other, TxRecord) and (self.lt, self.boc) == (other.lt, other.boc)

    def __hash__(self) -> int:
        return hash((self.lt, self.boc))


@dataclass(frozen=True, slots=True)
class Block:
    seqno: int
    hash: bytes
    utime: int
    tx_count: int


@dataclass
class StateImage:
    """A detached copy of everything the state file holds (safe to serialize off-thread)."""

    seqno: int
    block_hash: bytes
    utime: int
    lt: int
    now: int
    global_id: int
    wallets: int
    accounts: dict[str, str]
    transactions: dict[str, list[TxRecord]] = field(default_factory=dict)

    def to_json(self) -> bytes:
        doc = {
            "format": STATE_FORMAT,
            "seqno": self.seqno,
            "block_hash": self.block_hash.hex(),
            "utime": self.utime,
            "lt": self.lt,
            "now": self.now,
            "global_id": self.global_id,
            "wallets": self.wallets,
            "accounts": self.accounts,
            "transactions": {
                a: [[r.lt, r._hash.hex() if r._hash else "", r.boc] for r in rs] for a, rs in self.transactions.items()
            },
        }
        return json.dumps(doc, separators=(",", ":")).encode()

    @classmethod
    def from_json(cls, data: bytes) -> StateImage:
        doc = json.loads(data)
        if doc.get("format") != STATE_FORMAT:
            raise ValueError(f"unknown state format {doc.get('format')!r}")
        return cls(
            seqno=int(doc["seqno"]),
            block_hash=bytes.fromhex(doc["block_hash"]),
            utime=int(doc["utime"]),
            lt=int(doc["lt"]),
            now=int(doc["now"]),
            global_id=int(doc["global_id"]),
            wallets=int(doc["wallets"]),
            accounts=dict(doc["accounts"]),
            transactions={
                a: [TxRecord(int(lt), boc, bytes.fromhex(h) if h else None) for lt, h, boc in rs]
                for a, rs in doc["transactions"].items()
            },
        )


def write_state(path: Path, image: StateImage) -> None:
    """Replace `path` with `image` atomically (tmp file + fsync + rename + fsync of the folder).

    Raises:
        StorageError: the file could not be written (the old file is left as it was).
    """
    data = image.to_json()
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
        dir_fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
    except OSError as err:
        tmp.unlink(missing_ok=True)
        raise StorageError(f"cannot write localnet state {path}: {err}") from err


def _read_state(path: Path) -> StateImage:
    try:
        return StateImage.from_json(path.read_bytes())
    except OSError as err:
        raise StorageError(f"cannot read localnet state {path}: {err}") from err
    except (ValueError, KeyError, TypeError) as err:
        raise StorageError(
            f"localnet state {path} is not a valid state file ({err}); move it away to start afresh"
        ) from err


class LocalChain:
    """Blocks, a transaction index and persistence around a sandbox `Blockchain`."""

    def __init__(self, blockchain: Blockchain, *, global_id: int = MAINNET_GLOBAL_ID, wallets: int = 0) -> None:
        self.bc = blockchain
        self.global_id = global_id
        self.wallets = wallets
        self.seqno = 0
        self.block_hash = hashlib.sha256(b"cocoon localnet genesis").digest()
        self.utime = blockchain.now
        self._index: dict[str, list[TxRecord]] = {}
        self._queue: deque[tuple[Cell, str]] = deque()
        self.dirty = False
        self.tx_count = 0

    # -- creation ----------------------------------------------------------------------
    @classmethod
    def genesis(cls, *, wallets: int = 10, balance: int = DEFAULT_BALANCE, now: int | None = None) -> LocalChain:
        """A new chain whose first `wallets` v5r1 wallets (fixed mnemonics) hold `balance` each."""
        bc = Blockchain.create(now=now if now is not None else int(time.time()))
        chain = cls(bc, wallets=wallets)
        for i in range(wallets):
            key = WalletKey.localnet(i, global_id=chain.global_id, with_secret=False)
            bc.set_account(key.address, code=WALLET_V5R1_CODE, data=key.data, balance=balance)
        chain.dirty = True
        return chain

    @classmethod
    def open(cls, path: Path | None, *, wallets: int = 10, balance: int = DEFAULT_BALANCE) -> LocalChain:
        """The chain stored at `path`, or a genesis chain if there is no such file yet.

        Raises:
            StorageError: the file exists but cannot be read or parsed.
        """
        if path is None or not path.exists():
            return cls.genesis(wallets=wallets, balance=balance)
        image = _read_state(path)
        bc = Blockchain.create(now=max(image.now, int(time.time())))
        bc.load_from(Snapshot(accounts=dict(image.accounts), lt=image.lt, now=bc.now, transactions={}))
        chain = cls(bc, global_id=image.global_id, wallets=image.wallets)
        chain.seqno, chain.block_hash, chain.utime = image.seqno, image.block_hash, image.utime
        chain._index = image.transactions
        chain.tx_count = sum(len(v) for v in image.transactions.values())
        return chain

    def image(self) -> StateImage:
        """A detached copy of the state for `write_state` (cheap: strings are shared)."""
        snap = self.bc.snapshot()
        if snap.transactions:  # the index below is the record; drop the engine's copies
            self.bc.load_from(Snapshot(snap.accounts, snap.lt, snap.now, {}))
        return StateImage(
            seqno=self.seqno,
            block_hash=self.block_hash,
            utime=self.utime,
            lt=snap.lt,
            now=self.bc.now,
            global_id=self.global_id,
            wallets=self.wallets,
            accounts=snap.accounts,
            transactions={a: list(rs) for a, rs in self._index.items()},
        )

    # -- messages ----------------------------------------------------------------------
    @property
    def pending(self) -> int:
        return len(self._queue)

    def submit(self, boc: str, *, immediate: bool) -> Cell:
        """Accept an external message (checked against the current state) and queue it.

        With `immediate`, the message is processed as its own block before returning.

        Returns:
            The message cell (its hash is what sendBocReturnHash reports).

        Raises:
            ToncenterInputError: malformed BOC, not an external-in message, or the
                destination contract did not accept it (bad signature, stale seqno, ...).
        """
        cell, dest = _parse_external(boc)
        if immediate:
            self._open_block()
            try:
                result = self.bc.send_message(cell)
            except EmulationError as err:
                raise _not_accepted(err) from err
            self._record(result.transactions)
            self._close_block(len(result.transactions))
            return cell
        if len(self._queue) >= MAX_QUEUE:
            raise ToncenterInputError("message queue is full, retry later", 429)
        args = TransactionArgs(now=max(self.bc.now, int(time.time())), lt=self.bc.lt)
        try:
            self.bc.executor.run_transaction(self.bc.shard_account(dest), _b64(cell), args)
        except EmulationError as err:
            raise _not_accepted(err) from err
        self._queue.append((cell, dest))
        return cell

    def produce_block(self) -> Block:
        """Run every queued message in order (each with its whole trace) and seal a block.

        A message that is no longer accepted (e.g. two transfers with one seqno) is dropped,
        as a validator would drop it.
        """
        self._open_block()
        n = 0
        while self._queue:
            cell, dest = self._queue.popleft()
            try:
                result = self.bc.send_message(cell)
            except EmulationError as err:
                log.info("dropped external message to %s: %s", dest, err.reason)
                continue
            self._record(result.transactions)
            n += len(result.transactions)
        return self._close_block(n)

    def _open_block(self) -> None:
        now = max(self.bc.now, int(time.time()))
        if now != self.bc.now:
            self.bc.now = now

    def _record(self, txs: list[Any]) -> None:
        for tx in txs:
            self._index.setdefault(tx.address, []).append(TxRecord(tx.lt, tx.boc))
        self.tx_count += len(txs)

    def _close_block(self, n: int) -> Block:
        self.seqno += 1
        self.utime = self.bc.now
        h = hashlib.sha256(self.block_hash + self.seqno.to_bytes(8, "big") + self.bc.lt.to_bytes(8, "big"))
        self.block_hash = h.digest()
        if n:
            self.dirty = True
        return Block(self.seqno, self.block_hash, self.utime, n)

    # -- reads -------------------------------------------------------------------------
    def account(self, address: Address | str) -> AccountState:
        return self.bc.account(address)

    def transactions(
        self, address: Address | str, *, limit: int, lt: int | None = None, hash_: bytes | None = None, to_lt: int = 0
    ) -> list[TxRecord]:
        """Newest first, starting at (lt, hash) inclusive when given, stopping at `to_lt` (exclusive).

        Raises:
            ToncenterInputError: (lt, hash) names no transaction of this account.
        """
        records = self._index.get(raw(address) or "", [])
        end = len(records)
        if lt is not None:
            i = bisect.bisect_left(records, lt, key=lambda r: r.lt)
            if i >= len(records) or records[i].lt != lt or (hash_ is not None and records[i].hash != hash_):
                raise ToncenterInputError(f"transaction lt={lt} not found for this account", 404)
            end = i + 1
        out: list[TxRecord] = []
        for j in range(end - 1, -1, -1):
            r = records[j]
            if r.lt <= to_lt or len(out) >= limit:
                break
            out.append(r)
        return out

    def last_tx(self, address: Address | str) -> TxRecord | None:
        records = self._index.get(raw(address) or "", [])
        return records[-1] if records else None

    def run_get_method(self, address: Address | str, method: str | int, stack: list[StackValue]) -> GetResult:
        """Run a getter; a failing one comes back as a result with its exit code, like Toncenter."""
        try:
            return self.bc.run_get_method(address, method, stack)
        except GetMethodError as err:
            return GetResult(exit_code=err.exit_code, gas_used=err.gas_used, stack=[])

    @property
    def config_boc(self) -> str:
        boc = getattr(self.bc.executor, "config_boc", None)
        if boc is None:
            from offchain.ton._tonpy_executor import load_config_boc

            boc = load_config_boc()
        return boc


def _b64(cell: Cell) -> str:
    import base64

    return base64.b64encode(cell.to_boc()).decode()


def _parse_external(boc: object) -> tuple[Cell, str]:
    import base64
    import binascii

    if not isinstance(boc, str) or not boc:
        raise ToncenterInputError("boc: expected a base64 string")
    try:
        data = base64.b64decode(boc, validate=True)
    except (binascii.Error, ValueError):
        try:
            data = bytes.fromhex(boc)  # tonutils and a few others send hex
        except ValueError as err:
            raise ToncenterInputError("Failed to deserialize BOC: not base64") from err
    try:
        cell = Cell.one_from_boc(data)
        external_in = cell.begin_parse().load_uint(2) == 0b10
    except Exception as err:
        raise ToncenterInputError(f"Failed to deserialize BOC: {err}") from err
    if not external_in:
        raise ToncenterInputError("only external-in messages can be sent to the network")
    try:
        return cell, message_destination(cell)
    except ValueError as err:
        raise ToncenterInputError(f"Failed to deserialize BOC: {err}") from err


def _not_accepted(err: EmulationError) -> ToncenterInputError:
    code = f" (exit code {err.exit_code})" if err.exit_code is not None else ""
    return ToncenterInputError(
        f"LITE_SERVER_UNKNOWN: cannot apply external message to current state : "
        f"External message was not accepted{code}",
        400,
    )

"""The engine interface: the only thing the sandbox needs from an emulator.

Like @ton/sandbox's `IExecutor`: three calls, cells crossing as base64 BOC strings,
results as plain data. `offchain/ton/_tonpy_executor.py` is the implementation on
tonpy's native emulator; another engine only has to satisfy `Executor`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from pytoniq_core import Builder, Cell, Slice

__all__ = [
    "EmulationResult",
    "Executor",
    "GetMethodArgs",
    "GetMethodResult",
    "MessageSummary",
    "StackValue",
    "TransactionArgs",
    "TxHead",
    "TxSummary",
]

StackValue = int | None | Cell | Slice | Builder | list
"""A TVM stack entry in Python: integers, null, cells, slices, builders, tuples (lists)."""


@dataclass(frozen=True, slots=True)
class MessageSummary:
    """The fields of a message the sandbox routes and matches on (raw addresses `wc:hex`)."""

    kind: str  # "internal" | "external-in" | "external-out"
    src: str | None
    dest: str | None
    value: int
    bounce: bool
    bounced: bool
    fwd_fee: int
    created_lt: int
    created_at: int
    op: int | None  # first 32 bits of the body, if present
    boc: str  # the whole message


@dataclass(frozen=True, slots=True)
class TxSummary:
    """The transaction fields read natively by the engine (the full TL-B decode is lazy)."""

    account: str
    lt: int
    now: int
    orig_status: int
    end_status: int
    total_fees: int
    in_msg: MessageSummary | None
    out_msgs: tuple[MessageSummary, ...]
    compute_skipped: bool
    compute_success: bool
    exit_code: int | None
    gas_used: int
    gas_fees: int
    vm_steps: int
    action_success: bool | None
    action_result_code: int | None
    total_fwd_fees: int
    total_action_fees: int
    aborted: bool
    destroyed: bool
    storage_fees: int


@dataclass(frozen=True, slots=True)
class TransactionArgs:
    now: int
    lt: int
    rand_seed: bytes = b"\0" * 32
    ignore_chksig: bool = False
    debug: bool = False


@dataclass(frozen=True, slots=True)
class TxHead:
    """What the sandbox needs of every transaction at once: where its messages go.

    The rest (phases, gas, fees, the inbound message) is decoded only when read, through
    `EmulationResult.summary`: most transactions of a test are never inspected.
    """

    account: str
    lt: int
    now: int
    orig_status: int
    end_status: int
    out_msgs: tuple[MessageSummary, ...]


class EmulationResult:
    """One emulated transaction: BOCs, the eager head, and the summary decoded on first use."""

    __slots__ = ("_decode", "_summary", "elapsed_ms", "head", "shard_account", "transaction", "vm_log")

    def __init__(
        self,
        transaction: str,
        shard_account: str,
        head: TxHead,
        decode: Callable[[], TxSummary],
        vm_log: str = "",
        elapsed_ms: float = 0.0,
    ) -> None:
        self.transaction = transaction  # base64 BOC of the Transaction
        self.shard_account = shard_account  # base64 BOC of the new ShardAccount
        self.head = head
        self._decode: Callable[[], TxSummary] | None = decode
        self._summary: TxSummary | None = None
        self.vm_log = vm_log
        self.elapsed_ms = elapsed_ms

    @property
    def summary(self) -> TxSummary:
        if self._summary is None:
            assert self._decode is not None
            self._summary = self._decode()
            self._decode = None  # let go of the native cell
        return self._summary


@dataclass(frozen=True, slots=True)
class GetMethodArgs:
    address: str  # raw `wc:hex`
    balance: int
    now: int
    lt: int
    rand_seed: bytes = b"\0" * 32
    gas_limit: int = 10_000_000
    debug: bool = False


@dataclass(slots=True)
class GetMethodResult:
    exit_code: int
    gas_used: int
    stack: list[StackValue] = field(default_factory=list)  # bottom first, as in Tolk's return order
    vm_log: str = ""

    @property
    def success(self) -> bool:
        return self.exit_code in (0, 1)


class Executor(Protocol):
    def run_transaction(self, shard_account: str, message: str, args: TransactionArgs) -> EmulationResult:
        """Run one ordinary transaction; raise EmulationError if the engine cannot."""
        ...

    def run_tick_tock(self, shard_account: str, is_tock: bool, args: TransactionArgs) -> EmulationResult: ...

    def run_get_method(
        self,
        code: str,
        data: str,
        method: int,
        stack: list[StackValue],
        args: GetMethodArgs,
    ) -> GetMethodResult: ...

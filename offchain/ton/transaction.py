"""Typed results of sending a message: transactions of a trace, matched like toHaveTransaction."""

from __future__ import annotations

import base64
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from pytoniq_core import Address, Cell
from pytoniq_core.tlb.transaction import Transaction as TlbTransaction

from offchain.ton.executor import EmulationResult, MessageSummary, TxHead, TxSummary

__all__ = [
    "Event",
    "SendResult",
    "Transaction",
    "TransactionNotFound",
    "fee_table",
    "find_tx",
    "raw",
]

_ACTIVE = 2  # AccountStatus acc_state_active


def raw(addr: Address | str | None) -> str | None:
    """Normalize an address to the raw `wc:hex` form used inside the sandbox."""
    if addr is None:
        return None
    if isinstance(addr, Address):
        return f"{addr.wc}:{addr.hash_part.hex()}"
    if addr.startswith("ext:"):
        return addr
    return raw(Address(addr))


class Transaction:
    """One transaction of a trace. A failed compute phase is a value here, not an exception.

    `head` (account, statuses, out-messages) is known at once; everything else comes from
    `summary`, decoded the first time a field needs it.
    """

    __slots__ = ("__dict__", "_source", "boc", "children", "head", "parent", "vm_log")

    def __init__(
        self,
        source: TxSummary | EmulationResult,
        boc: str,
        vm_log: str = "",
        parent: Transaction | None = None,
        head: TxHead | None = None,
    ) -> None:
        self._source = source
        self.boc = boc
        self.vm_log = vm_log
        self.parent = parent
        self.children: list[Transaction] = []
        if head is None:
            s = source.summary if isinstance(source, EmulationResult) else source
            head = TxHead(s.account, s.lt, s.now, s.orig_status, s.end_status, s.out_msgs)
        self.head = head

    @cached_property
    def summary(self) -> TxSummary:
        src = self._source
        return src.summary if isinstance(src, EmulationResult) else src

    # -- the fields people match on --------------------------------------------------
    @property
    def address(self) -> str:
        return self.head.account

    @property
    def src(self) -> str | None:
        m = self.summary.in_msg
        return m.src if m else None

    @property
    def dst(self) -> str:
        return self.head.account

    @property
    def op(self) -> int | None:
        m = self.summary.in_msg
        return m.op if m else None

    @property
    def value(self) -> int:
        m = self.summary.in_msg
        return m.value if m else 0

    @property
    def value_out(self) -> int:
        return sum(m.value for m in self.head.out_msgs if m.kind == "internal")

    @property
    def exit_code(self) -> int | None:
        return self.summary.exit_code

    @property
    def action_code(self) -> int | None:
        return self.summary.action_result_code

    @property
    def gas_used(self) -> int:
        return self.summary.gas_used

    @property
    def total_fees(self) -> int:
        return self.summary.total_fees

    @property
    def fees(self) -> int:
        return self.summary.total_fees

    @property
    def lt(self) -> int:
        return self.head.lt

    @property
    def now(self) -> int:
        return self.head.now

    @property
    def bounced(self) -> bool:
        m = self.summary.in_msg
        return bool(m and m.bounced)

    @property
    def external(self) -> bool:
        m = self.summary.in_msg
        return bool(m and m.kind == "external-in")

    @property
    def deployed(self) -> bool:
        return self.head.orig_status != _ACTIVE and self.head.end_status == _ACTIVE

    @property
    def aborted(self) -> bool:
        return self.summary.aborted

    @property
    def success(self) -> bool:
        """Compute and action phases both succeeded (what toHaveTransaction calls success)."""
        s = self.summary
        return s.compute_success and not s.aborted and s.action_success is not False

    @property
    def out_messages(self) -> tuple[MessageSummary, ...]:
        return self.head.out_msgs

    @property
    def in_message(self) -> MessageSummary | None:
        return self.summary.in_msg

    @cached_property
    def cell(self) -> Cell:
        return Cell.one_from_boc(base64.b64decode(self.boc))

    @cached_property
    def tlb(self) -> TlbTransaction:
        """The full TL-B decode (pytoniq-core), computed on first use only."""
        return TlbTransaction.deserialize(self.cell.begin_parse())

    @property
    def hash(self) -> bytes:
        return self.cell.hash

    def describe(self) -> str:
        op = f"0x{self.op:08x}" if self.op is not None else "-"
        status = "ok" if self.success else f"FAIL exit={self.exit_code} action={self.action_code}"
        src = _short(self.src)
        return (
            f"{src} -> {_short(self.dst)} op={op} value={self.value} "
            f"{'(bounced) ' if self.bounced else ''}{status} gas={self.gas_used} fees={self.total_fees}"
        )

    def __repr__(self) -> str:
        return f"Transaction({self.describe()})"


def _short(addr: str | None) -> str:
    if addr is None:
        return "ext"
    if addr.startswith("ext:"):
        return addr
    wc, h = addr.split(":")
    return f"{wc}:{h[:6]}…{h[-4:]}"


@dataclass(frozen=True)
class Event:
    """A typed thing that happened in a trace (account created/destroyed, message sent)."""

    kind: str  # "account_created" | "account_destroyed" | "message_sent"
    address: str
    detail: dict[str, Any] = field(default_factory=dict)


@dataclass
class SendResult:
    transactions: list[Transaction]
    events: list[Event]
    externals: list[MessageSummary]

    def tree(self) -> str:
        """The trace as an indented tree, for error messages and debugging."""
        lines: list[str] = []

        def walk(tx: Transaction, depth: int) -> None:
            lines.append("  " * depth + tx.describe())
            for child in tx.children:
                walk(child, depth + 1)

        for tx in self.transactions:
            if tx.parent is None:
                walk(tx, 0)
        return "\n".join(lines)

    def find(self, **criteria: Any) -> Transaction:
        return find_tx(self, **criteria)

    def gas(self, *, skip_first: bool = True) -> int:
        """Compute gas of the operation: summed over its transactions except the sender wallet's."""
        txs = self.transactions[1:] if skip_first else self.transactions
        return sum(t.gas_used for t in txs)

    def fees(self, *, skip_first: bool = True) -> int:
        txs = self.transactions[1:] if skip_first else self.transactions
        return sum(t.total_fees for t in txs)


class TransactionNotFound(AssertionError):
    pass


_UNSET: Any = object()


def _matches(tx: Transaction, c: dict[str, Any]) -> bool:
    for key, want in c.items():
        if key in ("from_", "src"):
            got: Any = tx.src
            want = raw(want) if want is not None else None
        elif key in ("to", "dst"):
            got, want = tx.dst, raw(want)
        else:
            got = getattr(tx, key)
        if callable(want) and not isinstance(want, int | str | bool):
            if not want(got):
                return False
        elif got != want:
            return False
    return True


def find_tx(result: SendResult, **criteria: Any) -> Transaction:
    """The first transaction matching every criterion (from_, to, op, success, exit_code, ...).

    A criterion may be a value or a predicate. When nothing matches, the error shows the
    whole transaction tree so a failing test explains itself.
    """
    criteria = {k: v for k, v in criteria.items() if v is not _UNSET}
    for tx in result.transactions:
        if _matches(tx, criteria):
            return tx
    shown = ", ".join(f"{k}={v!r}" for k, v in criteria.items())
    raise TransactionNotFound(f"no transaction with {shown}; the trace was:\n{result.tree()}")


def fee_table(result: SendResult, names: dict[str, str] | None = None) -> str:
    """A readable table of a trace, like @ton/sandbox's printTransactionFees."""
    names = {raw(k) or k: v for k, v in (names or {}).items()}
    header = ("#", "from", "to", "op", "value in", "value out", "exit", "action", "gas", "fees")
    rows = [header]
    for i, tx in enumerate(result.transactions):
        rows.append(
            (
                str(i),
                names.get(tx.src or "", _short(tx.src)),
                names.get(tx.dst, _short(tx.dst)),
                f"0x{tx.op:08x}" if tx.op is not None else "-",
                _ton(tx.value),
                _ton(tx.value_out),
                "-" if tx.exit_code is None else str(tx.exit_code),
                "-" if tx.action_code is None else str(tx.action_code),
                str(tx.gas_used),
                _ton(tx.total_fees),
            )
        )
    widths = [max(len(r[i]) for r in rows) for i in range(len(header))]
    out = []
    for n, r in enumerate(rows):
        out.append(
            "  ".join(
                c.rjust(w) if n and i >= 4 else c.ljust(w) for i, (c, w) in enumerate(zip(r, widths, strict=True))
            )
        )
        if n == 0:
            out.append("  ".join("-" * w for w in widths))
    return "\n".join(out)


def _ton(nano: int) -> str:
    return f"{nano / 1e9:.9f}".rstrip("0").rstrip(".") if nano else "0"

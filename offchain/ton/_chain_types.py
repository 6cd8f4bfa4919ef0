"""Backend-neutral chain records: a message and a transaction, decoded from the transaction BOC.

Every backend (sandbox, localnet, Toncenter) can hand out the transaction BOC, so one
decoder serves all of them: the watcher and the scripts never depend on a backend's JSON.
Addresses are raw `wc:hex` strings, like everywhere inside the sandbox.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass, field
from functools import lru_cache

from pytoniq_core import Cell, Slice, StateInit
from pytoniq_core.boc.hashmap import HashMap
from pytoniq_core.tlb.transaction import MessageAny
from pytoniq_core.tlb.transaction import Transaction as TlbTransaction

from offchain.ton.transaction import raw

__all__ = ["ChainMessage", "ChainTx", "decode_transaction"]


@dataclass(frozen=True)
class ChainMessage:
    """One message of a transaction (`kind` is internal, external-in or external-out)."""

    kind: str
    hash: bytes  # hash of the message cell exactly as it sits in the transaction
    src: str | None
    dest: str | None
    value: int
    bounce: bool
    bounced: bool
    fwd_fee: int
    created_lt: int
    created_at: int
    body: Cell
    init: StateInit | None
    cell: Cell = field(repr=False, compare=False)

    @property
    def op(self) -> int | None:
        """First 32 bits of the body (after the 0xFFFFFFFF prefix of a bounced message)."""
        s = self.body_slice()
        return s.load_uint(32) if s.remaining_bits >= 32 else None

    @property
    def query_id(self) -> int | None:
        s = self.body_slice()
        if s.remaining_bits < 96:
            return None
        s.skip_bits(32)
        return s.load_uint(64)

    def body_slice(self) -> Slice:
        """The body as a slice, past the bounce prefix when the message bounced."""
        s = self.body.begin_parse()
        if self.bounced and s.remaining_bits >= 32:
            s.skip_bits(32)
        return s

    @property
    def boc(self) -> str:
        return base64.b64encode(self.cell.to_boc()).decode()


@dataclass(frozen=True)
class ChainTx:
    """One transaction, with the fields agents act on; `boc` keeps the whole record."""

    address: str
    lt: int
    hash: bytes
    prev_lt: int
    prev_hash: bytes
    utime: int
    total_fees: int
    storage_fees: int
    in_msg: ChainMessage | None
    out_msgs: tuple[ChainMessage, ...]
    compute_skipped: bool
    exit_code: int | None
    action_code: int | None
    aborted: bool
    orig_status: str  # "uninit" | "frozen" | "active" | "nonexist"
    end_status: str
    boc: str = field(repr=False)

    @property
    def deployed(self) -> bool:
        """The account became active in this transaction."""
        return self.orig_status != "active" and self.end_status == "active"

    @property
    def success(self) -> bool:
        """Compute and action phases both succeeded (the sandbox's definition)."""
        return (
            not self.compute_skipped
            and self.exit_code in (0, 1)
            and not self.aborted
            and self.action_code in (None, 0)
        )

    @property
    def op(self) -> int | None:
        return self.in_msg.op if self.in_msg else None

    @property
    def src(self) -> str | None:
        return self.in_msg.src if self.in_msg else None

    @property
    def value(self) -> int:
        return self.in_msg.value if self.in_msg else 0

    @property
    def cursor(self) -> tuple[int, bytes]:
        """(lt, hash): the position of this transaction in its account's chain."""
        return self.lt, self.hash


def _message(cell: Cell) -> ChainMessage:
    m = MessageAny.deserialize(cell.begin_parse())
    info = m.info
    kind = {"int_msg_info": "internal", "ext_in_msg_info": "external-in", "ext_out_msg_info": "external-out"}
    tag = type(info).__name__
    if tag == "InternalMsgInfo":
        k = "internal"
    elif tag == "ExternalMsgInfo":
        k = "external-in"
    else:
        k = kind.get(getattr(info, "type_", ""), "external-out")
    body = m.body if isinstance(m.body, Cell) else (m.body.to_cell() if m.body is not None else Cell.empty())
    src = getattr(info, "src", None)
    dest = getattr(info, "dest", None)
    return ChainMessage(
        kind=k,
        hash=cell.hash,
        src=_addr(src),
        dest=_addr(dest),
        value=int(getattr(info, "value_coins", 0) or 0),
        bounce=bool(getattr(info, "bounce", False)),
        bounced=bool(getattr(info, "bounced", False)),
        fwd_fee=int(getattr(info, "fwd_fee", 0) or 0),
        created_lt=int(getattr(info, "created_lt", 0) or 0),
        created_at=int(getattr(info, "created_at", 0) or 0),
        body=body,
        init=m.init,
        cell=cell,
    )


def _addr(a: object) -> str | None:
    if a is None:
        return None
    from pytoniq_core import Address

    if isinstance(a, Address):
        return raw(a)
    ext = getattr(a, "external_address", None)  # ExternalAddress
    if ext is not None:
        return f"ext:{int(ext):x}" if isinstance(ext, int) else f"ext:{ext}"
    return None


def _status(st: object) -> str:
    t = str(getattr(st, "type_", st))
    return "uninit" if t == "uninitialized" else t


@lru_cache(maxsize=8192)
def decode_transaction(boc: str) -> ChainTx:
    """Decode a base64 Transaction BOC (cached: the same BOC always decodes the same).

    Raises:
        ValueError: the BOC is not a transaction.
    """
    try:
        cell = Cell.one_from_boc(base64.b64decode(boc))
        tx = TlbTransaction.deserialize(cell.begin_parse())
    except Exception as err:
        raise ValueError(f"not a transaction BOC: {err}") from err
    msgs = cell.refs[0].begin_parse()
    in_msg = _message(msgs.load_ref()) if msgs.load_bit() else None
    out: list[ChainMessage] = []
    if msgs.load_bit():
        hm = HashMap.parse(msgs.load_ref().begin_parse(), 15)
        for _k, v in sorted(hm.items()):
            out.append(_message(v.load_ref()))
    d = tx.description
    compute = getattr(d, "compute_ph", None)
    skipped = compute is None or getattr(compute, "type_", "") == "skipped"
    exit_code = None if skipped else int(compute.exit_code)
    action = getattr(d, "action", None)
    action_code = int(action.result_code) if action is not None else None
    storage = getattr(d, "storage_ph", None)
    return ChainTx(
        address=f"0:{tx.account_addr_hex}" if isinstance(tx.account_addr_hex, str) else raw(tx.account_addr) or "",
        lt=tx.lt,
        hash=cell.hash,
        prev_lt=tx.prev_trans_lt,
        prev_hash=tx.prev_trans_hash,
        utime=tx.now,
        total_fees=tx.total_fees.grams,
        storage_fees=int(storage.storage_fees_collected) if storage is not None else 0,
        in_msg=in_msg,
        out_msgs=tuple(out),
        compute_skipped=skipped,
        exit_code=exit_code,
        action_code=action_code,
        aborted=bool(getattr(d, "aborted", False)),
        orig_status=_status(tx.orig_status),
        end_status=_status(tx.end_status),
        boc=boc,
    )

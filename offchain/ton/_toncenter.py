"""Toncenter v2 JSON shapes, both ways: the localnet renders them, the network client reads them.

Shapes follow toncenter/ton-http-api (`pyTON/api/api_v2`): every response is
`{"ok": true, "result": ...}` or `{"ok": false, "error": "...", "code": N}`; numbers that
may exceed 2**53 (balances, lt) are strings; hashes are base64; get-method stacks are
`[tag, payload]` pairs (`["num", "0x2a"]`, `["cell", {"bytes": b64}]`, `["tuple", {...}]`).
"""

from __future__ import annotations

import base64
import binascii
from typing import Any

from pytoniq_core import Address, Builder, Cell, Slice

from offchain.ton._chain_types import ChainMessage, ChainTx
from offchain.ton.executor import StackValue

__all__ = [
    "ToncenterInputError",
    "b64",
    "decode_hash",
    "encode_stack_request",
    "friendly",
    "parse_address",
    "parse_stack_request",
    "parse_stack_result",
    "render_message",
    "render_stack",
    "render_transaction",
    "tx_id",
]

ZERO_HASH_B64 = base64.b64encode(b"\0" * 32).decode()


class ToncenterInputError(ValueError):
    """Bad input from a client: becomes `{"ok": false, "error": message, "code": code}`."""

    def __init__(self, message: str, code: int = 400) -> None:
        self.code = code
        super().__init__(message)


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def parse_address(text: object) -> Address:
    """An address in any form (raw or user-friendly); 416 "Incorrect address" like Toncenter."""
    if not isinstance(text, str) or not text:
        raise ToncenterInputError("Incorrect address", 416)
    try:
        return Address(text)
    except Exception as err:
        raise ToncenterInputError("Incorrect address", 416) from err


def friendly(raw_addr: str | None, *, testnet: bool = False) -> str:
    """User-friendly bounceable form (what Toncenter prints), "" for none/external."""
    if not raw_addr or raw_addr.startswith("ext:"):
        return ""
    return Address(raw_addr).to_str(
        is_user_friendly=True, is_bounceable=True, is_url_safe=True, is_test_only=testnet
    )


def decode_hash(text: str) -> bytes:
    """A 32-byte hash given in hex or base64 (Toncenter accepts both)."""
    t = text.strip()
    if len(t) == 64:
        try:
            return bytes.fromhex(t)
        except ValueError:
            pass
    try:
        data = base64.b64decode(t.replace("-", "+").replace("_", "/"), validate=True)
    except (binascii.Error, ValueError) as err:
        raise ToncenterInputError(f"Incorrect hash: {text!r}", 416) from err
    if len(data) != 32:
        raise ToncenterInputError(f"Incorrect hash: {text!r}", 416)
    return data


def tx_id(lt: int, h: bytes) -> dict[str, Any]:
    return {"@type": "internal.transactionId", "lt": str(lt), "hash": b64(h)}


# -- transactions -------------------------------------------------------------------
def render_message(m: ChainMessage | None, *, testnet: bool = False) -> dict[str, Any]:
    if m is None:
        return {
            "@type": "raw.message", "hash": ZERO_HASH_B64, "source": "", "destination": "",
            "value": "0", "extra_currencies": [], "fwd_fee": "0", "ihr_fee": "0", "created_lt": "0",
            "body_hash": ZERO_HASH_B64,
            "msg_data": {"@type": "msg.dataRaw", "body": b64(Cell.empty().to_boc()), "init_state": ""},
            "message": "",
        }
    init = b64(m.init.serialize().to_boc()) if m.init is not None else ""
    return {
        "@type": "raw.message",
        "hash": b64(m.hash),
        "source": friendly(m.src, testnet=testnet),
        "destination": friendly(m.dest, testnet=testnet),
        "value": str(m.value),
        "extra_currencies": [],
        "fwd_fee": str(m.fwd_fee),
        "ihr_fee": "0",
        "created_lt": str(m.created_lt),
        "body_hash": b64(m.body.hash),
        "msg_data": {"@type": "msg.dataRaw", "body": b64(m.body.to_boc()), "init_state": init},
        "message": _comment(m),
    }


def _comment(m: ChainMessage) -> str:
    s = m.body.begin_parse()
    if m.bounced or s.remaining_bits < 32 or s.load_uint(32) != 0:
        return ""
    try:
        return s.load_snake_string()
    except Exception:
        return ""


def render_transaction(tx: ChainTx, *, testnet: bool = False) -> dict[str, Any]:
    return {
        "@type": "raw.transaction",
        "address": {"@type": "accountAddress", "account_address": friendly(tx.address, testnet=testnet)},
        "utime": tx.utime,
        "data": tx.boc,
        "transaction_id": tx_id(tx.lt, tx.hash),
        "fee": str(tx.total_fees),
        "storage_fee": str(tx.storage_fees),
        "other_fee": str(tx.total_fees - tx.storage_fees),
        "in_msg": render_message(tx.in_msg, testnet=testnet),
        "out_msgs": [render_message(m, testnet=testnet) for m in tx.out_msgs],
    }


# -- get-method stacks ----------------------------------------------------------------
def _cell_of(payload: Any) -> Cell:
    if isinstance(payload, dict):
        payload = payload.get("bytes")
    if not isinstance(payload, str):
        raise ToncenterInputError("stack entry: expected a base64 BOC")
    try:
        return Cell.one_from_boc(base64.b64decode(payload))
    except Exception as err:
        raise ToncenterInputError(f"stack entry: malformed BOC ({err})") from err


def _int_of(payload: Any) -> int:
    if isinstance(payload, bool):
        raise ToncenterInputError("stack entry: expected an integer")
    if isinstance(payload, int):
        return payload
    if isinstance(payload, dict):  # tvm.numberDecimal
        payload = payload.get("number")
    if isinstance(payload, str):
        try:
            return int(payload, 0) if payload.lstrip("-").lower().startswith("0x") else int(payload)
        except ValueError as err:
            raise ToncenterInputError(f"stack entry: bad integer {payload!r}") from err
    raise ToncenterInputError("stack entry: expected an integer")


def _typed_entry(e: dict[str, Any]) -> StackValue:
    t = e.get("@type", "")
    if t == "tvm.stackEntryNumber":
        return _int_of(e.get("number"))
    if t == "tvm.stackEntryCell":
        return _cell_of(e.get("cell"))
    if t == "tvm.stackEntrySlice":
        return _cell_of(e.get("slice")).begin_parse()
    if t == "tvm.stackEntryBuilder":
        return Builder().store_cell(_cell_of(e.get("builder")))
    if t in ("tvm.stackEntryTuple", "tvm.stackEntryList"):
        inner = e.get("tuple") or e.get("list") or {}
        return [_typed_entry(x) for x in inner.get("elements", [])]
    if t == "tvm.stackEntryNull":
        return None
    raise ToncenterInputError(f"stack entry: unknown type {t!r}")


def _pair_entry(item: Any) -> StackValue:
    if isinstance(item, dict):
        return _typed_entry(item)
    if not isinstance(item, list | tuple) or not item:
        raise ToncenterInputError(f"stack entry must be [type, value], got {item!r}")
    tag = item[0]
    payload = item[1] if len(item) > 1 else None
    if tag in ("num", "number", "int"):
        return _int_of(payload)
    if tag in ("cell", "tvm.Cell"):
        return _cell_of(payload)
    if tag in ("slice", "tvm.Slice"):
        return _cell_of(payload).begin_parse()
    if tag in ("builder", "tvm.Builder"):
        return Builder().store_cell(_cell_of(payload))
    if tag == "null":
        return None
    if tag in ("tuple", "list", "tvm.Tuple"):
        elements = payload.get("elements", []) if isinstance(payload, dict) else payload or []
        return [_pair_entry(x) for x in elements]
    raise ToncenterInputError(f"stack entry: unknown type {tag!r}")


def parse_stack_request(stack: Any) -> list[StackValue]:
    """A runGetMethod request stack (pairs or `@type` objects) to Python values."""
    if stack is None:
        return []
    if not isinstance(stack, list):
        raise ToncenterInputError("stack must be a list")
    return [_pair_entry(x) for x in stack]


def _typed(v: StackValue) -> dict[str, Any]:
    if v is None:
        return {"@type": "tvm.stackEntryNull"}
    if isinstance(v, int):
        return {"@type": "tvm.stackEntryNumber", "number": {"@type": "tvm.numberDecimal", "number": str(v)}}
    if isinstance(v, Cell):
        return {"@type": "tvm.stackEntryCell", "cell": {"@type": "tvm.cell", "bytes": b64(v.to_boc())}}
    if isinstance(v, Slice):
        return {"@type": "tvm.stackEntrySlice", "slice": {"@type": "tvm.slice", "bytes": b64(v.to_cell().to_boc())}}
    if isinstance(v, Builder):
        boc = b64(v.end_cell().to_boc())
        return {"@type": "tvm.stackEntryBuilder", "builder": {"@type": "tvm.builder", "bytes": boc}}
    if isinstance(v, list | tuple):
        return {"@type": "tvm.stackEntryTuple", "tuple": {"@type": "tvm.tuple", "elements": [_typed(x) for x in v]}}
    raise TypeError(f"cannot render {type(v).__name__} on a stack")


def render_stack(values: list[StackValue]) -> list[list[Any]]:
    """Python values to Toncenter's result stack (`["num", "0x2a"]`, `["cell", {...}]`, ...)."""
    out: list[list[Any]] = []
    for v in values:
        if v is None:
            out.append(["null", None])
        elif isinstance(v, int):
            out.append(["num", hex(v)])
        elif isinstance(v, Cell):
            out.append(["cell", {"bytes": b64(v.to_boc()), "object": {}}])
        elif isinstance(v, Slice):
            out.append(["slice", {"bytes": b64(v.to_cell().to_boc()), "object": {}}])
        elif isinstance(v, Builder):
            out.append(["builder", {"bytes": b64(v.end_cell().to_boc()), "object": {}}])
        elif isinstance(v, list | tuple):
            out.append(["tuple", {"@type": "tvm.tuple", "elements": [_typed(x) for x in v]}])
        else:
            raise TypeError(f"cannot render {type(v).__name__} on a stack")
    return out


def parse_stack_result(stack: list[Any]) -> list[StackValue]:
    """Toncenter's result stack back to Python values (client side)."""
    return [_pair_entry(x) for x in stack]


def encode_stack_request(values: list[StackValue]) -> list[list[Any]]:
    """Python values to a runGetMethod request stack (client side)."""
    out: list[list[Any]] = []
    for v in values:
        if isinstance(v, bool) or (not isinstance(v, int | Cell | Slice | Builder | list | tuple) and v is not None):
            raise TypeError(f"cannot send {type(v).__name__} as a get-method argument")
        if v is None:
            out.append(["null", None])
        elif isinstance(v, int):
            out.append(["num", hex(v)])
        elif isinstance(v, Cell):
            out.append(["tvm.Cell", b64(v.to_boc())])
        elif isinstance(v, Slice):
            out.append(["tvm.Slice", b64(v.to_cell().to_boc())])
        elif isinstance(v, Builder):
            out.append(["tvm.Cell", b64(v.end_cell().to_boc())])
        else:
            out.append(["tuple", {"@type": "tvm.tuple", "elements": [_typed(x) for x in v]}])
    return out

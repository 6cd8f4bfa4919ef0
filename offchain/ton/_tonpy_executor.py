"""`Executor` on tonpy's native TON emulator (the TVM 12 build shipped as tonpy-dev).

The only module that imports tonpy. It also summarizes each transaction with tonpy's
native cell slices: the sandbox needs out-messages, exit codes, gas and fees for every
transaction, and decoding them through pytoniq-core's pure-Python BOC parser would cost
more than the emulation itself. Full TL-B decoding stays available, lazily, above.
"""

from __future__ import annotations

import base64
import time
from pathlib import Path

from pytoniq_core import Builder, Cell, Slice
from tonpy.libs.python_ton import (
    PyCell,
    PyEmulator,
    PyStackEntry,
    PyTVM,
    load_as_cell_slice,
    make_tuple,
    parse_string_to_cell,
)
from tonpy.libs.python_ton import PyStack as _PyStack

from offchain.errors import EmulationError
from offchain.ton.executor import (
    EmulationResult,
    GetMethodArgs,
    GetMethodResult,
    MessageSummary,
    StackValue,
    TransactionArgs,
    TxHead,
    TxSummary,
)

__all__ = ["TonpyExecutor", "load_config_boc"]

_CONFIG_PATH = Path(__file__).with_name("data") / "config.boc"
_C7_MAGIC = 0x076EF1EA


def load_config_boc(path: Path = _CONFIG_PATH) -> str:
    """The blockchain config (global version 12) as base64 BOC: @ton/sandbox's default."""
    return base64.b64encode(path.read_bytes()).decode()


class _Bits:
    """Reads one cell: its bits fetched once as a '0101…' string, refs on demand.

    One native call per cell instead of one per field: the per-call overhead of the
    binding, not the parsing, is what costs time here.
    """

    __slots__ = ("bits", "cs", "pos", "ref_i")

    def __init__(self, cell: PyCell) -> None:
        self.cs = load_as_cell_slice(cell, True)
        self.bits = self.cs.to_bitstring()
        self.pos = 0
        self.ref_i = 0

    def u(self, n: int) -> int:
        if n == 0:
            return 0
        p = self.pos
        self.pos = p + n
        return int(self.bits[p : p + n], 2)

    def i(self, n: int) -> int:
        v = self.u(n)
        return v - (1 << n) if v >> (n - 1) else v

    def bit(self) -> bool:
        p = self.pos
        self.pos = p + 1
        return self.bits[p] == "1"

    def skip(self, n: int) -> None:
        self.pos += n

    def left(self) -> int:
        return len(self.bits) - self.pos

    def ref(self) -> PyCell:
        c = self.cs.prefetch_ref(self.ref_i)
        self.ref_i += 1
        return c

    def var(self, len_bits: int) -> int:
        return self.u(self.u(len_bits) * 8)

    def grams(self) -> int:
        return self.u(self.u(4) * 8)

    def maybe_grams(self) -> int:
        return self.grams() if self.bit() else 0

    def currency(self) -> int:
        grams = self.grams()
        if self.bit():  # extra currencies: HashmapE 32 as a ref; not needed here
            self.ref_i += 1
        return grams

    def skip_status_change(self) -> None:
        if self.bit():
            self.pos += 1

    def addr(self) -> str | None:
        tag = self.u(2)
        if tag == 0b00:
            return None
        if tag == 0b01:  # addr_extern$01 len:(## 9) external_address:(bits len)
            n = self.u(9)
            return f"ext:{self.u(n):x}"
        if self.bit():  # anycast: depth:(#<= 30) rewrite_pfx:(bits depth)
            self.pos += self.u(5)
        if tag == 0b10:  # addr_std
            wc = self.i(8)
            return f"{wc}:{self.u(256):064x}"
        n = self.u(9)  # addr_var
        wc = self.i(32)
        return f"{wc}:{self.u(n):0{(n + 3) // 4}x}"

    def skip_state_init(self) -> None:
        if self.bit():  # fixed_prefix_length
            self.pos += 5
        if self.bit():  # special
            self.pos += 2
        for _ in range(3):  # code, data, library
            if self.bit():
                self.ref_i += 1


def _message(cell: PyCell, boc: str | None = None) -> MessageSummary:
    """Summary of a message; `boc` is serialized only when given as None (out-messages)."""
    r = _Bits(cell)
    if boc is None:
        boc = cell.to_boc()
    value = fwd_fee = created_lt = created_at = 0
    bounce = bounced = False
    head = r.u(2)
    if head < 2:  # int_msg_info$0 ihr_disabled:Bool
        kind = "internal"
        bounce = r.bit()
        bounced = r.bit()
        src = r.addr()
        dest = r.addr()
        value = r.currency()
        r.grams()  # ihr_fee / extra_flags
        fwd_fee = r.grams()
        created_lt = r.u(64)
        created_at = r.u(32)
    elif head == 0b10:
        kind = "external-in"
        src = r.addr()
        dest = r.addr()
        r.grams()  # import_fee
    else:
        kind = "external-out"
        src = r.addr()
        dest = r.addr()
        created_lt = r.u(64)
        created_at = r.u(32)
    if r.bit():  # init: Maybe (Either StateInit ^StateInit)
        if r.bit():
            r.ref_i += 1
        else:
            r.skip_state_init()
    body = _Bits(r.ref()) if r.bit() else r
    if bounced and body.left() >= 64:
        body.skip(32)  # 0xFFFFFFFF bounce prefix
    op = body.u(32) if body.left() >= 32 else None
    return MessageSummary(
        kind=kind,
        src=src,
        dest=dest,
        value=value,
        bounce=bounce,
        bounced=bounced,
        fwd_fee=fwd_fee,
        created_lt=created_lt,
        created_at=created_at,
        op=op,
        boc=boc,
    )


def _dict_values(cell: PyCell, key_bits: int, out: list[PyCell]) -> None:
    """Collect the ^values of a `Hashmap key_bits ^X` in key order."""
    r = _Bits(cell)
    if not r.bit():  # hml_short$0 len:(Unary ~n) s:(n * Bit)
        n = 0
        while r.bit():
            n += 1
        r.skip(n)
    elif not r.bit():  # hml_long$10 n:(#<= m) s:(n * Bit)
        n = r.u(key_bits.bit_length())
        r.skip(n)
    else:  # hml_same$11 v:Bit n:(#<= m)
        r.skip(1)
        n = r.u(key_bits.bit_length())
    rest = key_bits - n
    if rest == 0:
        out.append(r.ref())
        return
    _dict_values(r.ref(), rest - 1, out)
    _dict_values(r.ref(), rest - 1, out)


def _read_header(tx: PyCell) -> tuple[_Bits, TxHead, _Bits]:
    """Reads the Transaction's root cell and its messages cell: (root reader, head, messages reader).

    The messages reader is left before the `in_msg` bit; the root reader before total_fees.
    """
    r = _Bits(tx)
    if r.u(4) != 0b0111:
        raise EmulationError("emulator returned something that is not a Transaction")
    account = f"0:{r.u(256):064x}"
    lt = r.u(64)
    r.skip(256 + 64)  # prev_trans_hash, prev_trans_lt
    now = r.u(32)
    r.skip(15)  # outmsg_cnt
    orig_status = r.u(2)
    end_status = r.u(2)
    msgs = _Bits(r.ref())
    has_in = msgs.bit()
    in_ref = msgs.ref_i
    if has_in:
        msgs.ref_i += 1
    out_cells: list[PyCell] = []
    if msgs.bit():
        _dict_values(msgs.ref(), 15, out_cells)
    msgs.ref_i = in_ref if has_in else -1  # where the inbound message is, for the full decode
    head = TxHead(account, lt, now, orig_status, end_status, tuple(_message(c) for c in out_cells))
    return r, head, msgs


def transaction_head(tx: PyCell) -> TxHead:
    """The eager part: account, lt, statuses and the out-messages (the sandbox's queue needs them)."""
    return _read_header(tx)[1]


def summarize_transaction(tx: PyCell, in_boc: str = "") -> TxSummary:
    """Native summary of a Transaction; `in_boc` is the inbound message's BOC, known to the caller."""
    r, head, msgs = _read_header(tx)
    in_msg = _message(msgs.cs.prefetch_ref(msgs.ref_i), in_boc) if msgs.ref_i >= 0 else None
    total_fees = r.currency()
    r.ref_i += 1  # state_update
    d = _Bits(r.ref())

    tag = d.u(4)
    storage_fees = 0
    compute_skipped, compute_success, exit_code = True, False, None
    gas_used = gas_fees = vm_steps = 0
    action_success = action_result = None
    total_fwd = total_action = 0
    aborted = destroyed = False
    if tag in (0b0000, 0b0010, 0b0011):  # trans_ord$0000 / trans_tick_tock$001 is_tock:Bool
        if tag == 0b0000:
            d.skip(1)  # credit_first
            if d.bit():  # storage_ph
                storage_fees = d.grams()
                d.maybe_grams()
                d.skip_status_change()
            if d.bit():  # credit_ph
                d.maybe_grams()
                d.currency()
        else:
            storage_fees = d.grams()
            d.maybe_grams()
            d.skip_status_change()
        if d.bit():  # tr_phase_compute_vm$1
            compute_skipped = False
            compute_success = d.bit()
            d.skip(2)  # msg_state_used, account_activated
            gas_fees = d.grams()
            c = _Bits(d.ref())
            gas_used = c.var(3)
            c.var(3)  # gas_limit
            if c.bit():
                c.var(2)  # gas_credit
            c.skip(8)  # mode
            exit_code = c.i(32)
            if c.bit():
                c.skip(32)
            vm_steps = c.u(32)
        else:  # skipped: cskip_no_state$00 / bad_state$01 / no_gas$10 / suspended$110
            if d.u(2) == 0b11:
                d.skip(1)
        if d.bit():  # action phase
            a = _Bits(d.ref())
            action_success = a.bit()
            a.skip(2)  # valid, no_funds
            a.skip_status_change()
            total_fwd = a.maybe_grams()
            total_action = a.maybe_grams()
            action_result = a.i(32)
        aborted = d.bit()
        if tag == 0b0000 and d.bit():  # bounce phase
            if d.bit():  # ok$1 msg_size msg_fees fwd_fees
                d.var(3)
                d.var(3)
                d.grams()
                d.grams()
            elif d.bit():  # nofunds$01 msg_size req_fwd_fees
                d.var(3)
                d.var(3)
                d.grams()
        destroyed = d.bit()

    return TxSummary(
        account=head.account,
        lt=head.lt,
        now=head.now,
        orig_status=head.orig_status,
        end_status=head.end_status,
        total_fees=total_fees,
        in_msg=in_msg,
        out_msgs=head.out_msgs,
        compute_skipped=compute_skipped,
        compute_success=compute_success,
        exit_code=exit_code,
        gas_used=gas_used,
        gas_fees=gas_fees,
        vm_steps=vm_steps,
        action_success=action_success,
        action_result_code=action_result,
        total_fwd_fees=total_fwd,
        total_action_fees=total_action,
        aborted=aborted,
        destroyed=destroyed,
        storage_fees=storage_fees,
    )


def _last_exit(vm_log: str) -> int | None:
    """The exit code a VM log ends with ('... exit code N' / 'unhandled exception N')."""
    import re

    found = re.findall(r"(?:exit code|exception)\D{0,3}(-?\d+)", vm_log)
    return int(found[-1]) if found else None


def _parse_boc(boc: str) -> PyCell:
    try:
        return parse_string_to_cell(boc)
    except Exception as err:  # tonpy raises bare RuntimeError on malformed BOCs
        raise ValueError(f"malformed BOC: {err}") from err


def _to_entry(value: StackValue) -> PyStackEntry:
    if value is None:
        return PyStackEntry()
    if isinstance(value, bool):
        return PyStackEntry(big_int=str(int(value) * -1))
    if isinstance(value, int):
        return PyStackEntry(big_int=str(value))
    if isinstance(value, Cell):
        return PyStackEntry(cell=_parse_boc(base64.b64encode(value.to_boc()).decode()))
    if isinstance(value, Slice):
        cell = _parse_boc(base64.b64encode(value.to_cell().to_boc()).decode())
        return PyStackEntry(cell_slice=load_as_cell_slice(cell, True))
    if isinstance(value, Builder):
        cell = _parse_boc(base64.b64encode(value.end_cell().to_boc()).decode())
        return PyStackEntry(cell_builder=load_as_cell_slice(cell, True))
    if isinstance(value, list | tuple):
        return make_tuple([_to_entry(v) for v in value])
    raise TypeError(f"cannot put {type(value).__name__} on a TVM stack")


def _cell_from_native(pc: PyCell) -> Cell:
    return Cell.one_from_boc(base64.b64decode(pc.to_boc()))


def _from_entry(entry: PyStackEntry) -> StackValue:
    t = entry.type()
    if t == 0:
        return None
    if t == 1:
        return int(entry.as_int())
    if t == 2:
        return _cell_from_native(entry.as_cell())
    if t == 4:
        cs = entry.as_cell_slice()
        return Cell.one_from_boc(base64.b64decode(cs.to_boc())).begin_parse()
    if t == 3:
        b = entry.as_cell_builder()
        return Builder().store_cell(_cell_from_native(b.end_cell()) if hasattr(b, "end_cell") else b)
    if t == 6:
        return [_from_entry(e) for e in entry.as_tuple()]
    raise TypeError(f"unsupported TVM stack entry type {t}")


class TonpyExecutor:
    """Runs transactions and get-methods on tonpy's emulator with one parsed config."""

    def __init__(self, config_boc: str | None = None) -> None:
        self.config_boc = config_boc or load_config_boc()
        self._config = _parse_boc(self.config_boc)
        self._emulator = PyEmulator(self._config)
        self._debug = False
        self._ignore_chksig = False
        self._seed: bytes | None = None

    def _prepare(self, args: TransactionArgs) -> None:
        if args.debug != self._debug:
            self._emulator.set_debug_enabled(args.debug)
            # level 1: every executed instruction with the gas left after it
            self._emulator.set_vm_verbosity_level(1 if args.debug else 0)
            self._debug = args.debug
        if args.ignore_chksig != self._ignore_chksig:
            self._emulator.set_ignore_chksig(args.ignore_chksig)
            self._ignore_chksig = args.ignore_chksig
        if args.rand_seed != self._seed:
            self._emulator.set_rand_seed(args.rand_seed.hex().upper())
            self._seed = args.rand_seed

    def _result(self, ok: bool, started: float, args: TransactionArgs, in_boc: str = "") -> EmulationResult:
        vm_log = self._emulator.vm_log if args.debug else ""
        if not ok:
            raise EmulationError("emulator could not run the transaction", vm_log=vm_log)
        tx = self._emulator.transaction_cell
        return EmulationResult(
            transaction=tx.to_boc(),
            shard_account=self._emulator.account_cell.to_boc(),
            head=transaction_head(tx),
            decode=lambda: summarize_transaction(tx, in_boc),
            vm_log=vm_log,
            elapsed_ms=(time.perf_counter() - started) * 1000,
        )

    def run_transaction(self, shard_account: str, message: str, args: TransactionArgs) -> EmulationResult:
        self._prepare(args)
        started = time.perf_counter()
        account, msg = _parse_boc(shard_account), _parse_boc(message)
        try:
            ok = self._emulator.emulate_transaction(account, msg, str(args.now), str(args.lt), 1, False)
            if not ok:
                # Rerun with the VM log on, so the error can show why (an external
                # message that the contract did not accept is the usual case).
                self._emulator.set_debug_enabled(True)
                self._emulator.emulate_transaction(account, msg, str(args.now), str(args.lt), 1, False)
                log = self._emulator.vm_log
                self._emulator.set_debug_enabled(self._debug)
                raise EmulationError(
                    "message not accepted: no transaction was created", exit_code=_last_exit(log), vm_log=log
                )
        except (ValueError, EmulationError):
            raise
        except Exception as err:
            raise EmulationError(f"emulator failed: {err}") from err
        return self._result(ok, started, args, message)

    def run_tick_tock(self, shard_account: str, is_tock: bool, args: TransactionArgs) -> EmulationResult:
        self._prepare(args)
        started = time.perf_counter()
        ok = self._emulator.emulate_tick_tock_transaction(
            _parse_boc(shard_account), is_tock, str(args.now), str(args.lt), 1
        )
        return self._result(ok, started, args)

    def run_get_method(
        self,
        code: str,
        data: str,
        method: int,
        stack: list[StackValue],
        args: GetMethodArgs,
    ) -> GetMethodResult:
        code_cell = _parse_boc(code)
        tvm = PyTVM(5 if args.debug else 0, code_cell, _parse_boc(data), args.debug, True, False, False)
        wc, hex_hash = args.address.split(":")
        addr = Builder().store_address(f"{wc}:{hex_hash}").end_cell().begin_parse()
        c7 = [
            _C7_MAGIC,
            0,
            0,
            args.now,
            args.lt,
            args.lt,
            int.from_bytes(args.rand_seed, "big"),
            [args.balance, None],
            addr,
            None,  # config: filled below as a native cell
            code_cell,
            [0, None],
            0,
            None,
            None,
            0,
            0,
            0,
        ]
        entries = []
        for i, v in enumerate(c7):
            if i == 9:
                entries.append(PyStackEntry(cell=self._config))
            elif i == 10:
                entries.append(PyStackEntry(cell=code_cell))
            else:
                entries.append(_to_entry(v))
        tvm.set_c7(make_tuple(entries))
        st = _PyStack()
        for v in stack:
            st.push(_to_entry(v))
        st.push(PyStackEntry(big_int=str(method)))
        tvm.set_stack(st)
        tvm.set_gasLimit(str(args.gas_limit), str(args.gas_limit))
        out = tvm.run_vm()
        exit_code = tvm.exit_code
        if exit_code < 0:
            exit_code = ~exit_code
        depth = out.depth()
        values = [_from_entry(out.at(i)) for i in range(depth - 1, -1, -1)]
        return GetMethodResult(
            exit_code=exit_code,
            gas_used=int(tvm.gas_used),
            stack=values,
            vm_log="",
        )

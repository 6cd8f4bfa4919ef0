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
    PyCellSlice,
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
    TxSummary,
)

__all__ = ["TonpyExecutor", "load_config_boc"]

_CONFIG_PATH = Path(__file__).with_name("data") / "config.boc"
_C7_MAGIC = 0x076EF1EA


def load_config_boc(path: Path = _CONFIG_PATH) -> str:
    """The blockchain config (global version 12) as base64 BOC: @ton/sandbox's default."""
    return base64.b64encode(path.read_bytes()).decode()


def _u(cs: PyCellSlice, bits: int) -> int:
    return int(cs.load_uint(bits))


def _i(cs: PyCellSlice, bits: int) -> int:
    return int(cs.load_int(bits))


def _grams(cs: PyCellSlice) -> int:
    return int(cs.load_var_integer_str(16, False))


def _var(cs: PyCellSlice, n: int) -> int:
    return int(cs.load_var_integer_str(n, False))


def _currency(cs: PyCellSlice) -> int:
    grams = _grams(cs)
    if _u(cs, 1):  # extra currencies: HashmapE 32, a ref we do not need
        cs.fetch_ref()
    return grams


def _addr(cs: PyCellSlice) -> str | None:
    tag = int(cs.preload_uint(2))
    if tag == 0:
        cs.advance(2)
        return None
    if tag == 1:  # addr_extern$01 len:(## 9) external_address:(bits len)
        cs.advance(2)
        n = _u(cs, 9)
        bits = cs.load_uint(n) if n else "0"
        return f"ext:{int(bits):x}"
    if tag == 0b10 and int(cs.preload_uint(3)) == 0b100:  # addr_std, no anycast
        cs.advance(3)
        wc = _i(cs, 8)
        return f"{wc}:{_u(cs, 256):064x}"
    from pytoniq_core import Address  # anycast / addr_var: rare, take the slow path

    a = Address(cs.load_addr())
    return f"{a.wc}:{a.hash_part.hex()}"


def _status(cs: PyCellSlice) -> int:
    return _u(cs, 2)


def _maybe_grams(cs: PyCellSlice) -> int:
    return _grams(cs) if _u(cs, 1) else 0


def _skip_status_change(cs: PyCellSlice) -> None:
    if _u(cs, 1):
        cs.advance(1)


def _skip_state_init(cs: PyCellSlice) -> None:
    if _u(cs, 1):  # fixed_prefix_length
        cs.advance(5)
    if _u(cs, 1):  # special
        cs.advance(2)
    for _ in range(3):  # code, data, library
        if _u(cs, 1):
            cs.fetch_ref()


def _message(cell: PyCell) -> MessageSummary:
    cs = load_as_cell_slice(cell, True)
    boc = cell.to_boc()
    value = fwd_fee = created_lt = created_at = 0
    bounce = bounced = False
    if _u(cs, 1) == 0:
        kind = "internal"
        cs.advance(1)  # ihr_disabled
        bounce = bool(_u(cs, 1))
        bounced = bool(_u(cs, 1))
        src = _addr(cs)
        dest = _addr(cs)
        value = _currency(cs)
        _grams(cs)  # ihr_fee / extra_flags
        fwd_fee = _grams(cs)
        created_lt = _u(cs, 64)
        created_at = _u(cs, 32)
    elif _u(cs, 1) == 0:
        kind = "external-in"
        src = _addr(cs)
        dest = _addr(cs)
        _grams(cs)  # import_fee
    else:
        kind = "external-out"
        src = _addr(cs)
        dest = _addr(cs)
        created_lt = _u(cs, 64)
        created_at = _u(cs, 32)
    if _u(cs, 1):  # init: Maybe (Either StateInit ^StateInit)
        if _u(cs, 1):
            cs.fetch_ref()
        else:
            _skip_state_init(cs)
    body = load_as_cell_slice(cs.fetch_ref(), True) if _u(cs, 1) else cs
    if bounced and body.bits >= 64:
        body.advance(32)  # 0xFFFFFFFF bounce prefix
    op = int(body.preload_uint(32)) if body.bits >= 32 else None
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
    cs = load_as_cell_slice(cell, True)
    if _u(cs, 1) == 0:  # hml_short$0 len:(Unary ~n) s:(n * Bit)
        n = 0
        while _u(cs, 1):
            n += 1
        cs.advance(n)
    elif _u(cs, 1) == 0:  # hml_long$10 n:(#<= m) s:(n * Bit)
        n = cs.fetch_uint_leq(key_bits)
        cs.advance(n)
    else:  # hml_same$11 v:Bit n:(#<= m)
        cs.advance(1)
        n = cs.fetch_uint_leq(key_bits)
    rest = key_bits - n
    if rest == 0:
        out.append(cs.fetch_ref())
        return
    _dict_values(cs.fetch_ref(), rest - 1, out)
    _dict_values(cs.fetch_ref(), rest - 1, out)


def summarize_transaction(tx: PyCell) -> TxSummary:
    cs = load_as_cell_slice(tx, True)
    if _u(cs, 4) != 0b0111:
        raise EmulationError("emulator returned something that is not a Transaction")
    account = "0:" + f"{_u(cs, 256):064x}"
    lt = _u(cs, 64)
    cs.advance(256 + 64)  # prev_trans_hash, prev_trans_lt
    now = _u(cs, 32)
    _u(cs, 15)  # outmsg_cnt
    orig_status = _status(cs)
    end_status = _status(cs)
    msgs = load_as_cell_slice(cs.fetch_ref(), True)
    in_msg = _message(msgs.fetch_ref()) if _u(msgs, 1) else None
    out_cells: list[PyCell] = []
    if _u(msgs, 1):
        _dict_values(msgs.fetch_ref(), 15, out_cells)
    total_fees = _currency(cs)
    cs.fetch_ref()  # state_update
    d = load_as_cell_slice(cs.fetch_ref(), True)

    tag = _u(d, 4)
    storage_fees = 0
    compute_skipped, compute_success, exit_code = True, False, None
    gas_used = gas_fees = vm_steps = 0
    action_success = action_result = None
    total_fwd = total_action = 0
    aborted = destroyed = False
    if tag in (0b0000, 0b0001):  # trans_ord / trans_tick_tock
        if tag == 0b0000:
            d.advance(1)  # credit_first
            if _u(d, 1):  # storage_ph
                storage_fees = _grams(d)
                _maybe_grams(d)
                _skip_status_change(d)
            if _u(d, 1):  # credit_ph
                _maybe_grams(d)
                _currency(d)
        else:
            d.advance(1)  # is_tock
            storage_fees = _grams(d)
            _maybe_grams(d)
            _skip_status_change(d)
        if _u(d, 1):  # tr_phase_compute_vm$1
            compute_skipped = False
            compute_success = bool(_u(d, 1))
            d.advance(2)  # msg_state_used, account_activated
            gas_fees = _grams(d)
            c = load_as_cell_slice(d.fetch_ref(), True)
            gas_used = _var(c, 7)
            _var(c, 7)  # gas_limit
            if _u(c, 1):
                _var(c, 3)  # gas_credit
            c.advance(8)  # mode
            exit_code = _i(c, 32)
            if _u(c, 1):
                c.advance(32)
            vm_steps = _u(c, 32)
        else:
            d.advance(2 if int(d.preload_uint(2)) != 0b11 else 3)  # skip reason
        if _u(d, 1):  # action phase
            a = load_as_cell_slice(d.fetch_ref(), True)
            action_success = bool(_u(a, 1))
            a.advance(2)  # valid, no_funds
            _skip_status_change(a)
            total_fwd = _maybe_grams(a)
            total_action = _maybe_grams(a)
            action_result = _i(a, 32)
        aborted = bool(_u(d, 1))
        if tag == 0b0000 and _u(d, 1):  # bounce phase
            if _u(d, 1):  # ok$1
                _var(d, 7)
                _var(d, 7)
                _grams(d)
                _grams(d)
            elif _u(d, 1):  # nofunds$01
                _var(d, 7)
                _var(d, 7)
                _grams(d)
        destroyed = bool(_u(d, 1))

    return TxSummary(
        account=account,
        lt=lt,
        now=now,
        orig_status=orig_status,
        end_status=end_status,
        total_fees=total_fees,
        in_msg=in_msg,
        out_msgs=tuple(_message(c) for c in out_cells),
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
            self._debug = args.debug
        if args.ignore_chksig != self._ignore_chksig:
            self._emulator.set_ignore_chksig(args.ignore_chksig)
            self._ignore_chksig = args.ignore_chksig
        if args.rand_seed != self._seed:
            self._emulator.set_rand_seed(args.rand_seed.hex().upper())
            self._seed = args.rand_seed

    def _result(self, ok: bool, started: float, args: TransactionArgs) -> EmulationResult:
        vm_log = self._emulator.vm_log if args.debug else ""
        if not ok:
            raise EmulationError("emulator could not run the transaction", vm_log=vm_log)
        tx = self._emulator.transaction_cell
        return EmulationResult(
            transaction=tx.to_boc(),
            shard_account=self._emulator.account_cell.to_boc(),
            summary=summarize_transaction(tx),
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
        return self._result(ok, started, args)

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

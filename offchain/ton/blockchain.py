"""An in-process TON chain for tests and the localnet, in the shape of @ton/sandbox.

    bc = Blockchain.create()
    alice = bc.treasury("alice")
    result = alice.send(to=addr, value=ton(1), body=..., init=...)
    find_tx(result, from_=alice.address, to=addr, success=True)

`Blockchain` owns accounts, the clock, logical time and the message queue; the engine
behind it is any `Executor` (tonpy's emulator by default). A message runs its whole trace:
every internal message produced is delivered, FIFO, until the queue is empty or the
step limit is hit, bounces included.
"""

from __future__ import annotations

import base64
import hashlib
import time
from collections import deque
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from pytoniq_core import Address, Builder, Cell, Slice, StateInit, begin_cell
from pytoniq_core.tlb.account import ShardAccount

from offchain.errors import EmulationError, GetMethodError, TimeError
from offchain.ton.build import code_cell
from offchain.ton.executor import (
    Executor,
    GetMethodArgs,
    MessageSummary,
    StackValue,
    TransactionArgs,
)
from offchain.ton.messages import external_message, internal_message
from offchain.ton.provider import SandboxProvider, SandboxSender
from offchain.ton.transaction import Event, SendResult, Transaction, raw
from offchain.ton.wallet_v5 import SandboxWalletV5

__all__ = [
    "LT_ALIGN",
    "AccountState",
    "Blockchain",
    "GetResult",
    "SmartContract",
    "Snapshot",
    "Treasury",
    "message_destination",
    "method_id",
    "ton",
]

LT_ALIGN = 1_000_000  # logical time advanced per transaction, as @ton/sandbox does
DEFAULT_TREASURY_BALANCE = 1_000_000 * 10**9
_TREASURY_TOLK = Path(__file__).with_name("contracts") / "treasury.tolk"


def ton(amount: str | float | int) -> int:
    """TON to nanoTON, exactly for strings: ton("0.05") == 50_000_000."""
    from decimal import Decimal

    return int(Decimal(str(amount)) * 10**9)


def method_id(name: str) -> int:
    """Get-method id as FunC/Tolk compute it: crc16(name) | 0x10000."""
    crc = 0
    for byte in name.encode():
        crc ^= byte << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021) if crc & 0x8000 else crc << 1
            crc &= 0xFFFF
    return crc | 0x10000


def _b64(cell: Cell) -> str:
    return base64.b64encode(cell.to_boc()).decode()


def _var_uint(b: Builder, value: int, len_bits: int) -> None:
    n = (value.bit_length() + 7) // 8
    b.store_uint(n, len_bits)
    if n:
        b.store_uint(value, n * 8)


def _shard_account_boc(address: Address, code: Cell, data: Cell, balance: int) -> str:
    """An active account holding code/data/balance (storage stats zero, like @ton/sandbox)."""
    storage_info = begin_cell()
    _var_uint(storage_info, 0, 3)  # used.cells
    _var_uint(storage_info, 0, 3)  # used.bits
    storage_info.store_uint(0, 3)  # storage_extra_none
    storage_info.store_uint(0, 32).store_bit(0)  # last_paid, due_payment none
    state = begin_cell().store_bit(1)  # account_active
    state.store_bit(0).store_bit(0).store_maybe_ref(code).store_maybe_ref(data).store_bit(0)
    account = (
        begin_cell()
        .store_bit(1)
        .store_address(address)
        .store_cell(storage_info.end_cell())
        .store_uint(0, 64)
        .store_coins(balance)
        .store_bit(0)
        .store_cell(state.end_cell())
        .end_cell()
    )
    return _b64(begin_cell().store_ref(account).store_uint(0, 256).store_uint(0, 64).end_cell())


_EMPTY_SHARD_ACCOUNT = _b64(
    begin_cell().store_ref(begin_cell().store_bit(0).end_cell()).store_uint(0, 256).store_uint(0, 64).end_cell()
)


@dataclass(frozen=True)
class AccountState:
    """A decoded account: what tests and getters read (decoded lazily, cached per state)."""

    address: str
    status: str  # "nonexist" | "uninit" | "active" | "frozen"
    balance: int
    code: Cell | None
    data: Cell | None
    last_lt: int
    last_hash: bytes
    boc: str

    @property
    def state_hash(self) -> bytes:
        """Hash of the Account cell: equal hashes mean equal state, balance and stats."""
        return Cell.one_from_boc(base64.b64decode(self.boc)).refs[0].hash


@lru_cache(maxsize=4096)
def _decode_account(address: str, boc: str) -> AccountState:
    cell = Cell.one_from_boc(base64.b64decode(boc))
    sa = ShardAccount.deserialize(cell.begin_parse())
    acc = sa.account
    if acc is None or getattr(acc, "storage", None) is None:
        return AccountState(address, "nonexist", 0, None, None, sa.last_trans_lt, sa.last_trans_hash, boc)
    st = acc.storage
    state = st.state
    status = str(state.type_).removeprefix("account_")
    code = data = None
    if status == "active":
        code, data = state.state_init.code, state.state_init.data
    return AccountState(address, status, st.balance.grams, code, data, sa.last_trans_lt, sa.last_trans_hash, boc)


@dataclass
class GetResult:
    exit_code: int
    gas_used: int
    stack: list[StackValue]
    vm_log: str = ""

    def int(self, i: int = 0) -> int:
        v = self.stack[i]
        if not isinstance(v, int):
            raise TypeError(f"stack[{i}] is {type(v).__name__}, not int")
        return v

    def cell(self, i: int = 0) -> Cell:
        v = self.stack[i]
        if isinstance(v, Slice):
            return v.to_cell()
        if not isinstance(v, Cell):
            raise TypeError(f"stack[{i}] is {type(v).__name__}, not cell")
        return v

    def address(self, i: int = 0) -> Address | None:
        v = self.stack[i]
        s = v.begin_parse() if isinstance(v, Cell) else v
        if not isinstance(s, Slice):
            raise TypeError(f"stack[{i}] is {type(v).__name__}, not slice")
        return s.load_address()


@dataclass(frozen=True)
class Snapshot:
    accounts: dict[str, str]
    lt: int
    now: int | None
    transactions: dict[str, list[Transaction]]


class SmartContract:
    """One account of a Blockchain: its state, and shortcuts to message it or run getters."""

    def __init__(self, blockchain: Blockchain, address: str) -> None:
        self._bc = blockchain
        self.raw = address
        self.address = Address(address)

    @property
    def state(self) -> AccountState:
        return self._bc.account(self.raw)

    @property
    def balance(self) -> int:
        return self.state.balance

    def get(self, method: str | int, stack: list[StackValue] | None = None) -> GetResult:
        return self._bc.run_get_method(self.raw, method, stack or [])


class Treasury(SmartContract):
    """A funded account that sends arbitrary internal messages (its transaction is the 'wallet' one)."""

    def send(
        self,
        to: Address | str,
        value: int,
        body: Cell | None = None,
        *,
        init: StateInit | None = None,
        bounce: bool = True,
        mode: int = 1,
    ) -> SendResult:
        # One cell: an external message whose inline body asks the treasury contract to
        # build the internal message itself (the hot path of every sandbox test).
        b = begin_cell().store_uint(0b10, 2).store_uint(0, 2).store_address(self.address).store_coins(0)
        b.store_uint(0, 2)  # no StateInit; body inline
        b.store_uint(1, 1).store_uint(mode, 8).store_bit(bounce).store_address(_addr(to))
        b.store_coins(value).store_maybe_ref(init.serialize() if init is not None else None)
        b.store_ref(body if body is not None else Cell.empty())
        return self._bc.send_message(b.end_cell(), dest=self.raw)

    def sender(self) -> SandboxSender:
        """This treasury as an async `Sender`, the way wrappers take it."""
        return SandboxSender(self)

    def send_messages(self, messages: list[tuple[Cell, int]]) -> SendResult:
        if not 1 <= len(messages) <= 4:
            raise ValueError("a treasury sends 1 to 4 messages per external message")
        b = begin_cell().store_uint(0, 1)
        for msg, mode in messages:
            b.store_uint(mode, 8).store_ref(msg)
        return self._bc.send_message(external_message(dest=self.address, body=b.end_cell()))


def _addr(a: Address | str) -> Address:
    return a if isinstance(a, Address) else Address(a)


class Blockchain:
    """The sandbox chain: accounts, clock, logical time, message queue, snapshots."""

    def __init__(self, executor: Executor, *, now: int | None = None) -> None:
        self.executor = executor
        self._accounts: dict[str, str] = {}
        self._txs: dict[str, list[Transaction]] = {}
        self._lt = 0
        self._now = now
        self.debug = False
        self.max_steps = 10_000
        self.rand_seed = b"\0" * 32
        self.ignore_chksig = False

    @classmethod
    def create(
        cls, *, executor: Executor | None = None, config_boc: str | None = None, now: int | None = None
    ) -> Blockchain:
        """A fresh chain on tonpy's emulator and the stored global-version-12 config."""
        if executor is None:
            from offchain.ton._tonpy_executor import TonpyExecutor

            executor = TonpyExecutor(config_boc)
        return cls(executor, now=now)

    # -- clock ---------------------------------------------------------------------
    @property
    def now(self) -> int:
        return self._now if self._now is not None else int(time.time())

    @now.setter
    def now(self, value: int) -> None:
        if self._now is not None and value < self._now:
            raise TimeError(self._now, value)
        self._now = value

    def advance(self, seconds: int) -> int:
        self.now = self.now + seconds
        return self.now

    @property
    def lt(self) -> int:
        return self._lt

    # -- accounts ------------------------------------------------------------------
    def account(self, address: Address | str) -> AccountState:
        a = raw(address)
        assert a is not None
        return _decode_account(a, self._accounts.get(a, _EMPTY_SHARD_ACCOUNT))

    def get_contract(self, address: Address | str) -> SmartContract:
        return SmartContract(self, raw(address) or "")

    def set_account(self, address: Address | str, *, code: Cell, data: Cell, balance: int) -> SmartContract:
        """Put an active contract at `address` directly (no deploy transaction)."""
        a = _addr(address)
        self._accounts[raw(a) or ""] = _shard_account_boc(a, code, data, balance)
        return self.get_contract(a)

    def set_shard_account(self, address: Address | str, boc: str) -> None:
        self._accounts[raw(address) or ""] = boc

    def shard_account(self, address: Address | str) -> str:
        return self._accounts.get(raw(address) or "", _EMPTY_SHARD_ACCOUNT)

    def transactions(self, address: Address | str) -> list[Transaction]:
        """Transactions of an account, newest first (a copy: reading never changes state)."""
        return list(reversed(self._txs.get(raw(address) or "", [])))

    def treasury(self, seed: str = "treasury", balance: int = DEFAULT_TREASURY_BALANCE) -> Treasury:
        code = code_cell(_TREASURY_TOLK)
        data = begin_cell().store_bytes(hashlib.sha256(seed.encode()).digest()).end_cell()
        addr = Address((0, StateInit(code=code, data=data).serialize().hash))
        if raw(addr) not in self._accounts:
            # Deployed by a real transaction from the zero address, then topped up to
            # `balance`: what @ton/sandbox does, so logical times line up with it.
            self.send_internal(
                src=Address((0, bytes(32))), to=addr, value=10**9, init=StateInit(code=code, data=data), bounce=False
            )
            self.set_balance(addr, balance)
        return Treasury(self, raw(addr) or "")

    def set_balance(self, address: Address | str, balance: int) -> None:
        """Overwrite an existing account's balance (test set-up only)."""
        boc = self.shard_account(address)
        sa = ShardAccount.deserialize(Cell.one_from_boc(base64.b64decode(boc)).begin_parse())
        if sa.account is None or getattr(sa.account, "storage", None) is None:
            raise ValueError(f"no account at {raw(address)} to set the balance of")
        sa.account.storage.balance.grams = balance
        self._accounts[raw(address) or ""] = _b64(sa.serialize())

    def provider(self, address: Address | str, init: StateInit | None = None) -> SandboxProvider:
        """A `ContractProvider` for wrappers (attaches `init` until the account is active)."""
        return SandboxProvider(self, _addr(address), init)

    def wallet_v5(self, seed: str, balance: int = 0, *, deploy: bool = False) -> SandboxWalletV5:
        """A real wallet v5r1 whose key derives from `seed`; optionally funded and deployed."""
        from nacl.signing import SigningKey

        from offchain.ton.wallet_v5 import SandboxWalletV5, wallet_v5_id

        key = SigningKey(hashlib.sha256(b"cocoon-sandbox-wallet:" + seed.encode()).digest())
        wallet = SandboxWalletV5(self, key, wallet_v5_id())
        if deploy:
            self.set_account(wallet.address, code=wallet.init.code, data=wallet.init.data, balance=balance)
        elif balance:
            self.treasury("faucet").send(wallet.address, balance, bounce=False)
        return wallet

    def create_treasuries(
        self, n: int, prefix: str = "wallet", balance: int = DEFAULT_TREASURY_BALANCE
    ) -> list[Treasury]:
        return [self.treasury(f"{prefix}{i}", balance) for i in range(n)]

    # -- messages ------------------------------------------------------------------
    def _args(self) -> TransactionArgs:
        self._lt += LT_ALIGN  # before each transaction, as @ton/sandbox does
        return TransactionArgs(
            now=self.now, lt=self._lt, rand_seed=self.rand_seed, ignore_chksig=self.ignore_chksig, debug=self.debug
        )

    def _run(self, dest: str, message_boc: str, parent: Transaction | None, result: SendResult) -> Transaction:
        args = self._args()
        before = self._accounts.get(dest, _EMPTY_SHARD_ACCOUNT)
        res = self.executor.run_transaction(before, message_boc, args)
        self._accounts[dest] = res.shard_account
        tx = Transaction(res, res.transaction, res.vm_log, parent, res.head)
        if parent is not None:
            parent.children.append(tx)
        self._txs.setdefault(dest, []).append(tx)
        result.transactions.append(tx)
        if tx.deployed:
            result.events.append(Event("account_created", dest))
        if res.head.end_status == 3 and res.head.orig_status != 3:  # acc_state_nonexist: destroyed
            result.events.append(Event("account_destroyed", dest))
        return tx

    def send_message(
        self, message: Cell | str | bytes, *, max_steps: int | None = None, dest: str | None = None
    ) -> SendResult:
        """Deliver an external or internal message and run its whole trace.

        `dest` (raw address) skips reading the destination back from the message, for
        callers that built the message themselves.
        """
        if isinstance(message, Cell):
            boc, dest = _b64(message), dest or message_destination(message)
        else:
            boc = _message_boc(message)
            dest = message_destination(Cell.one_from_boc(base64.b64decode(boc)))
        result = SendResult(transactions=[], events=[], externals=[])
        queue: deque[tuple[MessageSummary, Transaction]] = deque()
        self._enqueue(self._run(dest, boc, None, result), queue, result)
        limit = self.max_steps if max_steps is None else max_steps
        steps = 1
        while queue:
            if steps >= limit:
                raise EmulationError(f"trace exceeded {limit} transactions (message loop?)")
            msg, parent = queue.popleft()
            self._enqueue(self._run(msg.dest or "", msg.boc, parent, result), queue, result)
            steps += 1
        return result

    def _enqueue(self, tx: Transaction, queue: deque, result: SendResult) -> None:
        for m in tx.head.out_msgs:
            if m.kind == "internal":
                queue.append((m, tx))
                result.events.append(
                    Event("message_sent", tx.address, {"to": m.dest, "value": m.value, "bounced": m.bounced})
                )
            else:
                result.externals.append(m)

    def send_internal(
        self,
        *,
        src: Address | str,
        to: Address | str,
        value: int,
        body: Cell | None = None,
        init: StateInit | None = None,
        bounce: bool = True,
    ) -> SendResult:
        """Deliver an internal message 'from' any address, with no sender transaction."""
        msg = internal_message(
            src=_addr(src),
            dest=_addr(to),
            value=value,
            body=body,
            init=init,
            bounce=bounce,
            created_lt=self._lt,
            created_at=self.now,
        )
        return self.send_message(msg)

    # -- getters -------------------------------------------------------------------
    def run_get_method(
        self,
        address: Address | str,
        method: str | int,
        stack: list[StackValue] | None = None,
        *,
        gas_limit: int = 10_000_000,
    ) -> GetResult:
        acc = self.account(address)
        if acc.status != "active" or acc.code is None:
            raise GetMethodError(str(method), -256, vm_log=f"account {acc.address} is {acc.status}, not active")
        mid = method if isinstance(method, int) else method_id(method)
        res = self.executor.run_get_method(
            _code_boc(acc.code),
            _code_boc(acc.data) if acc.data is not None else _b64(Cell.empty()),
            mid,
            list(stack or []),
            GetMethodArgs(
                address=acc.address,
                balance=acc.balance,
                now=self.now,
                lt=self._lt,
                rand_seed=self.rand_seed,
                gas_limit=gas_limit,
            ),
        )
        if not res.success:
            raise GetMethodError(str(method), res.exit_code, gas_used=res.gas_used, vm_log=res.vm_log)
        return GetResult(exit_code=res.exit_code, gas_used=res.gas_used, stack=res.stack, vm_log=res.vm_log)

    # -- snapshots -----------------------------------------------------------------
    def snapshot(self) -> Snapshot:
        return Snapshot(
            accounts=dict(self._accounts),
            lt=self._lt,
            now=self._now,
            transactions={k: list(v) for k, v in self._txs.items()},
        )

    def load_from(self, snap: Snapshot) -> None:
        self._accounts = dict(snap.accounts)
        self._lt = snap.lt
        self._now = snap.now
        self._txs = {k: list(v) for k, v in snap.transactions.items()}


@lru_cache(maxsize=1024)
def _code_boc(cell: Cell) -> str:
    return _b64(cell)


def _message_boc(message: Cell | str | bytes) -> str:
    if isinstance(message, Cell):
        return _b64(message)
    if isinstance(message, bytes):
        data = message
    else:
        try:
            data = base64.b64decode(message, validate=True)
        except ValueError as err:
            raise ValueError(f"malformed BOC: not base64 ({err})") from err
    try:
        Cell.one_from_boc(data)
    except Exception as err:
        raise ValueError(f"malformed BOC: {err}") from err
    return base64.b64encode(data).decode()


def message_destination(message: Cell) -> str:
    """Destination of a message, read with pytoniq-core (once per `send_message`)."""
    try:
        s = message.begin_parse()
        if s.load_bit() == 0:  # int_msg_info
            s.skip_bits(3)
            s.load_address()
            dest = s.load_address()
        else:
            if s.load_bit():
                raise ValueError("an external-out message cannot be sent to the chain")
            s.load_address()  # src: MsgAddressExt
            dest = s.load_address()
    except ValueError:
        raise
    except Exception as err:
        raise ValueError(f"malformed message: {err}") from err
    if dest is None:
        raise ValueError("malformed message: no destination address")
    return raw(dest) or ""

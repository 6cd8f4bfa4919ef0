"""Message layouts, mirrored from `contracts/common/messages.tolk` (checked by test_abi_mirror).

One frozen dataclass per Tolk struct, same class name, fields in the same order in
snake_case. Each field carries its TL-B codec (`tl(...)`), whose `.tolk` text is the Tolk
type it mirrors, so `to_cell()` / `from_cell()` are derived, never hand-packed.

Python values: integers for `uintN`/`coins`, `Address` for `address`, `None` for a null
optional, `str` for `string`, a `Cell` for `cell`, the nested dataclass for a struct or
`Cell<Struct>`, a `dict` for `map<K, V>` (`bits512` values are 64 `bytes`).
"""

# ruff: noqa: RUF009  -- `tl(...)` returns a dataclasses.field, not a shared default value

from __future__ import annotations

import dataclasses
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, TypeVar

from pytoniq_core import Address, Builder, Cell, HashMap, Slice, begin_cell

from wrappers.opcodes import Op

__all__ = [
    "ADDRESS",
    "BOOL",
    "CELL",
    "COINS",
    "STRING",
    "AcceptOwnership",
    "AddImageHash",
    "AddModelHash",
    "AnchorDataset",
    "ApplySlash",
    "Bits",
    "CellOf",
    "ChannelKeys",
    "ChannelParties",
    "ChannelTerms",
    "ClaimReward",
    "CloseApproval",
    "Codec",
    "ComputeSplit",
    "ConfirmRegistration",
    "CooperativeClose",
    "DataSplit",
    "DatasetAnchored",
    "Deposit",
    "DepositRevenue",
    "Dict",
    "EpochReport",
    "FinishClose",
    "ForwardClaim",
    "Inline",
    "Int",
    "NodeInfo",
    "Optional",
    "PoolConfig",
    "PostEpochReport",
    "ProviderTerms",
    "PushPoolConfig",
    "ReceiveProtocolFee",
    "ReceiveRefund",
    "ReceiveReward",
    "ReceiveSlashedStake",
    "ReceiveWithdrawal",
    "RedeemVoucher",
    "RefuseRegistration",
    "RegisterProvider",
    "RelaySlash",
    "RemoveImageHash",
    "RemoveModelHash",
    "RequestChannelTerms",
    "RequestUnstake",
    "ReturnExcess",
    "SetCloseDelay",
    "SetDevAttestation",
    "SetPrices",
    "SetRewardPool",
    "SetRoleParams",
    "SetRouter",
    "SetSplits",
    "SetTreasury",
    "SetValidators",
    "SlashOrder",
    "Stake",
    "StartClose",
    "Struct",
    "SyncPoolConfig",
    "TransferOwnership",
    "UInt",
    "UpdateNode",
    "UpgradeCode",
    "Voucher",
    "Withdraw",
    "load_string",
    "store_string",
    "tl",
]


# ---- codecs --------------------------------------------------------------------------


class Codec(ABC):
    """How one Tolk type is stored; `tolk` is that type's text."""

    tolk: str = ""

    @abstractmethod
    def store(self, b: Builder, value: Any) -> None: ...

    @abstractmethod
    def load(self, s: Slice) -> Any: ...


class UInt(Codec):
    def __init__(self, bits: int) -> None:
        self.bits = bits
        self.tolk = f"uint{bits}"

    def store(self, b: Builder, value: int) -> None:
        b.store_uint(value, self.bits)

    def load(self, s: Slice) -> int:
        return s.load_uint(self.bits)


class Int(Codec):
    def __init__(self, bits: int) -> None:
        self.bits = bits
        self.tolk = f"int{bits}"

    def store(self, b: Builder, value: int) -> None:
        b.store_int(value, self.bits)

    def load(self, s: Slice) -> int:
        return s.load_int(self.bits)


class Bits(Codec):
    """`bitsN` as `bytes` (N a multiple of 8)."""

    def __init__(self, bits: int) -> None:
        self.bits = bits
        self.tolk = f"bits{bits}"

    def store(self, b: Builder, value: bytes) -> None:
        if len(value) * 8 != self.bits:
            raise ValueError(f"{self.tolk} needs {self.bits // 8} bytes, got {len(value)}")
        b.store_bytes(value)

    def load(self, s: Slice) -> bytes:
        return s.load_bytes(self.bits // 8)


class _Coins(Codec):
    tolk = "coins"

    def store(self, b: Builder, value: int) -> None:
        b.store_coins(value)

    def load(self, s: Slice) -> int:
        return s.load_coins()


class _Bool(Codec):
    tolk = "bool"

    def store(self, b: Builder, value: bool) -> None:
        b.store_bit(1 if value else 0)

    def load(self, s: Slice) -> bool:
        return bool(s.load_bit())


class _Address(Codec):
    tolk = "address"

    def store(self, b: Builder, value: Address) -> None:
        if value is None:
            raise ValueError("address may not be None (use Optional(ADDRESS))")
        b.store_address(value)

    def load(self, s: Slice) -> Address:
        addr = s.load_address()
        if addr is None:
            raise ValueError("expected an internal address, got addr_none")
        return addr


class _Cell(Codec):
    tolk = "cell"

    def store(self, b: Builder, value: Cell) -> None:
        b.store_ref(value)

    def load(self, s: Slice) -> Cell:
        return s.load_ref()


def store_string(b: Builder, text: str) -> Cell:
    """A Tolk `string`: the UTF-8 bytes in snake cells (no prefix byte)."""
    return b.store_snake_bytes(text.encode()).end_cell()


def load_string(cell: Cell) -> str:
    return cell.begin_parse().load_snake_bytes().decode()


class _String(Codec):
    tolk = "string"

    def store(self, b: Builder, value: str) -> None:
        b.store_ref(store_string(begin_cell(), value))

    def load(self, s: Slice) -> str:
        return load_string(s.load_ref())


COINS = _Coins()
BOOL = _Bool()
ADDRESS = _Address()
CELL = _Cell()
STRING = _String()


class Optional(Codec):
    """`T?`: a nullable address is addr_none ('00'); `cell?`/`string?`/`Cell<T>?` a Maybe ^Cell;
    anything else a Maybe bit followed by the value."""

    def __init__(self, inner: Codec) -> None:
        self.inner = inner
        self.tolk = f"{inner.tolk}?"

    def store(self, b: Builder, value: Any) -> None:
        if isinstance(self.inner, _Address):
            if value is None:
                b.store_uint(0, 2)
            else:
                b.store_address(value)
            return
        if value is None:
            b.store_bit(0)
            return
        b.store_bit(1)
        self.inner.store(b, value)

    def load(self, s: Slice) -> Any:
        if isinstance(self.inner, _Address):
            return s.load_address()
        if not s.load_bit():
            return None
        return self.inner.load(s)


S = TypeVar("S", bound="Struct")


class Inline(Codec):
    """A struct stored in place."""

    def __init__(self, struct: type[Struct]) -> None:
        self.struct = struct
        self.tolk = struct.__name__

    def store(self, b: Builder, value: Struct) -> None:
        value.store(b)

    def load(self, s: Slice) -> Struct:
        return self.struct.load(s)


class CellOf(Codec):
    """`Cell<T>`: a struct in its own referenced cell."""

    def __init__(self, struct: type[Struct]) -> None:
        self.struct = struct
        self.tolk = f"Cell<{struct.__name__}>"

    def store(self, b: Builder, value: Struct) -> None:
        b.store_ref(value.to_cell())

    def load(self, s: Slice) -> Struct:
        return self.struct.from_cell(s.load_ref())


class Dict(Codec):
    """`map<K, V>` with unsigned-integer or address keys, as a `dict` (empty dict = empty map)."""

    def __init__(self, key: Codec, value: Codec) -> None:
        if not isinstance(key, UInt | _Address):
            raise TypeError("map keys: uintN or address")
        self.key = key
        self.value = value
        self.key_bits = key.bits if isinstance(key, UInt) else 267
        self.tolk = f"map<{key.tolk}, {value.tolk}>"

    def to_cell(self, value: Mapping[Any, Any]) -> Cell | None:
        if not value:
            return None
        hm = HashMap(self.key_bits, value_serializer=lambda v, b: self.value.store(b, v))
        for k, v in value.items():
            hm.set(k, v)
        return hm.serialize()

    def from_cell(self, cell: Cell | None) -> dict[Any, Any]:
        if cell is None:
            return {}

        def key(bits: Any) -> Any:
            n = int(bits, 2) if isinstance(bits, str) else int(bits)
            if isinstance(self.key, UInt):
                return n
            return begin_cell().store_uint(n, 267).end_cell().begin_parse().load_address()

        parsed = HashMap.parse(cell.begin_parse(), self.key_bits, key, lambda s: self.value.load(s))
        return dict(parsed or {})

    def store(self, b: Builder, value: Mapping[Any, Any]) -> None:
        b.store_maybe_ref(self.to_cell(value))

    def load(self, s: Slice) -> dict[Any, Any]:
        return self.from_cell(s.load_maybe_ref())


def tl(codec: Codec, **kwargs: Any) -> Any:
    """A dataclass field stored with `codec`."""
    return field(metadata={"tl": codec}, **kwargs)


class Struct:
    """Base of every mirrored struct: derived `store`/`load`/`to_cell`/`from_cell`."""

    OPCODE: ClassVar[int | None] = None

    def store(self, b: Builder) -> Builder:
        if self.OPCODE is not None:
            b.store_uint(self.OPCODE, 32)
        for f in dataclasses.fields(self):  # type: ignore[arg-type]
            f.metadata["tl"].store(b, getattr(self, f.name))
        return b

    def to_cell(self) -> Cell:
        return self.store(begin_cell()).end_cell()

    @classmethod
    def load(cls: type[S], s: Slice) -> S:
        if cls.OPCODE is not None:
            op = s.load_uint(32)
            if op != cls.OPCODE:
                raise ValueError(f"{cls.__name__}: opcode 0x{op:08x}, expected 0x{cls.OPCODE:08x}")
        values = {f.name: f.metadata["tl"].load(s) for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
        return cls(**values)

    @classmethod
    def from_cell(cls: type[S], cell: Cell) -> S:
        return cls.load(cell.begin_parse())

    @classmethod
    def layout(cls) -> list[tuple[str, str]]:
        """(field name, Tolk type) in order: what test_abi_mirror compares."""
        return [(f.name, f.metadata["tl"].tolk) for f in dataclasses.fields(cls)]  # type: ignore[arg-type]


U8, U16, U32, U64, U256 = UInt(8), UInt(16), UInt(32), UInt(64), UInt(256)


# ---- value types ---------------------------------------------------------------------


@dataclass(frozen=True)
class ComputeSplit(Struct):
    gpu: int = tl(U16)
    router: int = tl(U16)
    validator: int = tl(U16)
    protocol: int = tl(U16)


@dataclass(frozen=True)
class DataSplit(Struct):
    bandwidth: int = tl(U16)
    router: int = tl(U16)
    validator: int = tl(U16)
    protocol: int = tl(U16)


@dataclass(frozen=True)
class SlashOrder(Struct):
    root: Address = tl(ADDRESS)
    target: Address = tl(ADDRESS)
    amount: int = tl(COINS)
    reason_hash: int = tl(U256)
    nonce: int = tl(U64)


@dataclass(frozen=True)
class NodeInfo(Struct):
    image_hash: int | None = tl(Optional(U256))
    node_key: int = tl(U256)
    endpoint: str = tl(STRING)


@dataclass(frozen=True)
class ProviderTerms(Struct):
    min_stake: int = tl(COINS)
    cooldown: int = tl(U32)
    reward_pool: Address | None = tl(Optional(ADDRESS))


# ---- to Root ---------------------------------------------------------------------------


@dataclass(frozen=True)
class SetPrices(Struct):
    OPCODE: ClassVar[int] = Op.SET_PRICES
    query_id: int = tl(U64)
    compute_unit_price: int = tl(COINS)
    data_unit_price: int = tl(COINS)


@dataclass(frozen=True)
class SetSplits(Struct):
    OPCODE: ClassVar[int] = Op.SET_SPLITS
    query_id: int = tl(U64)
    compute: ComputeSplit = tl(Inline(ComputeSplit))
    data: DataSplit = tl(Inline(DataSplit))


@dataclass(frozen=True)
class SetRoleParams(Struct):
    OPCODE: ClassVar[int] = Op.SET_ROLE_PARAMS
    query_id: int = tl(U64)
    role: int = tl(U8)
    min_stake: int = tl(COINS)
    cooldown: int = tl(U32)


@dataclass(frozen=True)
class SetCloseDelay(Struct):
    OPCODE: ClassVar[int] = Op.SET_CLOSE_DELAY
    query_id: int = tl(U64)
    close_delay: int = tl(U32)


@dataclass(frozen=True)
class SetDevAttestation(Struct):
    OPCODE: ClassVar[int] = Op.SET_DEV_ATTESTATION
    query_id: int = tl(U64)
    allowed: bool = tl(BOOL)


@dataclass(frozen=True)
class SetTreasury(Struct):
    OPCODE: ClassVar[int] = Op.SET_TREASURY
    query_id: int = tl(U64)
    treasury: Address = tl(ADDRESS)


@dataclass(frozen=True)
class SetRewardPool(Struct):
    OPCODE: ClassVar[int] = Op.SET_REWARD_POOL
    query_id: int = tl(U64)
    reward_pool: Address = tl(ADDRESS)


@dataclass(frozen=True)
class AddModelHash(Struct):
    OPCODE: ClassVar[int] = Op.ADD_MODEL_HASH
    query_id: int = tl(U64)
    hash: int = tl(U256)


@dataclass(frozen=True)
class RemoveModelHash(Struct):
    OPCODE: ClassVar[int] = Op.REMOVE_MODEL_HASH
    query_id: int = tl(U64)
    hash: int = tl(U256)


@dataclass(frozen=True)
class AddImageHash(Struct):
    OPCODE: ClassVar[int] = Op.ADD_IMAGE_HASH
    query_id: int = tl(U64)
    hash: int = tl(U256)


@dataclass(frozen=True)
class RemoveImageHash(Struct):
    OPCODE: ClassVar[int] = Op.REMOVE_IMAGE_HASH
    query_id: int = tl(U64)
    hash: int = tl(U256)


@dataclass(frozen=True)
class SetValidators(Struct):
    OPCODE: ClassVar[int] = Op.SET_VALIDATORS
    query_id: int = tl(U64)
    threshold: int = tl(U8)
    validators: dict[int, bool] = tl(Dict(U256, BOOL))


@dataclass(frozen=True)
class SetRouter(Struct):
    OPCODE: ClassVar[int] = Op.SET_ROUTER
    query_id: int = tl(U64)
    router: Address = tl(ADDRESS)
    endpoint: str | None = tl(Optional(STRING))


@dataclass(frozen=True)
class TransferOwnership(Struct):
    OPCODE: ClassVar[int] = Op.TRANSFER_OWNERSHIP
    query_id: int = tl(U64)
    new_owner: Address = tl(ADDRESS)


@dataclass(frozen=True)
class AcceptOwnership(Struct):
    OPCODE: ClassVar[int] = Op.ACCEPT_OWNERSHIP
    query_id: int = tl(U64)


@dataclass(frozen=True)
class UpgradeCode(Struct):
    OPCODE: ClassVar[int] = Op.UPGRADE_CODE
    query_id: int = tl(U64)
    code: Cell = tl(CELL)
    data: Cell | None = tl(Optional(CELL))


@dataclass(frozen=True)
class RelaySlash(Struct):
    OPCODE: ClassVar[int] = Op.RELAY_SLASH
    query_id: int = tl(U64)
    order: SlashOrder = tl(CellOf(SlashOrder))
    signatures: dict[int, bytes] = tl(Dict(U256, Bits(512)))


@dataclass(frozen=True)
class RegisterProvider(Struct):
    OPCODE: ClassVar[int] = Op.REGISTER_PROVIDER
    query_id: int = tl(U64)
    role: int = tl(U8)
    stake: int = tl(COINS)
    node: NodeInfo = tl(CellOf(NodeInfo))


# ---- Root -> Provider --------------------------------------------------------------------


@dataclass(frozen=True)
class ConfirmRegistration(Struct):
    OPCODE: ClassVar[int] = Op.CONFIRM_REGISTRATION
    query_id: int = tl(U64)
    stake: int = tl(COINS)
    node: NodeInfo = tl(CellOf(NodeInfo))
    terms: ProviderTerms = tl(CellOf(ProviderTerms))


@dataclass(frozen=True)
class RefuseRegistration(Struct):
    OPCODE: ClassVar[int] = Op.REFUSE_REGISTRATION
    query_id: int = tl(U64)
    reason: int = tl(U32)


@dataclass(frozen=True)
class ApplySlash(Struct):
    OPCODE: ClassVar[int] = Op.APPLY_SLASH
    query_id: int = tl(U64)
    amount: int = tl(COINS)
    reason_hash: int = tl(U256)
    treasury: Address = tl(ADDRESS)
    excess_to: Address = tl(ADDRESS)


# ---- to Provider ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Stake(Struct):
    OPCODE: ClassVar[int] = Op.STAKE
    query_id: int = tl(U64)
    amount: int = tl(COINS)


@dataclass(frozen=True)
class RequestUnstake(Struct):
    OPCODE: ClassVar[int] = Op.REQUEST_UNSTAKE
    query_id: int = tl(U64)


@dataclass(frozen=True)
class Withdraw(Struct):
    OPCODE: ClassVar[int] = Op.WITHDRAW
    query_id: int = tl(U64)
    amount: int = tl(COINS)


@dataclass(frozen=True)
class UpdateNode(Struct):
    OPCODE: ClassVar[int] = Op.UPDATE_NODE
    query_id: int = tl(U64)
    node_key: int = tl(U256)
    endpoint: str = tl(STRING)


# ---- payouts -------------------------------------------------------------------------------


@dataclass(frozen=True)
class ReceiveWithdrawal(Struct):
    OPCODE: ClassVar[int] = Op.RECEIVE_WITHDRAWAL
    query_id: int = tl(U64)
    amount: int = tl(COINS)


@dataclass(frozen=True)
class ReceiveSlashedStake(Struct):
    OPCODE: ClassVar[int] = Op.RECEIVE_SLASHED_STAKE
    query_id: int = tl(U64)
    reason_hash: int = tl(U256)


@dataclass(frozen=True)
class ReturnExcess(Struct):
    OPCODE: ClassVar[int] = Op.RETURN_EXCESS
    query_id: int = tl(U64)


# ---- payment channels ------------------------------------------------------------------


@dataclass(frozen=True)
class Voucher(Struct):
    OPCODE: ClassVar[int] = Op.VOUCHER
    channel: Address = tl(ADDRESS)
    compute: int = tl(COINS)
    data: int = tl(COINS)


@dataclass(frozen=True)
class CloseApproval(Struct):
    OPCODE: ClassVar[int] = Op.CLOSE_APPROVAL
    channel: Address = tl(ADDRESS)
    compute: int = tl(COINS)
    data: int = tl(COINS)


@dataclass(frozen=True)
class ChannelKeys(Struct):
    client_key: int = tl(U256)
    router_key: int = tl(U256)


@dataclass(frozen=True)
class ChannelParties(Struct):
    root: Address = tl(ADDRESS)
    client: Address = tl(ADDRESS)
    router: Address = tl(ADDRESS)
    keys: ChannelKeys = tl(CellOf(ChannelKeys))


@dataclass(frozen=True)
class Deposit(Struct):
    OPCODE: ClassVar[int] = Op.DEPOSIT
    query_id: int = tl(U64)


@dataclass(frozen=True)
class RedeemVoucher(Struct):
    OPCODE: ClassVar[int] = Op.REDEEM_VOUCHER
    query_id: int = tl(U64)
    compute: int = tl(COINS)
    data: int = tl(COINS)
    signature: bytes = tl(Bits(512))


@dataclass(frozen=True)
class StartClose(Struct):
    OPCODE: ClassVar[int] = Op.START_CLOSE
    query_id: int = tl(U64)


@dataclass(frozen=True)
class FinishClose(Struct):
    OPCODE: ClassVar[int] = Op.FINISH_CLOSE
    query_id: int = tl(U64)


@dataclass(frozen=True)
class CooperativeClose(Struct):
    OPCODE: ClassVar[int] = Op.COOPERATIVE_CLOSE
    query_id: int = tl(U64)
    compute: int = tl(COINS)
    data: int = tl(COINS)
    signature: bytes = tl(Bits(512))


@dataclass(frozen=True)
class ChannelTerms(Struct):
    OPCODE: ClassVar[int] = Op.CHANNEL_TERMS
    query_id: int = tl(U64)
    close_delay: int = tl(U32)
    reward_pool: Address = tl(ADDRESS)


@dataclass(frozen=True)
class ReceiveRefund(Struct):
    OPCODE: ClassVar[int] = Op.RECEIVE_REFUND
    query_id: int = tl(U64)


@dataclass(frozen=True)
class RequestChannelTerms(Struct):
    OPCODE: ClassVar[int] = Op.REQUEST_CHANNEL_TERMS
    query_id: int = tl(U64)
    parties: ChannelParties = tl(CellOf(ChannelParties))


@dataclass(frozen=True)
class PushPoolConfig(Struct):
    OPCODE: ClassVar[int] = Op.PUSH_POOL_CONFIG
    query_id: int = tl(U64)


@dataclass(frozen=True)
class AnchorDataset(Struct):
    """Anyone -> Root: anchor a dataset manifest's digest (attach ANCHOR_FEE or more)."""

    OPCODE: ClassVar[int] = Op.ANCHOR_DATASET
    query_id: int = tl(U64)
    digest: int = tl(U256)


@dataclass(frozen=True)
class DatasetAnchored(Struct):
    """Root's external-out log of an accepted AnchorDataset."""

    OPCODE: ClassVar[int] = Op.DATASET_ANCHORED
    query_id: int = tl(U64)
    digest: int = tl(U256)
    sender: Address = tl(ADDRESS)


# ---- the reward pool -------------------------------------------------------------------


@dataclass(frozen=True)
class PoolConfig(Struct):
    provider_code: Cell = tl(CELL)
    version: int = tl(U32)
    treasury: Address = tl(ADDRESS)
    compute_split: ComputeSplit = tl(Inline(ComputeSplit))
    data_split: DataSplit = tl(Inline(DataSplit))
    threshold: int = tl(U8)
    validators: dict[int, bool] = tl(Dict(U256, BOOL))


@dataclass(frozen=True)
class SyncPoolConfig(Struct):
    OPCODE: ClassVar[int] = Op.SYNC_POOL_CONFIG
    query_id: int = tl(U64)
    config: PoolConfig = tl(CellOf(PoolConfig))
    excess_to: Address = tl(ADDRESS)


@dataclass(frozen=True)
class DepositRevenue(Struct):
    OPCODE: ClassVar[int] = Op.DEPOSIT_REVENUE
    query_id: int = tl(U64)
    compute: int = tl(COINS)
    data: int = tl(COINS)


@dataclass(frozen=True)
class EpochReport(Struct):
    pool: Address = tl(ADDRESS)
    epoch: int = tl(U32)
    compute_consumed: int = tl(COINS)
    data_consumed: int = tl(COINS)
    merkle_root: int = tl(U256)
    root_total: int = tl(COINS)
    root_node: Cell = tl(CELL)  # Merkle-proof cell of the tree's root node (offchain/protocol/merkle.py)


@dataclass(frozen=True)
class PostEpochReport(Struct):
    OPCODE: ClassVar[int] = Op.POST_EPOCH_REPORT
    query_id: int = tl(U64)
    report: EpochReport = tl(CellOf(EpochReport))
    signatures: dict[int, bytes] = tl(Dict(U256, Bits(512)))


@dataclass(frozen=True)
class ClaimReward(Struct):
    OPCODE: ClassVar[int] = Op.CLAIM_REWARD
    query_id: int = tl(U64)
    cumulative: int = tl(COINS)
    path: int = tl(U64)
    proof: Cell = tl(CELL)


@dataclass(frozen=True)
class ForwardClaim(Struct):
    OPCODE: ClassVar[int] = Op.FORWARD_CLAIM
    query_id: int = tl(U64)
    payout: int = tl(COINS)
    cumulative: int = tl(COINS)
    owner: Address = tl(ADDRESS)
    role: int = tl(U8)
    path: int = tl(U64)
    proof: Cell = tl(CELL)


@dataclass(frozen=True)
class ReceiveReward(Struct):
    OPCODE: ClassVar[int] = Op.RECEIVE_REWARD
    query_id: int = tl(U64)


@dataclass(frozen=True)
class ReceiveProtocolFee(Struct):
    OPCODE: ClassVar[int] = Op.RECEIVE_PROTOCOL_FEE
    query_id: int = tl(U64)
    epoch: int = tl(U32)

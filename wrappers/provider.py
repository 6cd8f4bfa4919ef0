"""Provider wrapper: one contract per (owner wallet, role) holding the stake.

Blueprint-shaped: `Provider.create_from_config(ProviderConfig(root, owner, role), code)`
gives the deterministic address (the same one Root's `get_provider_address` returns);
`send_*` take a `ContractProvider` and a `Sender`; `get_*` return dataclasses.
"""

# ruff: noqa: RUF009  -- `tl(...)` returns a dataclasses.field, not a shared default value

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import IntEnum
from typing import TYPE_CHECKING, Any

from pytoniq_core import Address, Builder, Cell, Slice, StateInit

if TYPE_CHECKING:
    from offchain.ton.provider import ContractProvider, Sender

from wrappers.messages import (
    ADDRESS,
    COINS,
    CellOf,
    ClaimReward,
    NodeInfo,
    Optional,
    ProviderTerms,
    RequestUnstake,
    Stake,
    Struct,
    UInt,
    UpdateNode,
    Withdraw,
    load_string,
    tl,
)

__all__ = [
    "BASIS_POINTS",
    "BOUNCE_GAS",
    "CLAIM_MIN_OWN_BALANCE",
    "CLAIM_VALUE",
    "CONFIRM_REGISTRATION_GAS",
    "MAX_CLAIM_TOTAL",
    "MAX_NODE_INFO_DEPTH",
    "MAX_VALIDATORS",
    "PROVIDER_OP_FEE",
    "PROVIDER_STORAGE_RESERVE",
    "REGISTER_FEE",
    "SLASH_RELAY_FEE",
    "WITHDRAW_FEE",
    "Provider",
    "ProviderConfig",
    "ProviderData",
    "ProviderState",
    "ProviderStorage",
    "Role",
    "provider_config_to_cell",
    "stack_address",
]


# Fee constants, mirrored from contracts/common/fees.tolk (checked by test_abi_mirror):
# what to attach to each operation on top of the amount it moves (the excess comes back).
PROVIDER_STORAGE_RESERVE = 50_000_000  # ton("0.05"), kept on the Provider with the stake
REGISTER_FEE = 50_000_000  # ton("0.05"): RegisterProvider (attach stake + this + the reserve)
PROVIDER_OP_FEE = 10_000_000  # ton("0.01"): Stake (amount + this), RequestUnstake, UpdateNode
WITHDRAW_FEE = 20_000_000  # ton("0.02"): Withdraw
SLASH_RELAY_FEE = 50_000_000  # ton("0.05"): RelaySlash
# What tools attach to ClaimReward: the Provider wants CLAIM_FEE (wrappers.reward_pool) on top
# of the claim's own forward fee (~0.008 TON for a proof in a 2^20-leaf tree); the unspent
# part comes back with the reward.
CLAIM_VALUE = 100_000_000
CLAIM_MIN_OWN_BALANCE = 1_000_000  # ton("0.001"): a claim needs the Provider to hold this itself (STORAGE_DEBT)
MAX_NODE_INFO_DEPTH = 2  # deepest NodeInfo Root (and UpdateNode) accepts (NODE_INFO_TOO_LARGE): + a 2-cell endpoint
MAX_CLAIM_TOTAL = 1 << 96  # claims of totals from here on are refused (INVALID_PROOF): no tree holds them
CONFIRM_REGISTRATION_GAS = 4000  # upper bound of the Provider's ConfirmRegistration gas
BOUNCE_GAS = 3000  # upper bound of the Provider's bounce handler gas
BASIS_POINTS = 10_000
MAX_VALIDATORS = 100


class Role(IntEnum):
    """Provider roles (`ROLE_*` in contracts/common/storage.tolk)."""

    GPU = 0
    BANDWIDTH = 1
    ROUTER = 2
    VALIDATOR = 3


class ProviderState(IntEnum):
    """Provider states (`PROVIDER_*` in contracts/common/storage.tolk)."""

    UNREGISTERED = 0
    ACTIVE = 1
    INACTIVE = 2


@dataclass(frozen=True)
class ProviderStorage(Struct):
    root: Address = tl(ADDRESS)
    owner: Address = tl(ADDRESS)
    role: int = tl(UInt(8))
    state: int = tl(UInt(8))
    stake: int = tl(COINS)
    unstaking: int = tl(COINS)
    unlock_at: int = tl(UInt(32))
    claimed: int = tl(COINS)
    node: NodeInfo | None = tl(Optional(CellOf(NodeInfo)))
    terms: ProviderTerms | None = tl(Optional(CellOf(ProviderTerms)))


@dataclass(frozen=True)
class ProviderConfig:
    root: Address
    owner: Address
    role: Role


def provider_config_to_cell(config: ProviderConfig) -> Cell:
    """The deploy-time data: (root, owner, role) and zeros, as Root rebuilds it on chain."""
    return ProviderStorage(
        root=config.root,
        owner=config.owner,
        role=int(config.role),
        state=0,
        stake=0,
        unstaking=0,
        unlock_at=0,
        claimed=0,
        node=None,
        terms=None,
    ).to_cell()


@dataclass(frozen=True)
class ProviderData:
    root: Address
    owner: Address
    role: Role
    state: ProviderState
    stake: int
    unstaking: int
    unlock_at: int
    claimed: int
    min_stake: int
    cooldown: int
    reward_pool: Address | None
    node_key: int
    image_hash: int | None
    endpoint: str | None

    @property
    def active(self) -> bool:
        return self.state == ProviderState.ACTIVE


def stack_address(value: Any) -> Address | None:
    """An address (or null) as a getter returns it: a slice, or a cell holding one."""
    if value is None:
        return None
    s = value.begin_parse() if isinstance(value, Cell) else value
    if isinstance(s, Builder):
        s = s.end_cell().begin_parse()
    if not isinstance(s, Slice):
        raise TypeError(f"expected an address slice, got {type(value).__name__}")
    return s.load_address()


def _cell(value: Any) -> Cell:
    if isinstance(value, Slice):
        return value.to_cell()
    if not isinstance(value, Cell):
        raise TypeError(f"expected a cell, got {type(value).__name__}")
    return value


class Provider:
    """A Provider contract; the same class runs on the sandbox and on a real network.

    Registration goes through Root (`Root.send_register_provider`), which deploys this
    contract. Concurrency and cancellation: as for `Root` (stateless; cancelling before the
    provider sends is safe).
    """

    def __init__(self, address: Address, init: StateInit | None = None) -> None:
        self.address = address
        self.init = init

    @classmethod
    def create_from_address(cls, address: Address) -> Provider:
        return cls(address)

    @classmethod
    def create_from_config(cls, config: ProviderConfig, code: Cell, workchain: int = 0) -> Provider:
        init = StateInit(code=code, data=provider_config_to_cell(config))
        return cls(Address((workchain, init.serialize().hash)), init)

    # ---- message bodies ----------------------------------------------------------------
    @staticmethod
    def stake_body(*, amount: int, query_id: int = 0) -> Cell:
        return Stake(query_id=query_id, amount=amount).to_cell()

    @staticmethod
    def request_unstake_body(*, query_id: int = 0) -> Cell:
        return RequestUnstake(query_id=query_id).to_cell()

    @staticmethod
    def withdraw_body(*, amount: int, query_id: int = 0) -> Cell:
        return Withdraw(query_id=query_id, amount=amount).to_cell()

    @staticmethod
    def update_node_body(*, node_key: int | bytes, endpoint: str, query_id: int = 0) -> Cell:
        return UpdateNode(query_id=query_id, node_key=_u256(node_key), endpoint=endpoint).to_cell()

    @staticmethod
    def claim_reward_body(*, cumulative: int, path: int, proof: Cell, query_id: int = 0) -> Cell:
        return ClaimReward(query_id=query_id, cumulative=cumulative, path=path, proof=proof).to_cell()

    # ---- senders (registration goes through Root: see Root.send_register_provider) ------
    async def send_stake(
        self, provider: ContractProvider, via: Sender, *, value: int, amount: int, query_id: int = 0
    ) -> Any:
        return await provider.internal(via, value=value, body=self.stake_body(amount=amount, query_id=query_id))

    async def send_request_unstake(
        self, provider: ContractProvider, via: Sender, *, value: int, query_id: int = 0
    ) -> Any:
        return await provider.internal(via, value=value, body=self.request_unstake_body(query_id=query_id))

    async def send_withdraw(
        self, provider: ContractProvider, via: Sender, *, value: int, amount: int, query_id: int = 0
    ) -> Any:
        return await provider.internal(via, value=value, body=self.withdraw_body(amount=amount, query_id=query_id))

    async def send_update_node(
        self,
        provider: ContractProvider,
        via: Sender,
        *,
        value: int,
        node_key: int | bytes,
        endpoint: str,
        query_id: int = 0,
    ) -> Any:
        """Replace the node key and endpoint (owner only; the registered image hash stays).

        Attach PROVIDER_OP_FEE; the unspent value comes back as ReturnExcess. An endpoint that
        would make the NodeInfo deeper than MAX_NODE_INFO_DEPTH is refused (NODE_INFO_TOO_LARGE)."""
        body = self.update_node_body(node_key=node_key, endpoint=endpoint, query_id=query_id)
        return await provider.internal(via, value=value, body=body)

    async def send_claim_reward(
        self,
        provider: ContractProvider,
        via: Sender,
        *,
        cumulative: int,
        path: int,
        proof: Cell,
        value: int = CLAIM_VALUE,
        query_id: int = 0,
    ) -> Any:
        """Claim up to `cumulative` with a Merkle proof (`MerkleProof`: `.cumulative`, `.path`, `.cell`).

        The Provider records `cumulative` and forwards the difference to the pool, which pays
        this owner (ReceiveReward) or refuses, and the record goes back down on the bounce."""
        body = self.claim_reward_body(cumulative=cumulative, path=path, proof=proof, query_id=query_id)
        return await provider.internal(via, value=value, body=body)

    # ---- getters -------------------------------------------------------------------------
    async def get_provider_data(self, provider: ContractProvider) -> ProviderData:
        s = await provider.get("get_provider_data", [])
        return _provider_data(s)

    async def get_is_active(self, provider: ContractProvider) -> bool:
        s = await provider.get("get_is_active", [])
        return bool(s[0])


def _provider_data(s: Sequence[Any]) -> ProviderData:
    root, owner = stack_address(s[0]), stack_address(s[1])
    if root is None or owner is None:
        raise ValueError("get_provider_data returned addr_none for root/owner")
    return ProviderData(
        root=root,
        owner=owner,
        role=Role(s[2]),
        state=ProviderState(s[3]),
        stake=s[4],
        unstaking=s[5],
        unlock_at=s[6],
        claimed=s[7],
        min_stake=s[8],
        cooldown=s[9],
        reward_pool=stack_address(s[10]),
        node_key=s[11],
        image_hash=s[12],
        endpoint=None if s[13] is None else load_string(_cell(s[13])),
    )


def _u256(value: int | bytes) -> int:
    return int.from_bytes(value, "big") if isinstance(value, bytes) else value

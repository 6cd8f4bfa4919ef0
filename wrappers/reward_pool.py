"""RewardPool wrapper: revenue pots, epoch reports and provider claims.

`RewardPool.create_from_config(RewardPoolConfig(root), code)` gives the pool's address (a
function of Root only). Epoch reports and Merkle proofs are built with
`offchain.protocol.epoch` and `offchain.protocol.merkle`.
"""

# ruff: noqa: RUF009  -- `tl(...)` returns a dataclasses.field, not a shared default value

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pytoniq_core import Address, Cell, StateInit

from wrappers.messages import (
    ADDRESS,
    COINS,
    CellOf,
    DepositRevenue,
    EpochReport,
    Inline,
    Optional,
    PoolConfig,
    PostEpochReport,
    Struct,
    UInt,
    tl,
)
from wrappers.provider import stack_address

if TYPE_CHECKING:
    from offchain.ton.provider import ContractProvider, Sender

__all__ = [
    "CLAIM_FEE",
    "EPOCH_REPORT_FEE",
    "MAX_PROOF_DEPTH",
    "POOL_STORAGE_RESERVE",
    "ZERO_ROLES",
    "PoolData",
    "PoolEpochs",
    "PoolRoles",
    "PoolStorage",
    "RewardPool",
    "RewardPoolConfig",
    "RoleAmounts",
    "reward_pool_config_to_cell",
]

# Fee constants, mirrored from contracts/common/fees.tolk (checked by test_abi_mirror).
EPOCH_REPORT_FEE = 100_000_000  # ton("0.1"): least value on PostEpochReport; the rest returns
CLAIM_FEE = 50_000_000  # ton("0.05"): least value on ClaimReward above its forward fee (see CLAIM_VALUE)
POOL_STORAGE_RESERVE = 100_000_000  # ton("0.1"): kept by the pool above what it owes
MAX_PROOF_DEPTH = 34  # deepest proof cell a claim may carry (Merkle-proof cell, 32 levels, leaf)


@dataclass(frozen=True)
class RoleAmounts(Struct):
    """An amount per role, in role order (the sum tree's root children)."""

    gpu: int = tl(COINS)
    bandwidth: int = tl(COINS)
    router: int = tl(COINS)
    validator: int = tl(COINS)

    def as_tuple(self) -> tuple[int, int, int, int]:
        """The four amounts indexed by role (Role.GPU .. Role.VALIDATOR)."""
        return (self.gpu, self.bandwidth, self.router, self.validator)


ZERO_ROLES = RoleAmounts(gpu=0, bandwidth=0, router=0, validator=0)


@dataclass(frozen=True)
class PoolRoles(Struct):
    """The pool's per-role books: the current tree's root sums, and each role's carry."""

    totals: RoleAmounts = tl(Inline(RoleAmounts))
    carries: RoleAmounts = tl(Inline(RoleAmounts))


@dataclass(frozen=True)
class PoolEpochs(Struct):
    epoch: int = tl(UInt(32))
    carry: int = tl(COINS)
    roles: PoolRoles = tl(CellOf(PoolRoles))


@dataclass(frozen=True)
class PoolStorage(Struct):
    root: Address = tl(ADDRESS)
    compute_pot: int = tl(COINS)
    data_pot: int = tl(COINS)
    merkle_root: int = tl(UInt(256))
    root_total: int = tl(COINS)
    claimed: int = tl(COINS)
    epochs: PoolEpochs = tl(CellOf(PoolEpochs))
    config: PoolConfig | None = tl(Optional(CellOf(PoolConfig)))


@dataclass(frozen=True)
class RewardPoolConfig:
    root: Address


def reward_pool_config_to_cell(config: RewardPoolConfig) -> Cell:
    """The deploy-time data: the Root and zeros, as Root rebuilds it on chain."""
    return PoolStorage(
        root=config.root,
        compute_pot=0,
        data_pot=0,
        merkle_root=0,
        root_total=0,
        claimed=0,
        epochs=PoolEpochs(epoch=0, carry=0, roles=PoolRoles(totals=ZERO_ROLES, carries=ZERO_ROLES)),
        config=None,
    ).to_cell()


@dataclass(frozen=True)
class PoolData:
    root: Address
    compute_pot: int
    data_pot: int
    epoch: int
    merkle_root: int
    root_total: int
    claimed: int
    carry: int
    config_version: int  # -1 until Root pushed a config

    @property
    def owed(self) -> int:
        """What the pool owes: both pots, allocated-but-unclaimed, and the carry."""
        return self.compute_pot + self.data_pot + (self.root_total - self.claimed) + self.carry


class RewardPool:
    """The RewardPool contract; the same class runs on the sandbox and on a real network."""

    def __init__(self, address: Address, init: StateInit | None = None) -> None:
        self.address = address
        self.init = init

    @classmethod
    def create_from_address(cls, address: Address) -> RewardPool:
        return cls(address)

    @classmethod
    def create_from_config(cls, config: RewardPoolConfig, code: Cell, workchain: int = 0) -> RewardPool:
        init = StateInit(code=code, data=reward_pool_config_to_cell(config))
        return cls(Address((workchain, init.serialize().hash)), init)

    # ---- message bodies ------------------------------------------------------------------
    @staticmethod
    def deposit_revenue_body(*, compute: int, data: int, query_id: int = 0) -> Cell:
        return DepositRevenue(query_id=query_id, compute=compute, data=data).to_cell()

    @staticmethod
    def post_epoch_report_body(*, report: EpochReport, signatures: Mapping[int, bytes], query_id: int = 0) -> Cell:
        return PostEpochReport(query_id=query_id, report=report, signatures=dict(signatures)).to_cell()

    # ---- senders ---------------------------------------------------------------------------
    async def send_deploy(self, provider: ContractProvider, via: Sender, *, value: int) -> Any:
        return await provider.internal(via, value=value, body=None)

    async def send_deposit_revenue(
        self, provider: ContractProvider, via: Sender, *, value: int, compute: int, data: int, query_id: int = 0
    ) -> Any:
        body = self.deposit_revenue_body(compute=compute, data=data, query_id=query_id)
        return await provider.internal(via, value=value, body=body)

    async def send_post_epoch_report(
        self,
        provider: ContractProvider,
        via: Sender,
        *,
        report: EpochReport,
        signatures: Mapping[int, bytes],
        value: int = EPOCH_REPORT_FEE,
        query_id: int = 0,
    ) -> Any:
        body = self.post_epoch_report_body(report=report, signatures=signatures, query_id=query_id)
        return await provider.internal(via, value=value, body=body)

    # ---- getters ---------------------------------------------------------------------------
    async def get_pool_data(self, provider: ContractProvider) -> PoolData:
        s: Sequence[Any] = await provider.get("get_pool_data", [])
        root = stack_address(s[0])
        if root is None:
            raise ValueError("get_pool_data returned addr_none for root")
        return PoolData(root, *s[1:9])

    async def get_pool_roles(self, provider: ContractProvider) -> PoolRoles:
        """The per-role books (totals = the current tree's root sums, carries)."""
        s: Sequence[Any] = await provider.get("get_pool_roles", [])
        g, b, r, v, cg, cb, cr, cv = (int(x) for x in s[:8])
        return PoolRoles(RoleAmounts(g, b, r, v), RoleAmounts(cg, cb, cr, cv))

    async def get_pool_config(self, provider: ContractProvider) -> PoolConfig:
        s = await provider.get("get_pool_config", [])
        cell = s[0] if isinstance(s[0], Cell) else s[0].to_cell()
        return PoolConfig.from_cell(cell)

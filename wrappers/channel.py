"""Channel wrapper: the one-way payment channel between a client and a router.

`Channel.create_from_config(ChannelConfig(root, client, router, client_key, router_key), code)`
gives the deterministic address that Root recomputes to answer RequestChannelTerms.
Vouchers are signed off-chain with `offchain.protocol.voucher`; this class only builds and
sends the on-chain messages and reads the channel's state.
"""

# ruff: noqa: RUF009  -- `tl(...)` returns a dataclasses.field, not a shared default value

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import IntEnum
from typing import TYPE_CHECKING, Any

from pytoniq_core import Address, Cell, StateInit

from wrappers.messages import (
    ADDRESS,
    COINS,
    CellOf,
    ChannelKeys,
    ChannelParties,
    CooperativeClose,
    Deposit,
    FinishClose,
    Optional,
    RedeemVoucher,
    StartClose,
    Struct,
    UInt,
    tl,
)
from wrappers.provider import stack_address

if TYPE_CHECKING:
    from offchain.ton.provider import ContractProvider, Sender

__all__ = [
    "CHANNEL_DEPOSIT_FEE",
    "CHANNEL_TERMS_FEE",
    "POOL_DEPOSIT_FEE",
    "REDEEM_FEE",
    "Channel",
    "ChannelConfig",
    "ChannelData",
    "ChannelState",
    "ChannelStorage",
    "channel_config_to_cell",
]

# Fee constants, mirrored from contracts/common/fees.tolk (checked by test_abi_mirror).
CHANNEL_DEPOSIT_FEE = 20_000_000  # ton("0.02"): kept from each deposit, refunded at close
CHANNEL_TERMS_FEE = 10_000_000  # ton("0.01"): the channel's RequestChannelTerms to Root
REDEEM_FEE = 30_000_000  # ton("0.03"): least value on RedeemVoucher; the unspent part returns
POOL_DEPOSIT_FEE = 5_000_000  # ton("0.005"): attached to DepositRevenue for the pool's gas


class ChannelState(IntEnum):
    """Channel states (`CHANNEL_*` in contracts/common/storage.tolk)."""

    UNCONFIGURED = 0
    OPEN = 1
    CLOSING = 2
    CLOSED = 3


@dataclass(frozen=True)
class ChannelStorage(Struct):
    state: int = tl(UInt(8))
    deposit: int = tl(COINS)
    redeemed_compute: int = tl(COINS)
    redeemed_data: int = tl(COINS)
    close_at: int = tl(UInt(32))
    close_delay: int = tl(UInt(32))
    reward_pool: Address | None = tl(Optional(ADDRESS))
    parties: ChannelParties = tl(CellOf(ChannelParties))


@dataclass(frozen=True)
class ChannelConfig:
    root: Address
    client: Address
    router: Address
    client_key: int
    router_key: int

    @property
    def parties(self) -> ChannelParties:
        keys = ChannelKeys(client_key=self.client_key, router_key=self.router_key)
        return ChannelParties(root=self.root, client=self.client, router=self.router, keys=keys)


def channel_config_to_cell(config: ChannelConfig) -> Cell:
    """The deploy-time data: the parties and zeros, as Root rebuilds it on chain."""
    return ChannelStorage(
        state=ChannelState.UNCONFIGURED,
        deposit=0,
        redeemed_compute=0,
        redeemed_data=0,
        close_at=0,
        close_delay=0,
        reward_pool=None,
        parties=config.parties,
    ).to_cell()


@dataclass(frozen=True)
class ChannelData:
    state: ChannelState
    deposit: int
    redeemed_compute: int
    redeemed_data: int
    close_at: int
    close_delay: int
    reward_pool: Address | None
    root: Address
    client: Address
    router: Address
    client_key: int
    router_key: int

    @property
    def redeemed(self) -> int:
        return self.redeemed_compute + self.redeemed_data

    @property
    def unredeemed(self) -> int:
        """What vouchers may still claim: the deposit less what was redeemed."""
        return self.deposit - self.redeemed


def _must(addr: Address | None, what: str) -> Address:
    if addr is None:
        raise ValueError(f"get_channel_data returned addr_none for {what}")
    return addr


def _channel_data(s: Sequence[Any]) -> ChannelData:
    return ChannelData(
        state=ChannelState(s[0]),
        deposit=s[1],
        redeemed_compute=s[2],
        redeemed_data=s[3],
        close_at=s[4],
        close_delay=s[5],
        reward_pool=stack_address(s[6]),
        root=_must(stack_address(s[7]), "root"),
        client=_must(stack_address(s[8]), "client"),
        router=_must(stack_address(s[9]), "router"),
        client_key=s[10],
        router_key=s[11],
    )


class Channel:
    """A Channel contract; the same class runs on the sandbox and on a real network.

    Stateless besides the address: any number of calls may run at once, and cancelling a
    send before the backend accepted it is safe.
    """

    def __init__(self, address: Address, init: StateInit | None = None) -> None:
        self.address = address
        self.init = init

    @classmethod
    def create_from_address(cls, address: Address) -> Channel:
        return cls(address)

    @classmethod
    def create_from_config(cls, config: ChannelConfig, code: Cell, workchain: int = 0) -> Channel:
        init = StateInit(code=code, data=channel_config_to_cell(config))
        return cls(Address((workchain, init.serialize().hash)), init)

    # ---- message bodies ------------------------------------------------------------------
    @staticmethod
    def deposit_body(*, query_id: int = 0) -> Cell:
        return Deposit(query_id=query_id).to_cell()

    @staticmethod
    def redeem_voucher_body(*, compute: int, data: int, signature: bytes, query_id: int = 0) -> Cell:
        return RedeemVoucher(query_id=query_id, compute=compute, data=data, signature=signature).to_cell()

    @staticmethod
    def start_close_body(*, query_id: int = 0) -> Cell:
        return StartClose(query_id=query_id).to_cell()

    @staticmethod
    def finish_close_body(*, query_id: int = 0) -> Cell:
        return FinishClose(query_id=query_id).to_cell()

    @staticmethod
    def cooperative_close_body(*, compute: int, data: int, signature: bytes, query_id: int = 0) -> Cell:
        return CooperativeClose(query_id=query_id, compute=compute, data=data, signature=signature).to_cell()

    # ---- senders ---------------------------------------------------------------------------
    async def send_deposit(self, provider: ContractProvider, via: Sender, *, value: int, query_id: int = 0) -> Any:
        """Deploy (first deposit) or top up; `value - CHANNEL_DEPOSIT_FEE` is credited."""
        return await provider.internal(via, value=value, body=self.deposit_body(query_id=query_id))

    async def send_redeem_voucher(
        self,
        provider: ContractProvider,
        via: Sender,
        *,
        compute: int,
        data: int,
        signature: bytes,
        value: int = REDEEM_FEE,
        query_id: int = 0,
    ) -> Any:
        body = self.redeem_voucher_body(compute=compute, data=data, signature=signature, query_id=query_id)
        return await provider.internal(via, value=value, body=body)

    async def send_start_close(
        self, provider: ContractProvider, via: Sender, *, value: int = 50_000_000, query_id: int = 0
    ) -> Any:
        return await provider.internal(via, value=value, body=self.start_close_body(query_id=query_id))

    async def send_finish_close(
        self, provider: ContractProvider, via: Sender, *, value: int = 50_000_000, query_id: int = 0
    ) -> Any:
        return await provider.internal(via, value=value, body=self.finish_close_body(query_id=query_id))

    async def send_cooperative_close(
        self,
        provider: ContractProvider,
        via: Sender,
        *,
        compute: int,
        data: int,
        signature: bytes,
        value: int = 50_000_000,
        query_id: int = 0,
    ) -> Any:
        body = self.cooperative_close_body(compute=compute, data=data, signature=signature, query_id=query_id)
        return await provider.internal(via, value=value, body=body)

    # ---- getters ---------------------------------------------------------------------------
    async def get_channel_data(self, provider: ContractProvider) -> ChannelData:
        return _channel_data(await provider.get("get_channel_data", []))

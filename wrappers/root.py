"""Root wrapper: the foundation's registry and configuration.

Blueprint-shaped: `RootConfig` + `root_config_to_cell()`, `Root.create_from_config(config,
code)` / `Root.create_from_address(addr)`, one static `<message>_body()` and one
`send_<message>()` per incoming message, one `get_<thing>()` per getter returning a
dataclass. Works with any `ContractProvider` (sandbox now, a network later).
"""

# ruff: noqa: RUF009  -- `tl(...)` returns a dataclasses.field, not a shared default value

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pytoniq_core import Address, Cell, StateInit, begin_cell

if TYPE_CHECKING:
    from offchain.ton.provider import ContractProvider, Sender

from wrappers.messages import (
    ADDRESS,
    BOOL,
    CELL,
    COINS,
    STRING,
    AcceptOwnership,
    AddImageHash,
    AddModelHash,
    AnchorDataset,
    CellOf,
    ComputeSplit,
    DataSplit,
    Dict,
    Inline,
    NodeInfo,
    Optional,
    ProviderTerms,
    PushPoolConfig,
    RegisterProvider,
    RelaySlash,
    RemoveImageHash,
    RemoveModelHash,
    SetCloseDelay,
    SetDevAttestation,
    SetPrices,
    SetRewardPool,
    SetRoleParams,
    SetRouter,
    SetSplits,
    SetTreasury,
    SetValidators,
    SlashOrder,
    Struct,
    TransferOwnership,
    UInt,
    UpgradeCode,
    load_string,
    tl,
)
from wrappers.provider import BASIS_POINTS, Role, stack_address

__all__ = [
    "ANCHOR_FEE",
    "BASIS_POINTS",
    "ChildCodes",
    "OtherCodes",
    "RoleParams",
    "RoleTable",
    "Root",
    "RootConfig",
    "RootData",
    "RootMore",
    "RootParamsReply",
    "RootStorage",
    "SplitTables",
    "ValidatorSet",
    "root_config_to_cell",
    "slash_order_hash",
]

U8, U32, U64, U256 = UInt(8), UInt(32), UInt(64), UInt(256)


# ---- storage mirror (contracts/root.tolk) ------------------------------------------------


@dataclass(frozen=True)
class RoleTable(Struct):
    gpu: ProviderTerms = tl(CellOf(ProviderTerms))
    bandwidth: ProviderTerms = tl(CellOf(ProviderTerms))
    router: ProviderTerms = tl(CellOf(ProviderTerms))
    validator: ProviderTerms = tl(CellOf(ProviderTerms))


@dataclass(frozen=True)
class OtherCodes(Struct):
    channel: Cell = tl(CELL)
    reward_pool: Cell = tl(CELL)


@dataclass(frozen=True)
class RootMore(Struct):
    model_hashes: dict[int, bool] = tl(Dict(U256, BOOL))
    routers: dict[Address, str] = tl(Dict(ADDRESS, STRING))
    treasury: Address = tl(ADDRESS)
    reward_pool: Address | None = tl(Optional(ADDRESS))
    pending_owner: Address | None = tl(Optional(ADDRESS))
    validators: dict[int, bool] = tl(Dict(U256, BOOL))
    validator_count: int = tl(U8)
    threshold: int = tl(U8)
    other_codes: OtherCodes = tl(CellOf(OtherCodes))


@dataclass(frozen=True)
class RootStorage(Struct):
    owner: Address = tl(ADDRESS)
    version: int = tl(U32)
    last_slash_nonce: int = tl(U64)
    slash_nonce_window: int = tl(U64)
    compute_unit_price: int = tl(COINS)
    data_unit_price: int = tl(COINS)
    compute_split: ComputeSplit = tl(Inline(ComputeSplit))
    data_split: DataSplit = tl(Inline(DataSplit))
    close_delay: int = tl(U32)
    provider_code: Cell = tl(CELL)
    roles: RoleTable = tl(CellOf(RoleTable))
    image_hashes: dict[int, bool] = tl(Dict(U256, BOOL))
    more: RootMore = tl(CellOf(RootMore))
    dev_attestation: bool = tl(BOOL)


# ---- config ----------------------------------------------------------------------------


@dataclass(frozen=True)
class RoleParams:
    """Minimum stake (nanoTON) and unstake cooldown (seconds) of one role."""

    min_stake: int
    cooldown: int


def _default_roles() -> dict[Role, RoleParams]:
    return {role: RoleParams(min_stake=10 * 10**9, cooldown=7 * 86400) for role in Role}


@dataclass
class RootConfig:
    """Initial Root state. Splits default to 70/15/10/5 %; every role to 10 TON, 7 days.

    `dev_attestation` (default off) lets agents accept the insecure `dev` attestation
    (no TEE hardware): for localnet only.
    """

    owner: Address
    treasury: Address
    provider_code: Cell
    channel_code: Cell = field(default_factory=Cell.empty)
    reward_pool_code: Cell = field(default_factory=Cell.empty)
    reward_pool: Address | None = None
    compute_unit_price: int = 0
    data_unit_price: int = 0
    compute_split: ComputeSplit = field(
        default_factory=lambda: ComputeSplit(gpu=7000, router=1500, validator=1000, protocol=500)
    )
    data_split: DataSplit = field(
        default_factory=lambda: DataSplit(bandwidth=7000, router=1500, validator=1000, protocol=500)
    )
    roles: Mapping[Role, RoleParams] = field(default_factory=_default_roles)
    close_delay: int = 86400
    model_hashes: Iterable[int] = ()
    image_hashes: Iterable[int] = ()
    routers: Mapping[Address, str] = field(default_factory=dict)
    validators: Sequence[int] = ()
    threshold: int = 0
    version: int = 0
    dev_attestation: bool = False


def _split_sum(split: ComputeSplit | DataSplit) -> int:
    return sum(getattr(split, f) for f in ("router", "validator", "protocol")) + (
        split.gpu if isinstance(split, ComputeSplit) else split.bandwidth
    )


# Mirrored from contracts/common/fees.tolk: the longest durations Root accepts.
MAX_COOLDOWN = 31_622_400  # 366 days
MAX_CLOSE_DELAY = 2_592_000  # 30 days
SLASH_NONCE_WINDOW = 64  # slashing nonces below the newest still usable (once each)
ANCHOR_FEE = 10_000_000  # 0.01 TON: least value for AnchorDataset; Root keeps none, the rest comes back


def root_config_to_cell(config: RootConfig) -> Cell:
    """Root's data cell; raises ValueError on a config the contract itself would reject."""
    if config.close_delay > MAX_CLOSE_DELAY:
        raise ValueError(f"close_delay {config.close_delay} s exceeds {MAX_CLOSE_DELAY} s")
    for role, params in config.roles.items():
        if params.cooldown > MAX_COOLDOWN:
            raise ValueError(f"cooldown of {Role(role).name.lower()} exceeds {MAX_COOLDOWN} s")
    for name in ("compute_split", "data_split"):
        total = _split_sum(getattr(config, name))
        if total != BASIS_POINTS:
            raise ValueError(f"{name} sums to {total}, not {BASIS_POINTS}")
    validators = list(config.validators)
    if len(set(validators)) != len(validators):
        raise ValueError("duplicate validator keys")
    if validators and not 1 <= config.threshold <= len(validators):
        raise ValueError(f"threshold {config.threshold} outside 1..{len(validators)}")
    missing = set(Role) - set(config.roles)
    if missing:
        raise ValueError(f"role params missing for {sorted(r.name for r in missing)}")
    terms = {
        r.name.lower(): ProviderTerms(
            min_stake=config.roles[r].min_stake, cooldown=config.roles[r].cooldown, reward_pool=config.reward_pool
        )
        for r in Role
    }
    return RootStorage(
        owner=config.owner,
        version=config.version,
        last_slash_nonce=0,
        slash_nonce_window=0,
        compute_unit_price=config.compute_unit_price,
        data_unit_price=config.data_unit_price,
        compute_split=config.compute_split,
        data_split=config.data_split,
        close_delay=config.close_delay,
        provider_code=config.provider_code,
        roles=RoleTable(**terms),
        image_hashes=dict.fromkeys(config.image_hashes, True),
        more=RootMore(
            model_hashes=dict.fromkeys(config.model_hashes, True),
            routers=dict(config.routers),
            treasury=config.treasury,
            reward_pool=config.reward_pool,
            pending_owner=None,
            validators=dict.fromkeys(validators, True),
            validator_count=len(validators),
            threshold=config.threshold,
            other_codes=OtherCodes(channel=config.channel_code, reward_pool=config.reward_pool_code),
        ),
        dev_attestation=config.dev_attestation,
    ).to_cell()


def slash_order_hash(order: SlashOrder) -> bytes:
    """What each validator signs (ed25519) for a slashing order: the order cell's hash."""
    return order.to_cell().hash


# ---- getter replies ----------------------------------------------------------------------


@dataclass(frozen=True)
class RootData:
    owner: Address
    pending_owner: Address | None
    version: int
    last_slash_nonce: int


@dataclass(frozen=True)
class RootParamsReply:
    treasury: Address
    reward_pool: Address | None
    compute_unit_price: int
    data_unit_price: int
    close_delay: int
    dev_attestation: bool
    """Whether agents may accept the insecure `dev` attestation (no TEE hardware)."""


@dataclass(frozen=True)
class ChildCodes:
    provider: Cell
    channel: Cell
    reward_pool: Cell


@dataclass(frozen=True)
class SplitTables:
    compute: ComputeSplit
    data: DataSplit


@dataclass(frozen=True)
class ValidatorSet:
    validators: frozenset[int]
    count: int
    threshold: int


def _u256(value: int | bytes) -> int:
    return int.from_bytes(value, "big") if isinstance(value, bytes) else value


def _addr_arg(addr: Address) -> Any:
    return begin_cell().store_address(addr).end_cell().begin_parse()


def _must(addr: Address | None) -> Address:
    if addr is None:
        raise ValueError("getter returned addr_none where an address was expected")
    return addr


def _as_cell(value: Any) -> Cell | None:
    if value is None or isinstance(value, Cell):
        return value
    return value.to_cell()


class Root:
    """The Root contract; the same class runs on the sandbox and on a real network.

    Every `send_*` builds a body with the matching static `*_body()` and hands it to the
    `ContractProvider`; every `get_*` runs one getter and decodes its stack into a
    dataclass. The class holds no state besides the address, so any number of calls may run
    concurrently; cancelling one before the provider has sent is safe (nothing was sent),
    after that the message may still land on chain.
    """

    def __init__(self, address: Address, init: StateInit | None = None) -> None:
        self.address = address
        self.init = init

    @classmethod
    def create_from_address(cls, address: Address) -> Root:
        return cls(address)

    @classmethod
    def create_from_config(cls, config: RootConfig, code: Cell, workchain: int = 0) -> Root:
        init = StateInit(code=code, data=root_config_to_cell(config))
        return cls(Address((workchain, init.serialize().hash)), init)

    async def send_deploy(self, provider: ContractProvider, via: Sender, *, value: int) -> Any:
        """Deploy with an empty body (the provider attaches StateInit)."""
        return await provider.internal(via, value=value, body=None)

    # ---- message bodies ------------------------------------------------------------------
    @staticmethod
    def set_prices_body(*, compute_unit_price: int, data_unit_price: int, query_id: int = 0) -> Cell:
        return SetPrices(
            query_id=query_id, compute_unit_price=compute_unit_price, data_unit_price=data_unit_price
        ).to_cell()

    @staticmethod
    def set_splits_body(*, compute: ComputeSplit, data: DataSplit, query_id: int = 0) -> Cell:
        return SetSplits(query_id=query_id, compute=compute, data=data).to_cell()

    @staticmethod
    def set_role_params_body(*, role: int, min_stake: int, cooldown: int, query_id: int = 0) -> Cell:
        return SetRoleParams(query_id=query_id, role=int(role), min_stake=min_stake, cooldown=cooldown).to_cell()

    @staticmethod
    def set_close_delay_body(*, close_delay: int, query_id: int = 0) -> Cell:
        return SetCloseDelay(query_id=query_id, close_delay=close_delay).to_cell()

    @staticmethod
    def set_dev_attestation_body(*, allowed: bool, query_id: int = 0) -> Cell:
        return SetDevAttestation(query_id=query_id, allowed=allowed).to_cell()

    @staticmethod
    def set_treasury_body(*, treasury: Address, query_id: int = 0) -> Cell:
        return SetTreasury(query_id=query_id, treasury=treasury).to_cell()

    @staticmethod
    def set_reward_pool_body(*, reward_pool: Address, query_id: int = 0) -> Cell:
        return SetRewardPool(query_id=query_id, reward_pool=reward_pool).to_cell()

    @staticmethod
    def add_model_hash_body(*, hash: int, query_id: int = 0) -> Cell:
        return AddModelHash(query_id=query_id, hash=hash).to_cell()

    @staticmethod
    def remove_model_hash_body(*, hash: int, query_id: int = 0) -> Cell:
        return RemoveModelHash(query_id=query_id, hash=hash).to_cell()

    @staticmethod
    def add_image_hash_body(*, hash: int, query_id: int = 0) -> Cell:
        return AddImageHash(query_id=query_id, hash=hash).to_cell()

    @staticmethod
    def remove_image_hash_body(*, hash: int, query_id: int = 0) -> Cell:
        return RemoveImageHash(query_id=query_id, hash=hash).to_cell()

    @staticmethod
    def set_validators_body(*, validators: Iterable[int], threshold: int, query_id: int = 0) -> Cell:
        return SetValidators(
            query_id=query_id, threshold=threshold, validators=dict.fromkeys(validators, True)
        ).to_cell()

    @staticmethod
    def set_router_body(*, router: Address, endpoint: str | None, query_id: int = 0) -> Cell:
        return SetRouter(query_id=query_id, router=router, endpoint=endpoint).to_cell()

    @staticmethod
    def transfer_ownership_body(*, new_owner: Address, query_id: int = 0) -> Cell:
        return TransferOwnership(query_id=query_id, new_owner=new_owner).to_cell()

    @staticmethod
    def accept_ownership_body(*, query_id: int = 0) -> Cell:
        return AcceptOwnership(query_id=query_id).to_cell()

    @staticmethod
    def upgrade_code_body(*, code: Cell, data: Cell | None = None, query_id: int = 0) -> Cell:
        return UpgradeCode(query_id=query_id, code=code, data=data).to_cell()

    @staticmethod
    def register_provider_body(
        *,
        role: int,
        stake: int,
        node_key: int | bytes,
        endpoint: str,
        image_hash: int | bytes | None = None,
        query_id: int = 0,
    ) -> Cell:
        """Register the sender's Provider for `role` with `stake` (gpu needs an allowlisted image)."""
        node = NodeInfo(
            node_key=_u256(node_key), image_hash=None if image_hash is None else _u256(image_hash), endpoint=endpoint
        )
        return RegisterProvider(query_id=query_id, role=int(role), stake=stake, node=node).to_cell()

    @staticmethod
    def relay_slash_body(*, order: SlashOrder, signatures: Mapping[int, bytes], query_id: int = 0) -> Cell:
        """`signatures`: validator public key (int) -> ed25519 signature of `slash_order_hash(order)`."""
        return RelaySlash(query_id=query_id, order=order, signatures=dict(signatures)).to_cell()

    @staticmethod
    def anchor_dataset_body(digest: int | bytes, query_id: int = 0) -> Cell:
        """Anyone: anchor a dataset manifest's digest (32 bytes, `manifest_digest`); attach ANCHOR_FEE."""
        if isinstance(digest, bytes) and len(digest) != 32:
            raise ValueError(f"a digest is 32 bytes, not {len(digest)}")
        return AnchorDataset(query_id=query_id, digest=_u256(digest)).to_cell()

    # ---- senders ---------------------------------------------------------------------------
    @staticmethod
    def push_pool_config_body(*, query_id: int = 0) -> Cell:
        return PushPoolConfig(query_id=query_id).to_cell()

    async def _send(self, provider: ContractProvider, via: Sender, value: int, body: Cell) -> Any:
        return await provider.internal(via, value=value, body=body)

    async def send_push_pool_config(
        self, provider: ContractProvider, via: Sender, *, value: int = 50_000_000, query_id: int = 0
    ) -> Any:
        """Anyone: send Root's split tables, validator set and Provider code to the reward pool."""
        return await self._send(provider, via, value, self.push_pool_config_body(query_id=query_id))

    async def send_anchor_dataset(
        self,
        provider: ContractProvider,
        via: Sender,
        *,
        digest: int | bytes,
        value: int = ANCHOR_FEE,
        query_id: int = 0,
    ) -> Any:
        """Anyone: log `digest` on chain (DatasetAnchored); the unspent value comes back."""
        return await self._send(provider, via, value, self.anchor_dataset_body(digest, query_id))

    async def send_set_prices(
        self,
        provider: ContractProvider,
        via: Sender,
        *,
        value: int,
        compute_unit_price: int,
        data_unit_price: int,
        query_id: int = 0,
    ) -> Any:
        return await self._send(
            provider,
            via,
            value,
            self.set_prices_body(
                compute_unit_price=compute_unit_price, data_unit_price=data_unit_price, query_id=query_id
            ),
        )

    async def send_set_splits(
        self,
        provider: ContractProvider,
        via: Sender,
        *,
        value: int,
        compute: ComputeSplit,
        data: DataSplit,
        query_id: int = 0,
    ) -> Any:
        return await self._send(
            provider, via, value, self.set_splits_body(compute=compute, data=data, query_id=query_id)
        )

    async def send_set_role_params(
        self,
        provider: ContractProvider,
        via: Sender,
        *,
        value: int,
        role: int,
        min_stake: int,
        cooldown: int,
        query_id: int = 0,
    ) -> Any:
        return await self._send(
            provider,
            via,
            value,
            self.set_role_params_body(role=role, min_stake=min_stake, cooldown=cooldown, query_id=query_id),
        )

    async def send_set_close_delay(
        self, provider: ContractProvider, via: Sender, *, value: int, close_delay: int, query_id: int = 0
    ) -> Any:
        return await self._send(
            provider, via, value, self.set_close_delay_body(close_delay=close_delay, query_id=query_id)
        )

    async def send_set_dev_attestation(
        self, provider: ContractProvider, via: Sender, *, value: int, allowed: bool, query_id: int = 0
    ) -> Any:
        """Owner only: allow (True) or forbid (False) the insecure `dev` attestation."""
        return await self._send(provider, via, value, self.set_dev_attestation_body(allowed=allowed, query_id=query_id))

    async def send_set_treasury(
        self, provider: ContractProvider, via: Sender, *, value: int, treasury: Address, query_id: int = 0
    ) -> Any:
        return await self._send(provider, via, value, self.set_treasury_body(treasury=treasury, query_id=query_id))

    async def send_set_reward_pool(
        self, provider: ContractProvider, via: Sender, *, value: int, reward_pool: Address, query_id: int = 0
    ) -> Any:
        return await self._send(
            provider, via, value, self.set_reward_pool_body(reward_pool=reward_pool, query_id=query_id)
        )

    async def send_add_model_hash(
        self, provider: ContractProvider, via: Sender, *, value: int, hash: int, query_id: int = 0
    ) -> Any:
        return await self._send(provider, via, value, self.add_model_hash_body(hash=hash, query_id=query_id))

    async def send_remove_model_hash(
        self, provider: ContractProvider, via: Sender, *, value: int, hash: int, query_id: int = 0
    ) -> Any:
        return await self._send(provider, via, value, self.remove_model_hash_body(hash=hash, query_id=query_id))

    async def send_add_image_hash(
        self, provider: ContractProvider, via: Sender, *, value: int, hash: int, query_id: int = 0
    ) -> Any:
        return await self._send(provider, via, value, self.add_image_hash_body(hash=hash, query_id=query_id))

    async def send_remove_image_hash(
        self, provider: ContractProvider, via: Sender, *, value: int, hash: int, query_id: int = 0
    ) -> Any:
        return await self._send(provider, via, value, self.remove_image_hash_body(hash=hash, query_id=query_id))

    async def send_set_validators(
        self,
        provider: ContractProvider,
        via: Sender,
        *,
        value: int,
        validators: Iterable[int],
        threshold: int,
        query_id: int = 0,
    ) -> Any:
        return await self._send(
            provider,
            via,
            value,
            self.set_validators_body(validators=validators, threshold=threshold, query_id=query_id),
        )

    async def send_set_router(
        self,
        provider: ContractProvider,
        via: Sender,
        *,
        value: int,
        router: Address,
        endpoint: str | None,
        query_id: int = 0,
    ) -> Any:
        return await self._send(
            provider, via, value, self.set_router_body(router=router, endpoint=endpoint, query_id=query_id)
        )

    async def send_transfer_ownership(
        self, provider: ContractProvider, via: Sender, *, value: int, new_owner: Address, query_id: int = 0
    ) -> Any:
        return await self._send(
            provider, via, value, self.transfer_ownership_body(new_owner=new_owner, query_id=query_id)
        )

    async def send_accept_ownership(
        self, provider: ContractProvider, via: Sender, *, value: int, query_id: int = 0
    ) -> Any:
        return await self._send(provider, via, value, self.accept_ownership_body(query_id=query_id))

    async def send_upgrade_code(
        self,
        provider: ContractProvider,
        via: Sender,
        *,
        value: int,
        code: Cell,
        data: Cell | None = None,
        query_id: int = 0,
    ) -> Any:
        return await self._send(provider, via, value, self.upgrade_code_body(code=code, data=data, query_id=query_id))

    async def send_register_provider(
        self,
        provider: ContractProvider,
        via: Sender,
        *,
        value: int,
        role: int,
        stake: int,
        node_key: int | bytes,
        endpoint: str,
        image_hash: int | bytes | None = None,
        query_id: int = 0,
    ) -> Any:
        """Attach stake + REGISTER_FEE + the Provider's storage reserve; the rest comes back."""
        body = self.register_provider_body(
            role=role, stake=stake, node_key=node_key, endpoint=endpoint, image_hash=image_hash, query_id=query_id
        )
        return await self._send(provider, via, value, body)

    async def send_relay_slash(
        self,
        provider: ContractProvider,
        via: Sender,
        *,
        value: int,
        order: SlashOrder,
        signatures: Mapping[int, bytes],
        query_id: int = 0,
    ) -> Any:
        return await self._send(
            provider, via, value, self.relay_slash_body(order=order, signatures=signatures, query_id=query_id)
        )

    # ---- getters -----------------------------------------------------------------------------
    async def get_root_data(self, provider: ContractProvider) -> RootData:
        s = await provider.get("get_root_data", [])
        return RootData(
            owner=_must(stack_address(s[0])), pending_owner=stack_address(s[1]), version=s[2], last_slash_nonce=s[3]
        )

    async def get_params(self, provider: ContractProvider) -> RootParamsReply:
        s = await provider.get("get_params", [])
        return RootParamsReply(
            treasury=_must(stack_address(s[0])),
            reward_pool=stack_address(s[1]),
            compute_unit_price=s[2],
            data_unit_price=s[3],
            close_delay=s[4],
            dev_attestation=bool(s[5]),
        )

    async def get_split_tables(self, provider: ContractProvider) -> SplitTables:
        s = await provider.get("get_split_tables", [])
        return SplitTables(compute=ComputeSplit(*s[0:4]), data=DataSplit(*s[4:8]))

    async def get_role_params(self, provider: ContractProvider, role: int) -> ProviderTerms:
        s = await provider.get("get_role_params", [int(role)])
        return ProviderTerms(min_stake=s[0], cooldown=s[1], reward_pool=stack_address(s[2]))

    async def get_is_model_allowed(self, provider: ContractProvider, hash: int) -> bool:
        return bool((await provider.get("get_is_model_allowed", [hash]))[0])

    async def get_is_image_allowed(self, provider: ContractProvider, hash: int) -> bool:
        return bool((await provider.get("get_is_image_allowed", [hash]))[0])

    async def get_validator_set(self, provider: ContractProvider) -> ValidatorSet:
        s = await provider.get("get_validator_set", [])
        keys = Dict(U256, BOOL).from_cell(_as_cell(s[0]))
        return ValidatorSet(validators=frozenset(keys), count=s[1], threshold=s[2])

    async def get_router_endpoint(self, provider: ContractProvider, router: Address) -> str | None:
        s = await provider.get("get_router_endpoint", [_addr_arg(router)])
        cell = _as_cell(s[0])
        return None if cell is None else load_string(cell)

    async def get_provider_address(self, provider: ContractProvider, owner: Address, role: int) -> Address:
        s = await provider.get("get_provider_address", [_addr_arg(owner), int(role)])
        return _must(stack_address(s[0]))

    async def get_child_codes(self, provider: ContractProvider) -> ChildCodes:
        s = await provider.get("get_child_codes", [])
        return ChildCodes(provider=_as_cell(s[0]), channel=_as_cell(s[1]), reward_pool=_as_cell(s[2]))  # type: ignore[arg-type]

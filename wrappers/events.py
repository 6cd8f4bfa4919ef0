"""Typed chain events of the Cocoon contracts, decoded for the event watcher.

    registry = default_registry()
    async with Watcher(chain, [root, pool, *providers, *channels], store=store, registry=registry) as w:
        await w.run(handle)        # handle gets ProviderRegistered, VoucherRedeemed, EpochReported, ...

Each decoder reads one incoming message through the layout that `wrappers/messages.py`
owns (`<Struct>.from_cell`) and is registered by that message's opcode (`Op.*`). Only a
*successful* transaction that is not a bounce yields a typed event; a failed or bounced
one falls through to the watcher's generic events (`MessageReceived` with its exit code,
`MessageBounced`). The one typed bounce is `ClaimRefused`: a Provider taking its record
back when the pool refused a claim. A typed event of a transaction that also deployed the account is
followed by `AccountDeployed`, as the generic events are.

Where an amount is not in the incoming message, it is read from what the transaction
sent: `VoucherRedeemed` carries the `DepositRevenue` the channel sent to the pool,
`EpochReported` the protocol fee paid to the treasury, `ChannelClosed` the refund. Values
that live only in the contract's storage (a provider's new unlock time, Root's version
after an owner update) are not in the transaction and are left out: read them with the
wrapper's getter when needed.

Opcodes are unique per receiving contract, not per account, so a watcher that follows
wallets or foreign contracts too should scope the registry with `accounts=` (only then is
a `Staked` known to come from a Provider, not from anyone who sent that body to a wallet).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from pytoniq_core import Address

from offchain.ton._chain_types import ChainMessage, ChainTx
from offchain.ton.watcher import AccountDeployed, DecoderRegistry, WatchEvent
from wrappers.channel import CHANNEL_DEPOSIT_FEE
from wrappers.messages import (
    AcceptOwnership,
    AddImageHash,
    AddModelHash,
    ApplySlash,
    ChannelTerms,
    ClaimReward,
    ConfirmRegistration,
    CooperativeClose,
    Deposit,
    DepositRevenue,
    FinishClose,
    ForwardClaim,
    PostEpochReport,
    RedeemVoucher,
    RefuseRegistration,
    RegisterProvider,
    RemoveImageHash,
    RemoveModelHash,
    RequestUnstake,
    SetCloseDelay,
    SetDevAttestation,
    SetPrices,
    SetRewardPool,
    SetRoleParams,
    SetRouter,
    SetSplits,
    SetTreasury,
    SetValidators,
    Stake,
    StartClose,
    Struct,
    SyncPoolConfig,
    TransferOwnership,
    UpdateNode,
    UpgradeCode,
    Withdraw,
)
from wrappers.opcodes import Op
from wrappers.provider import ProviderStorage

__all__ = [
    "OWNER_OPS",
    "ChannelClosed",
    "ChannelClosing",
    "ChannelOpened",
    "ClaimPaid",
    "ClaimRefused",
    "Claimed",
    "ConfigChanged",
    "Deposited",
    "EpochReported",
    "NodeUpdated",
    "PoolConfigSynced",
    "ProviderRegistered",
    "RegistrationRefused",
    "RevenueDeposited",
    "Slashed",
    "Staked",
    "UnstakeRequested",
    "VoucherRedeemed",
    "Withdrawn",
    "default_registry",
]


# ---- events: Provider ----------------------------------------------------------------------
@dataclass(frozen=True, kw_only=True)
class ProviderRegistered(WatchEvent):
    """Root's ConfirmRegistration accepted: the Provider is active with `stake`.

    `owner` and `role` come from the StateInit Root deployed the Provider with (None if the
    message carried none, which a first registration always does).
    """

    root: str
    owner: str | None
    role: int | None
    stake: int
    node_key: int
    endpoint: str
    image_hash: int | None
    min_stake: int
    cooldown: int
    reward_pool: str | None


@dataclass(frozen=True, kw_only=True)
class RegistrationRefused(WatchEvent):
    """A registration was answered with RefuseRegistration (at Root: stake below minimum,
    image not allowed, invalid role; at the Provider: already registered)."""

    owner: str
    reason: int  # an ExitCode value
    role: int | None = None
    stake: int | None = None


@dataclass(frozen=True, kw_only=True)
class Staked(WatchEvent):
    owner: str
    amount: int


@dataclass(frozen=True, kw_only=True)
class UnstakeRequested(WatchEvent):
    """The whole stake moved to unstaking (its amount and unlock time are in the Provider's state)."""

    owner: str


@dataclass(frozen=True, kw_only=True)
class Withdrawn(WatchEvent):
    owner: str
    amount: int


@dataclass(frozen=True, kw_only=True)
class NodeUpdated(WatchEvent):
    """The owner replaced its node key and endpoint (UpdateNode); the image hash is unchanged."""

    owner: str
    node_key: int
    endpoint: str


@dataclass(frozen=True, kw_only=True)
class Slashed(WatchEvent):
    """A quorum-signed slash relayed by Root: `slashed` is what went to the treasury
    (at most `requested`: a provider cannot lose more than it holds)."""

    requested: int
    slashed: int
    reason_hash: int
    treasury: str


@dataclass(frozen=True, kw_only=True)
class Claimed(WatchEvent):
    """The Provider recorded its owner's claim up to `cumulative` and sent `payout` (the rise
    over its record) to `pool`; ClaimPaid follows, or ClaimRefused takes the record back."""

    owner: str
    cumulative: int
    payout: int
    pool: str


@dataclass(frozen=True, kw_only=True)
class ClaimRefused(WatchEvent):
    """The pool refused a claim and it bounced: the Provider's record went back down by
    `payout`, and what was left of the claim's value went back to the owner."""

    pool: str
    payout: int
    query_id: int


# ---- events: Channel -----------------------------------------------------------------------
@dataclass(frozen=True, kw_only=True)
class Deposited(WatchEvent):
    """A client deposit (the first one deploys the channel): `amount` is what was credited."""

    client: str
    amount: int
    first: bool


@dataclass(frozen=True, kw_only=True)
class ChannelOpened(WatchEvent):
    """Root's ChannelTerms accepted: vouchers can be redeemed from now on."""

    root: str
    close_delay: int
    reward_pool: str


@dataclass(frozen=True, kw_only=True)
class VoucherRedeemed(WatchEvent):
    """The router redeemed a voucher: `compute` + `data` went to the pool (the difference);
    `total_compute` / `total_data` are the voucher's cumulative totals."""

    router: str
    pool: str
    compute: int
    data: int
    total_compute: int
    total_data: int


@dataclass(frozen=True, kw_only=True)
class ChannelClosing(WatchEvent):
    """The client started a unilateral close: the router may redeem until the close delay ends."""

    client: str


@dataclass(frozen=True, kw_only=True)
class ChannelClosed(WatchEvent):
    """The channel closed and refunded the client (`how`: cooperative, finish, unconfigured).

    For a cooperative close, `compute` / `data` are what it still paid into the pool."""

    how: str
    client: str
    refund: int
    compute: int = 0
    data: int = 0


# ---- events: RewardPool --------------------------------------------------------------------
@dataclass(frozen=True, kw_only=True)
class RevenueDeposited(WatchEvent):
    src: str
    compute: int
    data: int


@dataclass(frozen=True, kw_only=True)
class EpochReported(WatchEvent):
    """A quorum-signed epoch report was adopted: the pots gave `compute_consumed` /
    `data_consumed`, the tree is `merkle_root` with `root_total`, the treasury got `protocol_fee`."""

    epoch: int
    compute_consumed: int
    data_consumed: int
    merkle_root: int
    root_total: int
    signers: int
    protocol_fee: int
    by: str


@dataclass(frozen=True, kw_only=True)
class ClaimPaid(WatchEvent):
    """The pool verified a claim's proof and paid `amount` (= cumulative - the Provider's
    record before) to `owner`; `to_owner` is all it sent (the amount and the unspent value)."""

    provider: str
    owner: str
    role: int
    amount: int
    cumulative: int
    to_owner: int


@dataclass(frozen=True, kw_only=True)
class PoolConfigSynced(WatchEvent):
    """Root pushed its configuration (the pool keeps it only if `version` is newer)."""

    version: int
    threshold: int
    validators: int
    treasury: str


# ---- events: Root --------------------------------------------------------------------------
@dataclass(frozen=True, kw_only=True)
class ConfigChanged(WatchEvent):
    """A successful owner operation at Root (each bumps Root's version; read it with
    `Root.get_root_data`). `change` is the decoded message, e.g. `SetPrices(...)`."""

    op: Op
    by: str
    change: Struct = field(repr=False)


OWNER_OPS: dict[Op, type[Struct]] = {
    Op.SET_PRICES: SetPrices,
    Op.SET_SPLITS: SetSplits,
    Op.SET_ROLE_PARAMS: SetRoleParams,
    Op.SET_CLOSE_DELAY: SetCloseDelay,
    Op.SET_DEV_ATTESTATION: SetDevAttestation,
    Op.SET_TREASURY: SetTreasury,
    Op.SET_REWARD_POOL: SetRewardPool,
    Op.ADD_MODEL_HASH: AddModelHash,
    Op.REMOVE_MODEL_HASH: RemoveModelHash,
    Op.ADD_IMAGE_HASH: AddImageHash,
    Op.REMOVE_IMAGE_HASH: RemoveImageHash,
    Op.SET_VALIDATORS: SetValidators,
    Op.SET_ROUTER: SetRouter,
    Op.TRANSFER_OWNERSHIP: TransferOwnership,
    Op.ACCEPT_OWNERSHIP: AcceptOwnership,
    Op.UPGRADE_CODE: UpgradeCode,
}
"""Root's owner operations (AcceptOwnership comes from the pending owner), with their layouts."""


# ---- decoding helpers ----------------------------------------------------------------------
TypedDecoder = Callable[[ChainTx, Any, ChainMessage], "WatchEvent | None"]


_PARSE_ERRORS = (ValueError, IndexError, KeyError, TypeError)
"""What pytoniq-core and the message codecs raise on a cell that does not fit a layout."""


def _raw(a: Address | None) -> str | None:
    return None if a is None else a.to_str(is_user_friendly=False)


def _out(tx: ChainTx, op: Op) -> ChainMessage | None:
    return next((m for m in tx.out_msgs if m.kind == "internal" and m.op == int(op)), None)


def _typed(struct: type[Struct], fn: TypedDecoder) -> Callable[[ChainTx], list[WatchEvent] | None]:
    """A watcher decoder: successful, non-bounced internal messages that parse as `struct`."""

    def decode(tx: ChainTx) -> list[WatchEvent] | None:
        m = tx.in_msg
        if m is None or m.kind != "internal" or m.bounced or not tx.success or m.src is None:
            return None
        try:
            event = fn(tx, struct.from_cell(m.body), m)
        except _PARSE_ERRORS:  # our opcode, not our layout (in or out): not a Cocoon contract's
            return None
        if event is None:
            return None
        return [event, AccountDeployed(tx=tx, index=1)] if tx.deployed else [event]

    decode.__name__ = f"decode_{struct.__name__}"
    return decode


def _confirm_registration(tx: ChainTx, msg: ConfirmRegistration, m: ChainMessage) -> WatchEvent:
    refused = _out(tx, Op.REFUSE_REGISTRATION)
    owner: str | None = None
    role: int | None = None
    if m.init is not None and m.init.data is not None:
        try:
            st = ProviderStorage.from_cell(m.init.data)
            owner, role = _raw(st.owner), st.role
        except _PARSE_ERRORS:
            pass
    if refused is not None:
        r = RefuseRegistration.from_cell(refused.body)
        return RegistrationRefused(tx=tx, owner=refused.dest or "", reason=r.reason, role=role, stake=msg.stake)
    if owner is None:
        excess = _out(tx, Op.RETURN_EXCESS)
        owner = excess.dest if excess is not None else None
    return ProviderRegistered(
        tx=tx,
        root=m.src or "",
        owner=owner,
        role=role,
        stake=msg.stake,
        node_key=msg.node.node_key,
        endpoint=msg.node.endpoint,
        image_hash=msg.node.image_hash,
        min_stake=msg.terms.min_stake,
        cooldown=msg.terms.cooldown,
        reward_pool=_raw(msg.terms.reward_pool),
    )


def _register_provider(tx: ChainTx, msg: RegisterProvider, m: ChainMessage) -> WatchEvent | None:
    refused = _out(tx, Op.REFUSE_REGISTRATION)
    if refused is None:
        return None  # forwarded to the Provider: its ConfirmRegistration is the event
    reason = RefuseRegistration.from_cell(refused.body).reason
    return RegistrationRefused(tx=tx, owner=m.src or "", reason=reason, role=msg.role, stake=msg.stake)


def _apply_slash(tx: ChainTx, msg: ApplySlash, m: ChainMessage) -> WatchEvent:
    paid = _out(tx, Op.RECEIVE_SLASHED_STAKE)
    slashed = paid.value if paid is not None else 0
    return Slashed(
        tx=tx, requested=msg.amount, slashed=slashed, reason_hash=msg.reason_hash, treasury=_raw(msg.treasury) or ""
    )


def _redeem(tx: ChainTx, msg: RedeemVoucher, m: ChainMessage) -> WatchEvent | None:
    out = _out(tx, Op.DEPOSIT_REVENUE)
    if out is None:
        return None
    paid = DepositRevenue.from_cell(out.body)
    return VoucherRedeemed(
        tx=tx,
        router=m.src or "",
        pool=out.dest or "",
        compute=paid.compute,
        data=paid.data,
        total_compute=msg.compute,
        total_data=msg.data,
    )


def _closed(how: str, tx: ChainTx, client: str) -> ChannelClosed | None:
    refund = _out(tx, Op.RECEIVE_REFUND)
    if refund is None:
        return None
    paid = _out(tx, Op.DEPOSIT_REVENUE)
    c = d = 0
    if paid is not None:
        dr = DepositRevenue.from_cell(paid.body)
        c, d = dr.compute, dr.data
    return ChannelClosed(tx=tx, how=how, client=refund.dest or client, refund=refund.value, compute=c, data=d)


def _claim_reward(tx: ChainTx, msg: ClaimReward, m: ChainMessage) -> WatchEvent | None:
    fwd = _out(tx, Op.FORWARD_CLAIM)
    if fwd is None:
        return None
    return Claimed(
        tx=tx,
        owner=m.src or "",
        cumulative=msg.cumulative,
        payout=ForwardClaim.from_cell(fwd.body).payout,
        pool=fwd.dest or "",
    )


def _claim_refused(tx: ChainTx) -> list[WatchEvent] | None:
    """A bounced ForwardClaim the Provider took back (the only bounce that is an event)."""
    m = tx.in_msg
    if m is None or m.kind != "internal" or not m.bounced or not tx.success or m.src is None:
        return None
    s = m.body_slice()
    try:
        s.skip_bits(32)  # the opcode, after the bounce prefix
        query_id, payout = s.load_uint(64), s.load_coins()
    except _PARSE_ERRORS:
        return None
    return [ClaimRefused(tx=tx, pool=m.src, payout=payout, query_id=query_id)]


def _channel_terms(tx: ChainTx, msg: ChannelTerms, m: ChainMessage) -> WatchEvent | None:
    if _out(tx, Op.RECEIVE_REFUND) is not None:  # the client closed before the terms arrived
        return _closed("unconfigured", tx, "")
    return ChannelOpened(tx=tx, root=m.src or "", close_delay=msg.close_delay, reward_pool=_raw(msg.reward_pool) or "")


def _start_close(tx: ChainTx, msg: StartClose, m: ChainMessage) -> WatchEvent | None:
    if _out(tx, Op.RECEIVE_REFUND) is not None:  # never configured: refunded at once
        return _closed("unconfigured", tx, m.src or "")
    return ChannelClosing(tx=tx, client=m.src or "")


def _post_epoch_report(tx: ChainTx, msg: PostEpochReport, m: ChainMessage) -> WatchEvent:
    r = msg.report
    fee = _out(tx, Op.RECEIVE_PROTOCOL_FEE)
    return EpochReported(
        tx=tx,
        epoch=r.epoch,
        compute_consumed=r.compute_consumed,
        data_consumed=r.data_consumed,
        merkle_root=r.merkle_root,
        root_total=r.root_total,
        signers=len(msg.signatures),
        protocol_fee=fee.value if fee is not None else 0,
        by=m.src or "",
    )


def _forward_claim(tx: ChainTx, msg: ForwardClaim, m: ChainMessage) -> WatchEvent:
    reward = _out(tx, Op.RECEIVE_REWARD)
    return ClaimPaid(
        tx=tx,
        provider=m.src or "",
        owner=_raw(msg.owner) or "",
        role=msg.role,
        amount=msg.payout,
        cumulative=msg.cumulative,
        to_owner=reward.value if reward is not None else 0,
    )


def _sync_pool_config(tx: ChainTx, msg: SyncPoolConfig, m: ChainMessage) -> WatchEvent:
    c = msg.config
    return PoolConfigSynced(
        tx=tx, version=c.version, threshold=c.threshold, validators=len(c.validators), treasury=_raw(c.treasury) or ""
    )


def _owner_op(op: Op) -> TypedDecoder:
    def decode(tx: ChainTx, msg: Any, m: ChainMessage) -> WatchEvent:
        return ConfigChanged(tx=tx, op=op, by=m.src or "", change=msg)

    return decode


_DECODERS: list[tuple[Op, type[Struct], TypedDecoder]] = [
    # Provider
    (Op.CONFIRM_REGISTRATION, ConfirmRegistration, _confirm_registration),
    (Op.STAKE, Stake, lambda tx, msg, m: Staked(tx=tx, owner=m.src or "", amount=msg.amount)),
    (Op.REQUEST_UNSTAKE, RequestUnstake, lambda tx, msg, m: UnstakeRequested(tx=tx, owner=m.src or "")),
    (Op.WITHDRAW, Withdraw, lambda tx, msg, m: Withdrawn(tx=tx, owner=m.src or "", amount=msg.amount)),
    (Op.APPLY_SLASH, ApplySlash, _apply_slash),
    (
        Op.UPDATE_NODE,
        UpdateNode,
        lambda tx, msg, m: NodeUpdated(tx=tx, owner=m.src or "", node_key=msg.node_key, endpoint=msg.endpoint),
    ),
    (Op.CLAIM_REWARD, ClaimReward, _claim_reward),
    # Channel
    (
        Op.DEPOSIT,
        Deposit,
        lambda tx, msg, m: Deposited(
            tx=tx,
            client=m.src or "",
            amount=m.value - CHANNEL_DEPOSIT_FEE,
            first=_out(tx, Op.REQUEST_CHANNEL_TERMS) is not None,
        ),
    ),
    (Op.CHANNEL_TERMS, ChannelTerms, _channel_terms),
    (Op.REDEEM_VOUCHER, RedeemVoucher, _redeem),
    (Op.START_CLOSE, StartClose, _start_close),
    (Op.FINISH_CLOSE, FinishClose, lambda tx, msg, m: _closed("finish", tx, m.src or "")),
    (Op.COOPERATIVE_CLOSE, CooperativeClose, lambda tx, msg, m: _closed("cooperative", tx, m.src or "")),
    # RewardPool
    (
        Op.DEPOSIT_REVENUE,
        DepositRevenue,
        lambda tx, msg, m: RevenueDeposited(
            tx=tx,
            src=m.src or "",
            compute=msg.compute,
            data=msg.data,
        ),
    ),
    (Op.POST_EPOCH_REPORT, PostEpochReport, _post_epoch_report),
    (Op.FORWARD_CLAIM, ForwardClaim, _forward_claim),
    (Op.SYNC_POOL_CONFIG, SyncPoolConfig, _sync_pool_config),
    # Root
    (Op.REGISTER_PROVIDER, RegisterProvider, _register_provider),
    *[(op, struct, _owner_op(op)) for op, struct in OWNER_OPS.items()],
]


def default_registry(
    registry: DecoderRegistry | None = None, *, accounts: Iterable[Address | str] | None = None
) -> DecoderRegistry:
    """A registry with a decoder for every Cocoon event above (added to `registry` if given).

    Args:
        registry: add to this registry (its earlier decoders keep precedence).
        accounts: restrict the decoders to these accounts (the Cocoon contracts a watcher
            follows); None: any account.
    """
    registry = registry if registry is not None else DecoderRegistry()
    scope = list(accounts) if accounts is not None else None
    for op, struct, fn in _DECODERS:
        registry.register(int(op), _typed(struct, fn), accounts=scope)
    registry.register(int(Op.FORWARD_CLAIM), _claim_refused, accounts=scope)
    return registry

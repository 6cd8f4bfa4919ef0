"""Typed events (wrappers/events.py) from the whole payment flow, through the watcher on the sandbox.

The foundation deploys with `scripts/deploy.py`, a router registers with `scripts/provider.py`,
a client opens a channel, the router redeems, a 2-of-3 validator quorum posts an epoch
report, the router claims with `provider claim --proof`, then stakes, replaces its node key
and endpoint with `provider update-node`, is slashed, unstakes, withdraws, and the client
closes. The watcher follows Root, the pool, the Provider and the Channel, and must report
exactly this story, in chain order.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
from nacl.signing import SigningKey
from pytoniq_core import begin_cell

from offchain.protocol.epoch import build_report, sign_report, split_revenue
from offchain.protocol.merkle import Leaf, MerkleSumTree
from offchain.protocol.voucher import sign_close_approval, sign_voucher
from offchain.ton.build import code_cell
from offchain.ton.network import NetworkProvider, WalletKey, WalletSender, create_network_provider
from offchain.ton.transaction import raw
from offchain.ton.watcher import (
    AccountDeployed,
    CursorStore,
    DecoderRegistry,
    MessageBounced,
    MessageReceived,
    Watcher,
    WatchEvent,
)
from scripts import deploy as deploy_script
from scripts import provider as provider_script
from scripts._common import fmt_ton
from wrappers.channel import CHANNEL_DEPOSIT_FEE, Channel, ChannelConfig
from wrappers.errors import ExitCode
from wrappers.events import (
    ChannelClosed,
    ChannelClosing,
    ChannelOpened,
    Claimed,
    ClaimPaid,
    ClaimRefused,
    ConfigChanged,
    Deposited,
    EpochReported,
    NodeUpdated,
    PoolConfigSynced,
    ProviderRegistered,
    RegistrationRefused,
    RevenueDeposited,
    Slashed,
    Staked,
    UnstakeRequested,
    VoucherRedeemed,
    Withdrawn,
    default_registry,
)
from wrappers.messages import ComputeSplit, DataSplit, SetDevAttestation, SetRewardPool, SlashOrder
from wrappers.opcodes import Op
from wrappers.provider import PROVIDER_OP_FEE, SLASH_RELAY_FEE, WITHDRAW_FEE, Provider, Role
from wrappers.root import slash_order_hash

TON = 10**9
VALIDATORS = [SigningKey(hashlib.sha256(f"cocoon-events-validator-{i}".encode()).digest()) for i in range(3)]
CLIENT_KEY = SigningKey(hashlib.sha256(b"cocoon-events-client").digest())
ROUTER_KEY = SigningKey(hashlib.sha256(b"cocoon-events-router").digest())


def pub(k: SigningKey) -> int:
    return int.from_bytes(bytes(k.verify_key), "big")


def params_file(path: Path) -> Path:
    keys = ", ".join(f'"{pub(k):064x}"' for k in VALIDATORS)
    path.write_text(
        f'validators = [{keys}]\nthreshold = 2\nclose_delay = 60\n[roles.router]\nmin_stake = "10"\ncooldown = 0\n'
    )
    return path


def as_wallet(net: NetworkProvider, i: int) -> NetworkProvider:
    """The same chain, paid for by funded sandbox wallet `i`."""
    return NetworkProvider(net.chain, WalletSender(net.chain, WalletKey.localnet(i)))


async def drain(watcher: Watcher) -> list[WatchEvent]:
    seen: list[WatchEvent] = []
    for tx in await watcher.poll():
        await watcher._handle(tx, lambda evs, db: seen.extend(evs))
    return seen


@pytest.fixture
async def net() -> NetworkProvider:
    return await create_network_provider("sandbox", env={})


async def test_payment_flow_yields_typed_events_in_chain_order(net: NetworkProvider, tmp_path, capsys) -> None:
    foundation, operator, client, router = net, as_wallet(net, 1), as_wallet(net, 2), as_wallet(net, 3)
    dep = await deploy_script.run(foundation, ["--params", str(params_file(tmp_path / "foundation.toml"))])
    root, pool = dep.root, dep.pool
    r = ["--root", root.address.to_str(), "--role", "router"]
    await provider_script.run(operator, ["register", *r, "--stake", "10", "--endpoint", "wss://router-1"])
    prov = Provider.create_from_address(
        await root.get_provider_address(net.open(root), operator.sender().address, Role.ROUTER)
    )
    # a second registration: the Provider itself refuses it (already registered)
    await root.send_register_provider(
        net.open(root),
        operator.sender(),
        value=11 * TON,
        role=Role.ROUTER,
        stake=10 * TON,
        node_key=1,
        endpoint="wss://again",
    )

    # the client opens a channel to the router; the router redeems a voucher, and replays it (refused)
    cfg = ChannelConfig(
        root.address, client.sender().address, router.sender().address, pub(CLIENT_KEY), pub(ROUTER_KEY)
    )
    ch = Channel.create_from_config(cfg, code_cell("Channel"))
    await (
        await ch.send_deposit(client.open(ch), client.sender(), value=10 * TON + CHANNEL_DEPOSIT_FEE)
    ).wait_delivered()
    v = sign_voucher(CLIENT_KEY, ch.address, compute=3 * TON, data=TON)
    for _ in range(2):
        sent = await ch.send_redeem_voucher(
            router.open(ch), router.sender(), compute=v.compute, data=v.data, signature=v.signature
        )
        await sent.wait_delivered()

    # the epoch: the routers' share goes to our one router; 2 of 3 validators sign
    split = split_revenue(v.compute, v.data, ComputeSplit(7000, 1500, 1000, 500), DataSplit(7000, 1500, 1000, 500))
    tree = MerkleSumTree([Leaf(prov.address, Role.ROUTER, split.router)])
    report = build_report(pool.address, 1, compute_consumed=v.compute, data_consumed=v.data, tree=tree)
    await pool.send_post_epoch_report(
        net.open(pool), foundation.sender(), report=report, signatures=sign_report(report, VALIDATORS[:2])
    )
    # a claim with a proof of a tree the pool never adopted: refused, the Provider takes it back
    stranger = MerkleSumTree([Leaf(prov.address, Role.ROUTER, split.router), Leaf(pool.address, Role.GPU, 1)])
    bad = stranger.proof(0)
    await prov.send_claim_reward(
        operator.open(prov), operator.sender(), cumulative=bad.cumulative, path=bad.path, proof=bad.cell
    )
    proof_file = tmp_path / "proof.json"
    proof_file.write_text(json.dumps(tree.proof(0).to_json()))
    capsys.readouterr()
    data = await provider_script.run(operator, ["claim", *r, "--proof", str(proof_file)])
    assert data.claimed == split.router
    assert f"claimed total {fmt_ton(split.router)}" in capsys.readouterr().out

    # stake more, get slashed by a quorum, unstake, withdraw (cooldown 0)
    pp, op_via = operator.open(prov), operator.sender()
    await prov.send_stake(pp, op_via, value=2 * TON + PROVIDER_OP_FEE, amount=2 * TON)
    new_key = pub(ROUTER_KEY)  # the node rebooted with a fresh key
    update = ["update-node", *r, "--node-key", f"{new_key:064x}", "--endpoint", "wss://router-1b"]
    data = await provider_script.run(operator, update)
    assert (data.node_key, data.endpoint) == (new_key, "wss://router-1b")
    order = SlashOrder(root=root.address, target=prov.address, amount=TON, reason_hash=7, nonce=1)
    sigs = {pub(k): k.sign(slash_order_hash(order)).signature for k in VALIDATORS[1:]}
    await root.send_relay_slash(
        net.open(root), foundation.sender(), value=SLASH_RELAY_FEE * 2, order=order, signatures=sigs
    )
    await prov.send_request_unstake(pp, op_via, value=PROVIDER_OP_FEE)
    await prov.send_withdraw(pp, op_via, value=WITHDRAW_FEE, amount=5 * TON)

    # the client starts a unilateral close, then closes cooperatively with the router's approval
    await ch.send_start_close(client.open(ch), client.sender())
    approval = sign_close_approval(ROUTER_KEY, ch.address, compute=v.compute + TON, data=v.data)
    await ch.send_cooperative_close(
        client.open(ch), client.sender(), compute=v.compute + TON, data=v.data, signature=approval
    )

    accounts = [root.address, pool.address, prov.address, ch.address]
    w = Watcher(net.chain, accounts, store=CursorStore(tmp_path / "w.db"), registry=default_registry())
    events = await drain(w)
    name = {
        raw(root.address): "root",
        raw(pool.address): "pool",
        raw(prov.address): "provider",
        raw(ch.address): "channel",
    }
    story = [(name[e.account], e.kind) for e in events]
    assert story == [
        ("root", "MessageReceived"),  # deploy (empty body)
        ("root", "AccountDeployed"),
        ("pool", "MessageReceived"),  # deploy (empty body)
        ("pool", "AccountDeployed"),
        ("root", "ConfigChanged"),  # SetRewardPool
        ("root", "MessageReceived"),  # PushPoolConfig (anyone may)
        ("pool", "PoolConfigSynced"),
        ("root", "MessageReceived"),  # RegisterProvider, forwarded
        ("provider", "ProviderRegistered"),
        ("provider", "AccountDeployed"),
        ("root", "MessageReceived"),  # RegisterProvider again
        ("provider", "RegistrationRefused"),
        ("channel", "Deposited"),
        ("channel", "AccountDeployed"),
        ("root", "MessageReceived"),  # RequestChannelTerms
        ("channel", "ChannelOpened"),
        ("channel", "VoucherRedeemed"),
        ("pool", "RevenueDeposited"),
        ("channel", "MessageReceived"),  # the replay, refused
        ("pool", "EpochReported"),
        ("provider", "Claimed"),  # recorded, forwarded to the pool...
        ("pool", "MessageReceived"),  # ...which refuses the stranger's proof
        ("provider", "ClaimRefused"),  # the bounce takes the record back
        ("provider", "Claimed"),
        ("pool", "ClaimPaid"),  # paid to the owner directly
        ("provider", "Staked"),
        ("provider", "NodeUpdated"),
        ("root", "MessageReceived"),  # RelaySlash
        ("provider", "Slashed"),
        ("provider", "UnstakeRequested"),
        ("provider", "Withdrawn"),
        ("channel", "ChannelClosing"),
        ("channel", "ChannelClosed"),  # cooperative: pays the last difference, refunds the rest
        ("pool", "RevenueDeposited"),
    ]
    assert [e.lt for e in events] == sorted(e.lt for e in events)
    by_kind: dict[type, list[WatchEvent]] = {}
    for e in events:
        by_kind.setdefault(type(e), []).append(e)

    (changed,) = by_kind[ConfigChanged]
    assert changed.op == Op.SET_REWARD_POOL and isinstance(changed.change, SetRewardPool)
    assert changed.change.reward_pool == pool.address and changed.by == raw(foundation.sender().address)
    (synced,) = by_kind[PoolConfigSynced]
    assert (synced.version, synced.threshold, synced.validators) == (dep.root_version, 2, 3)
    (registered,) = by_kind[ProviderRegistered]
    assert registered.owner == raw(operator.sender().address) and registered.role == Role.ROUTER
    assert registered.stake == 10 * TON and registered.endpoint == "wss://router-1"
    assert registered.reward_pool == raw(pool.address) and registered.cooldown == 0
    (refused,) = by_kind[RegistrationRefused]
    assert refused.reason == ExitCode.ALREADY_REGISTERED and refused.owner == raw(operator.sender().address)
    (deposited,) = by_kind[Deposited]
    assert deposited.amount == 10 * TON and deposited.first and deposited.client == raw(client.sender().address)
    (opened,) = by_kind[ChannelOpened]
    assert opened.close_delay == 60 and opened.reward_pool == raw(pool.address)
    (redeemed,) = by_kind[VoucherRedeemed]
    assert (redeemed.compute, redeemed.data, redeemed.total_compute, redeemed.total_data) == (
        3 * TON,
        TON,
        3 * TON,
        TON,
    )
    assert redeemed.router == raw(router.sender().address) and redeemed.pool == raw(pool.address)
    replay = next(e for e in events if isinstance(e, MessageReceived) and name[e.account] == "channel")
    assert not replay.success and replay.exit_code == ExitCode.STALE_VOUCHER and replay.op == Op.REDEEM_VOUCHER
    deposits = by_kind[RevenueDeposited]
    assert [(d.compute, d.data, d.src) for d in deposits] == [
        (3 * TON, TON, raw(ch.address)),
        (TON, 0, raw(ch.address)),
    ]
    (epoch,) = by_kind[EpochReported]
    assert (epoch.epoch, epoch.compute_consumed, epoch.data_consumed) == (1, 3 * TON, TON)
    assert epoch.merkle_root == int.from_bytes(tree.root_hash, "big") and epoch.root_total == split.router
    assert epoch.signers == 2 and epoch.protocol_fee >= split.protocol
    (paid,) = by_kind[ClaimPaid]
    assert (paid.amount, paid.cumulative, paid.role) == (split.router, split.router, Role.ROUTER)
    assert paid.provider == raw(prov.address) and paid.owner == raw(operator.sender().address)
    assert paid.to_owner > split.router
    for claimed in by_kind[Claimed]:  # the refused claim and the paid one: the same figures
        assert (claimed.cumulative, claimed.payout) == (split.router, split.router)
        assert claimed.owner == raw(operator.sender().address) and claimed.pool == raw(pool.address)
    (refused,) = by_kind[ClaimRefused]
    assert (refused.payout, refused.pool, refused.account) == (split.router, raw(pool.address), raw(prov.address))
    refusal = next(e for e in events if isinstance(e, MessageReceived) and name[e.account] == "pool" and not e.success)
    assert refusal.exit_code == ExitCode.INVALID_PROOF and refusal.op == Op.FORWARD_CLAIM
    assert by_kind[Staked][0].amount == 2 * TON
    (updated,) = by_kind[NodeUpdated]
    assert (updated.owner, updated.node_key, updated.endpoint) == (
        raw(operator.sender().address),
        new_key,
        "wss://router-1b",
    )
    (slashed,) = by_kind[Slashed]
    assert (slashed.requested, slashed.slashed, slashed.reason_hash) == (TON, TON, 7)
    assert by_kind[UnstakeRequested][0].owner == raw(operator.sender().address)
    assert by_kind[Withdrawn][0].amount == 5 * TON
    assert by_kind[ChannelClosing][0].client == raw(client.sender().address)
    (closed,) = by_kind[ChannelClosed]
    assert closed.how == "cooperative" and (closed.compute, closed.data) == (TON, 0)
    assert closed.client == raw(client.sender().address) and closed.refund > 10 * TON - 5 * TON
    assert len(by_kind[AccountDeployed]) == 4 and MessageBounced not in by_kind

    # a restarted watcher on the same store repeats nothing
    again = Watcher(net.chain, accounts, store=CursorStore(tmp_path / "w.db"), registry=default_registry())
    assert await drain(again) == []


async def test_failed_and_foreign_transactions_stay_generic(net: NetworkProvider, tmp_path) -> None:
    """A refused owner operation is not a ConfigChanged; a decoder scoped to Cocoon accounts
    ignores the same body sent to a wallet."""
    dep = await deploy_script.run(net, [])
    stranger = as_wallet(net, 4)
    wallet = WalletKey.localnet(5, with_secret=False).address
    await stranger.sender().send(to=wallet, value=TON // 10, body=Provider.stake_body(amount=TON))
    registry = default_registry(accounts=[dep.root.address, dep.pool.address])
    w = Watcher(
        net.chain, [dep.root.address, wallet], store=CursorStore(tmp_path / "w.db"), registry=registry, start="latest"
    )
    await w.poll()  # cursors at the newest transactions
    await dep.root.send_set_prices(
        stranger.open(dep.root), stranger.sender(), value=TON // 10, compute_unit_price=2, data_unit_price=2
    )
    await stranger.sender().send(to=wallet, value=TON // 10, body=Provider.stake_body(amount=TON))
    truncated = begin_cell().store_uint(Op.STAKE, 32).store_uint(0, 64).end_cell()  # no amount
    await stranger.sender().send(to=wallet, value=TON // 10, body=truncated)
    events = await drain(w)
    assert [type(e) for e in events] == [MessageReceived, MessageReceived, MessageReceived]
    refused, foreign, malformed = events
    assert not refused.success and refused.exit_code == ExitCode.NOT_OWNER and refused.op == Op.SET_PRICES
    assert foreign.success and foreign.op == Op.STAKE
    unscoped = default_registry(DecoderRegistry())
    assert isinstance(unscoped.decode(foreign.tx)[0], Staked)  # what scoping protects against
    assert [type(e) for e in unscoped.decode(malformed.tx)] == [MessageReceived]  # not our layout


async def test_set_dev_attestation_is_a_config_change(net: NetworkProvider, tmp_path) -> None:
    dep = await deploy_script.run(net, [])  # sandbox: deployed with the dev attestation on
    root = dep.root
    w = Watcher(
        net.chain, [root.address], store=CursorStore(tmp_path / "w.db"), registry=default_registry(), start="latest"
    )
    await w.poll()
    sent = await root.send_set_dev_attestation(net.open(root), net.sender(), value=TON // 10, allowed=False)
    await sent.wait_delivered()
    (changed,) = await drain(w)
    assert isinstance(changed, ConfigChanged) and changed.op == Op.SET_DEV_ATTESTATION
    assert changed.change == SetDevAttestation(query_id=0, allowed=False)
    assert changed.by == raw(net.sender().address)
    assert (await root.get_params(net.open(root))).dev_attestation is False

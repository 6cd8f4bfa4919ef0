"""The directory: Providers, Channels and Root's parameters followed from the chain into SQLite.

Runs on the emulator sandbox with the payment stack of the contract tests (Root with the
Channel/RewardPool codes, the pool configured), restored from one snapshot per test. The
chain is wrapped in a counting proxy so a test can say how many chain calls a look-up made.
"""

from __future__ import annotations

import asyncio
import hashlib
import sqlite3
from collections import Counter
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from pytoniq_core import Address

from offchain.directory import Change, ChannelView, Directory, ProviderView, RootView
from offchain.errors import ProviderError
from offchain.ton.blockchain import Blockchain, Snapshot, Treasury, ton
from offchain.ton.build import code_cell
from offchain.ton.network import ChainContractProvider, EmulatorProvider
from offchain.ton.pytest_plugin import SANDBOX_NOW
from offchain.ton.transaction import find_tx, raw
from tests.contracts.conftest import COOLDOWN, MIN_STAKE, NODE_KEY, deploy_payments, pay_env, sign_order
from tests.contracts.payments import PayEnv, register_provider
from wrappers.channel import CHANNEL_DEPOSIT_FEE, Channel, ChannelState
from wrappers.messages import SlashOrder
from wrappers.provider import PROVIDER_OP_FEE, SLASH_RELAY_FEE, Provider, ProviderState, Role
from wrappers.root import Root

NEW_MODEL = hashlib.sha256(b"directory-test-model").digest()


class CountingChain:
    """A `ChainProvider` proxy that counts calls per method, and can run a hook after one."""

    def __init__(self, inner: EmulatorProvider) -> None:
        self.inner = inner
        self.network = inner.network
        self.global_id = inner.global_id
        self.calls: Counter[str] = Counter()
        self.after_get_method: Callable[[str, str], None] | None = None

    @property
    def total(self) -> int:
        return sum(self.calls.values())

    async def send_boc(self, boc: Any) -> bytes:
        self.calls["send_boc"] += 1
        return await self.inner.send_boc(boc)

    async def get_account(self, address: Any) -> Any:
        self.calls["get_account"] += 1
        return await self.inner.get_account(address)

    async def run_get_method(self, address: Any, method: Any, stack: Any = None) -> Any:
        self.calls["run_get_method"] += 1
        res = await self.inner.run_get_method(address, method, stack)
        if self.after_get_method is not None:
            self.after_get_method(raw(address) or "", str(method))
        return res

    async def get_transactions(self, address: Any, **kw: Any) -> Any:
        self.calls["get_transactions"] += 1
        return await self.inner.get_transactions(address, **kw)

    async def close(self) -> None:
        return None


# -- fixtures ---------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def stack() -> tuple[Blockchain, Snapshot, Any, Any, Any, Any]:
    bc = Blockchain.create(now=SANDBOX_NOW)
    provider_code = code_cell("Provider")
    root, pool, keys = deploy_payments(bc, code_cell("Root"), provider_code)
    return bc, bc.snapshot(), root, pool, keys, provider_code


@pytest.fixture
def pay(stack: tuple[Blockchain, Snapshot, Any, Any, Any, Any]) -> PayEnv:
    bc, snap, root, pool, keys, provider_code = stack
    bc.load_from(snap)
    return pay_env(bc, root, pool, keys, provider_code)


@pytest.fixture
def chain(pay: PayEnv) -> CountingChain:
    return CountingChain(EmulatorProvider(pay.bc))


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "directory.db"


@pytest.fixture
async def directory(chain: CountingChain, pay: PayEnv, db_path: Path) -> AsyncIterator[Directory]:
    # the background poll waits an hour: every round in these tests is an explicit poll_once()
    async with Directory(chain, pay.root.address, db_path=db_path, poll_interval=3600) as d:
        yield d


def recorder(d: Directory) -> list[Change]:
    seen: list[Change] = []

    async def on_change(change: Change) -> None:
        seen.append(change)

    d.subscribe(on_change)
    return seen


def gpu_owner(pay: PayEnv, tag: str = "gpu-owner") -> Treasury:
    return pay.bc.treasury(tag)


def keys_of(pay: PayEnv) -> tuple[bytes, bytes]:
    return bytes(pay.client_key.verify_key), bytes(pay.router_key.verify_key)


# -- providers --------------------------------------------------------------------------------------
async def test_registered_gpu_provider_is_found_eligible_with_its_node_key(pay: PayEnv, directory: Directory) -> None:
    who = gpu_owner(pay)
    p = register_provider(pay, who, Role.GPU)
    view = await directory.provider(who.address, Role.GPU)
    assert isinstance(view, ProviderView)
    assert view.address == raw(p.address) and view.owner == raw(who.address)
    assert view.role == Role.GPU and view.state == ProviderState.ACTIVE
    assert view.node_key == NODE_KEY.to_bytes(32, "big") and view.endpoint == "wss://node.example.org"
    assert view.stake == MIN_STAKE and view.min_stake == MIN_STAKE and view.image_hash is not None
    assert view.eligible
    assert await directory.provider(who.address, Role.BANDWIDTH) is None  # same owner, another role


async def test_unregistered_owner_gives_none_then_registration_shows_after_one_poll(
    pay: PayEnv, directory: Directory
) -> None:
    who = gpu_owner(pay, "late-owner")
    assert await directory.provider(who.address, Role.GPU) is None
    seen = recorder(directory)
    register_provider(pay, who, Role.GPU)
    assert await directory.poll_once() >= 1
    [change] = [c for c in seen if c.kind == "provider"]
    assert isinstance(change.view, ProviderView) and change.view.eligible
    assert change.address == directory.provider_address(who.address, Role.GPU)
    assert await directory.provider(who.address, Role.GPU) == change.view


async def test_unstake_request_makes_provider_ineligible_within_one_poll(pay: PayEnv, directory: Directory) -> None:
    who = gpu_owner(pay)
    p = register_provider(pay, who, Role.GPU)
    assert (await directory.provider(who.address, Role.GPU)).eligible  # type: ignore[union-attr]
    seen = recorder(directory)
    res = who.send(p.address, PROVIDER_OP_FEE, Provider.request_unstake_body())
    find_tx(res, to=p.address, success=True)
    assert await directory.poll_once() >= 1
    assert [(c.kind, c.address) for c in seen] == [("provider", raw(p.address))]
    view = seen[0].view
    assert isinstance(view, ProviderView)
    assert view.state == ProviderState.INACTIVE and view.stake == 0 and not view.eligible
    assert not (await directory.provider(who.address, Role.GPU)).eligible  # type: ignore[union-attr]


async def test_slash_below_min_stake_makes_provider_ineligible_within_one_poll(
    pay: PayEnv, directory: Directory
) -> None:
    who = gpu_owner(pay)
    p = register_provider(pay, who, Role.GPU)
    await directory.provider(who.address, Role.GPU)
    seen = recorder(directory)
    order = SlashOrder(root=pay.root.address, target=p.address, amount=ton(1), reason_hash=1, nonce=1)
    body = Root.relay_slash_body(order=order, signatures=sign_order(order, pay.validators[:3]))
    find_tx(pay.bc.treasury("relayer").send(pay.root.address, SLASH_RELAY_FEE, body), to=p.address, success=True)
    await directory.poll_once()
    [change] = [c for c in seen if c.kind == "provider"]
    assert isinstance(change.view, ProviderView) and change.view.stake == MIN_STAKE - ton(1)
    assert not change.view.eligible


async def test_raising_min_stake_above_the_stake_drops_eligibility(pay: PayEnv, directory: Directory) -> None:
    who = gpu_owner(pay)
    p = register_provider(pay, who, Role.GPU)
    other = register_provider(pay, gpu_owner(pay, "bandwidth-owner"), Role.BANDWIDTH)
    assert (await directory.provider(who.address, Role.GPU)).eligible  # type: ignore[union-attr]
    assert (await directory.provider(gpu_owner(pay, "bandwidth-owner").address, Role.BANDWIDTH)) is not None
    seen = recorder(directory)
    body = Root.set_role_params_body(role=Role.GPU, min_stake=MIN_STAKE * 2, cooldown=COOLDOWN)
    find_tx(pay.owner.send(pay.root.address, ton("0.1"), body), to=pay.root.address, success=True)
    assert await directory.poll_once() == 3  # Root: two registrations, then SetRoleParams
    assert [(c.kind, c.address) for c in seen] == [("root", raw(pay.root.address)), ("provider", raw(p.address))]
    root_view, provider_view = seen[0].view, seen[1].view
    assert isinstance(root_view, RootView) and root_view.min_stake[Role.GPU] == MIN_STAKE * 2
    assert root_view.min_stake[Role.BANDWIDTH] == MIN_STAKE  # the bandwidth provider heard nothing
    assert isinstance(provider_view, ProviderView) and provider_view.min_stake == MIN_STAKE * 2
    assert provider_view.state == ProviderState.ACTIVE and not provider_view.eligible
    assert directory.root == root_view
    assert not (await directory.provider(who.address, Role.GPU)).eligible  # type: ignore[union-attr]
    assert raw(other.address) not in {c.address for c in seen}


async def test_a_transaction_between_cursor_and_first_read_is_not_missed(
    pay: PayEnv, chain: CountingChain, directory: Directory
) -> None:
    who = gpu_owner(pay)
    p = register_provider(pay, who, Role.GPU)
    fired = []

    def stake_more(address: str, method: str) -> None:  # lands right after the first state read
        if address == raw(p.address) and not fired:
            fired.append(who.send(p.address, ton(5) + PROVIDER_OP_FEE, Provider.stake_body(amount=ton(5))))

    chain.after_get_method = stake_more
    first = await directory.provider(who.address, Role.GPU)
    chain.after_get_method = None
    assert fired and first is not None and first.stake == MIN_STAKE  # read before the stake landed
    find_tx(fired[0], to=p.address, success=True)
    assert await directory.poll_once() >= 1
    assert (await directory.provider(who.address, Role.GPU)).stake == MIN_STAKE + ton(5)  # type: ignore[union-attr]


# -- channels ---------------------------------------------------------------------------------------
async def test_channel_is_found_after_deposit_and_a_top_up_shows_after_one_poll(
    pay: PayEnv, directory: Directory
) -> None:
    client_key, router_key = keys_of(pay)
    assert await directory.channel(pay.client.address, pay.router.address, client_key, router_key) is None
    ch, _ = pay.open_channel(ton(3))
    seen = recorder(directory)
    await directory.poll_once()  # the channel was followed (as absent) since the first look-up
    view = await directory.channel(pay.client.address, pay.router.address, client_key, router_key)
    assert isinstance(view, ChannelView) and view.open and view.state == ChannelState.OPEN
    assert view.address == raw(ch.address) and view.deposit == ton(3) and view.unredeemed == ton(3)
    assert view.client == raw(pay.client.address) and view.router == raw(pay.router.address)
    assert view.client_key == client_key and view.router_key == router_key
    assert [c.view for c in seen if c.kind == "channel"][-1] == view

    res = pay.client.send(ch.address, ton(2) + CHANNEL_DEPOSIT_FEE, Channel.deposit_body())
    find_tx(res, to=ch.address, success=True)
    seen.clear()
    assert await directory.poll_once() == 1
    [change] = seen
    assert change.kind == "channel" and isinstance(change.view, ChannelView) and change.view.deposit == ton(5)
    assert (await directory.channel(pay.client.address, pay.router.address, client_key, router_key)) == change.view


async def test_channel_opened_before_the_first_look_up_is_read_from_the_chain(
    pay: PayEnv, directory: Directory
) -> None:
    ch, _ = pay.open_channel(ton(1))
    view = await directory.channel(pay.client.address, pay.router.address, *keys_of(pay))
    assert view is not None and view.open and view.deposit == ton(1) and view.address == raw(ch.address)


# -- restart, addresses, models -------------------------------------------------------------------
async def test_restarted_directory_answers_known_views_without_chain_calls(pay: PayEnv, db_path: Path) -> None:
    who = gpu_owner(pay)
    register_provider(pay, who, Role.GPU)
    pay.open_channel(ton(1))
    async with Directory(EmulatorProvider(pay.bc), pay.root.address, db_path=db_path, poll_interval=3600) as d:
        known = await d.provider(who.address, Role.GPU)
        absent = await d.provider(pay.client.address, Role.ROUTER)
        channel = await d.channel(pay.client.address, pay.router.address, *keys_of(pay))
        root = d.root
    assert known is not None and absent is None and channel is not None

    chain = CountingChain(EmulatorProvider(pay.bc))
    async with Directory(chain, pay.root.address, db_path=db_path, poll_interval=3600) as d:
        assert chain.calls["run_get_method"] == 0 and d.root == root  # Root came from the db
        before = chain.total
        assert await d.provider(who.address, Role.GPU) == known
        assert await d.provider(pay.client.address, Role.ROUTER) is None
        assert await d.channel(pay.client.address, pay.router.address, *keys_of(pay)) == channel
        assert chain.total == before  # no chain call of any kind for a cached look-up
        d.provider_address(who.address, Role.GPU)
        d.channel_address(pay.client.address, pay.router.address, *keys_of(pay))
        assert chain.total == before
    assert chain.calls["run_get_method"] == 0


async def test_restarted_directory_catches_up_with_what_happened_while_down(pay: PayEnv, db_path: Path) -> None:
    who = gpu_owner(pay)
    p = register_provider(pay, who, Role.GPU)
    async with Directory(EmulatorProvider(pay.bc), pay.root.address, db_path=db_path, poll_interval=3600) as d:
        assert (await d.provider(who.address, Role.GPU)).eligible  # type: ignore[union-attr]
    find_tx(who.send(p.address, PROVIDER_OP_FEE, Provider.request_unstake_body()), to=p.address, success=True)
    async with Directory(EmulatorProvider(pay.bc), pay.root.address, db_path=db_path, poll_interval=3600) as d:
        assert not (await d.provider(who.address, Role.GPU)).eligible  # type: ignore[union-attr]


async def test_addresses_match_roots_getter_and_the_deployed_contracts(
    pay: PayEnv, chain: CountingChain, directory: Directory
) -> None:
    root_p = ChainContractProvider(chain, pay.root.address)
    for owner in (gpu_owner(pay).address, pay.client.address):
        for role in Role:
            expected = await pay.root.get_provider_address(root_p, owner, role)
            assert directory.provider_address(owner, role) == raw(expected)
    p = register_provider(pay, gpu_owner(pay), Role.GPU)
    assert directory.provider_address(gpu_owner(pay).address, Role.GPU) == raw(p.address)
    assert pay.bc.account(p.address).status == "active"
    ch, _ = pay.open_channel(ton(1))
    address = directory.channel_address(pay.client.address, pay.router.address, *keys_of(pay))
    assert address == raw(ch.address) and pay.bc.account(address).status == "active"
    data = await Channel(Address(address)).get_channel_data(ChainContractProvider(chain, Address(address)))
    assert raw(data.client) == raw(pay.client.address) and data.client_key.to_bytes(32, "big") == keys_of(pay)[0]
    with pytest.raises(ValueError):
        directory.channel_address(pay.client.address, pay.router.address, b"short", keys_of(pay)[1])


async def test_model_allowlist_is_cached_and_dropped_on_add_model_hash(
    pay: PayEnv, chain: CountingChain, directory: Directory
) -> None:
    before = chain.calls["run_get_method"]
    assert await directory.is_model_allowed(NEW_MODEL) is False
    assert chain.calls["run_get_method"] == before + 1
    assert await directory.is_model_allowed(NEW_MODEL) is False  # cached
    assert chain.calls["run_get_method"] == before + 1
    seen = recorder(directory)
    body = Root.add_model_hash_body(hash=int.from_bytes(NEW_MODEL, "big"))
    find_tx(pay.owner.send(pay.root.address, ton("0.1"), body), to=pay.root.address, success=True)
    assert await directory.is_model_allowed(NEW_MODEL) is False  # within one poll: the documented lag
    await directory.poll_once()
    assert [c.kind for c in seen] == ["root"] and isinstance(seen[0].view, RootView)
    assert seen[0].view.version == directory.root.version
    assert await directory.is_model_allowed(NEW_MODEL) is True
    calls = chain.calls["run_get_method"]
    assert await directory.is_model_allowed(NEW_MODEL) is True
    assert chain.calls["run_get_method"] == calls


async def test_dev_attestation_is_off_then_follows_set_dev_attestation_across_a_restart(
    pay: PayEnv, db_path: Path
) -> None:
    async with Directory(EmulatorProvider(pay.bc), pay.root.address, db_path=db_path, poll_interval=3600) as d:
        assert d.root.dev_attestation is False
        seen = recorder(d)
        body = Root.set_dev_attestation_body(allowed=True)
        find_tx(pay.owner.send(pay.root.address, ton("0.1"), body), to=pay.root.address, success=True)
        assert await d.poll_once() == 1
        assert [c.kind for c in seen] == ["root"] and isinstance(seen[0].view, RootView)
        assert seen[0].view.dev_attestation is True and d.root == seen[0].view
    async with Directory(EmulatorProvider(pay.bc), pay.root.address, db_path=db_path, poll_interval=3600) as d:
        assert d.root.dev_attestation is True  # from SQLite


async def test_a_file_from_before_dev_attestation_reads_root_again(pay: PayEnv, db_path: Path) -> None:
    find_tx(
        pay.owner.send(pay.root.address, ton("0.1"), Root.set_dev_attestation_body(allowed=True)),
        to=pay.root.address,
        success=True,
    )
    async with Directory(EmulatorProvider(pay.bc), pay.root.address, db_path=db_path, poll_interval=3600):
        pass
    with sqlite3.connect(db_path) as db:  # the table as it was before the column existed
        db.execute("ALTER TABLE directory_root DROP COLUMN dev_attestation")
    chain = CountingChain(EmulatorProvider(pay.bc))
    async with Directory(chain, pay.root.address, db_path=db_path, poll_interval=3600) as d:
        assert d.root.dev_attestation is True and chain.calls["run_get_method"] > 0


async def test_root_traffic_that_changes_no_parameter_costs_one_getter(
    pay: PayEnv, chain: CountingChain, directory: Directory
) -> None:
    seen = recorder(directory)
    register_provider(pay, gpu_owner(pay, "unfollowed"), Role.BANDWIDTH)  # a Root transaction, no owner update
    before = chain.calls["run_get_method"]
    assert await directory.poll_once() >= 1
    assert chain.calls["run_get_method"] == before + 1  # get_root_data: the version did not move
    assert seen == []


async def test_a_failing_subscriber_does_not_stop_the_others(pay: PayEnv, directory: Directory) -> None:
    who = gpu_owner(pay)
    p = register_provider(pay, who, Role.GPU)
    await directory.provider(who.address, Role.GPU)

    def broken(change: Change) -> None:
        raise RuntimeError("subscriber bug")

    directory.subscribe(broken)
    seen: list[Change] = []
    directory.subscribe(seen.append)
    find_tx(who.send(p.address, PROVIDER_OP_FEE, Provider.request_unstake_body()), to=p.address, success=True)
    await directory.poll_once()
    assert [c.kind for c in seen] == ["provider"]
    assert await directory.poll_once() == 0


async def test_a_failed_read_leaves_cursor_and_view_and_the_next_poll_applies_it(
    pay: PayEnv, chain: CountingChain, directory: Directory
) -> None:
    who = gpu_owner(pay)
    p = register_provider(pay, who, Role.GPU)
    await directory.provider(who.address, Role.GPU)
    find_tx(who.send(p.address, PROVIDER_OP_FEE, Provider.request_unstake_body()), to=p.address, success=True)

    def backend_down(address: str, method: str) -> None:
        if address == raw(p.address):
            raise ProviderError("backend unavailable", code=503)

    chain.after_get_method = backend_down
    with pytest.raises(ProviderError):
        await directory.poll_once()
    assert (await directory.provider(who.address, Role.GPU)).eligible  # type: ignore[union-attr]
    chain.after_get_method = None
    seen = recorder(directory)
    assert await directory.poll_once() >= 1
    assert [c.kind for c in seen] == ["provider"] and not seen[0].view.eligible  # type: ignore[union-attr]


async def test_the_watcher_task_notices_an_unstake_on_its_own(pay: PayEnv, db_path: Path) -> None:
    who = gpu_owner(pay)
    p = register_provider(pay, who, Role.GPU)
    async with Directory(EmulatorProvider(pay.bc), pay.root.address, db_path=db_path, poll_interval=0.01) as d:
        assert (await d.provider(who.address, Role.GPU)).eligible  # type: ignore[union-attr]
        noticed = asyncio.Event()

        def on_change(change: Change) -> None:
            if isinstance(change.view, ProviderView) and not change.view.eligible:
                noticed.set()

        d.subscribe(on_change)
        find_tx(who.send(p.address, PROVIDER_OP_FEE, Provider.request_unstake_body()), to=p.address, success=True)
        await asyncio.wait_for(noticed.wait(), 5)
        assert d.synced_at is not None

"""Fixtures for the Root and Provider contract tests.

`compiled` (session) builds the contracts once; `deployed` (session) is a snapshot of a
chain with Root deployed and configured; `env` (function) restores that snapshot into the
session's chain, so every test starts from the same state in microseconds.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from nacl.signing import SigningKey
from pytoniq_core import Address, Cell
from pytoniq_core.tlb.transaction import MessageAny

from offchain.models import model_hash
from offchain.ton.blockchain import Blockchain, Snapshot, Treasury, ton
from offchain.ton.build import code_cell
from offchain.ton.provider import SandboxProvider
from offchain.ton.pytest_plugin import SANDBOX_NOW
from offchain.ton.transaction import SendResult, Transaction, raw
from wrappers.messages import SlashOrder
from wrappers.provider import (
    PROVIDER_STORAGE_RESERVE,
    REGISTER_FEE,
    Provider,
    ProviderConfig,
    ProviderData,
    Role,
    _provider_data,
)
from wrappers.root import RoleParams, Root, RootConfig, slash_order_hash

IMAGE_HASH = int.from_bytes(hashlib.sha256(b"cocoon-worker-image-v1").digest(), "big")
MODEL_HASH = int.from_bytes(model_hash("all-MiniLM-L6-v2"), "big")  # the catalog's: the model file's sha256
MIN_STAKE = ton(10)
COOLDOWN = 7 * 86400
NODE_KEY = int.from_bytes(hashlib.sha256(b"node-key").digest(), "big")
ENDPOINT = "wss://gpu-1.example.org:443"
REGISTER_VALUE_OVER_STAKE = REGISTER_FEE + PROVIDER_STORAGE_RESERVE


def validator_keys(n: int, tag: str = "validator") -> list[SigningKey]:
    return [SigningKey(hashlib.sha256(f"{tag}-{i}".encode()).digest()) for i in range(n)]


def pubkey(key: SigningKey) -> int:
    return int.from_bytes(bytes(key.verify_key), "big")


def sign_order(order: SlashOrder, keys: list[SigningKey]) -> dict[int, bytes]:
    h = slash_order_hash(order)
    return {pubkey(k): k.sign(h).signature for k in keys}


def body_of(tx: Transaction) -> Cell:
    """The body of the message that started `tx`."""
    assert tx.in_message is not None
    msg = MessageAny.deserialize(Cell.one_from_boc(base64.b64decode(tx.in_message.boc)).begin_parse())
    return msg.body


def assert_conserved(env: Env, res: SendResult, before: dict[str, int]) -> None:
    """Nothing created or lost: the balance changes of `before`'s accounts plus every fee of
    the trace (transaction fees and the forwarding fees messages carried) sum to zero."""
    touched = {t.address for t in res.transactions}
    assert touched <= set(before), f"trace touched accounts outside {sorted(before)}"
    delta = sum(env.bc.account(a).balance - b for a, b in before.items())
    fees = sum(t.total_fees for t in res.transactions)
    carried = sum(m.fwd_fee for t in res.transactions for m in t.out_messages if m.kind == "internal")
    assert delta + fees + carried == 0, f"value created ({delta + fees + carried} nanoTON):\n{res.tree()}"


@dataclass(frozen=True)
class Compiled:
    root: Cell
    provider: Cell


@dataclass
class Env:
    """A chain with Root deployed: the foundation owner, the protocol treasury, validators."""

    bc: Blockchain
    codes: Compiled
    owner: Treasury
    treasury: Treasury
    root: Root
    validators: list[SigningKey]

    @property
    def root_p(self) -> SandboxProvider:
        return self.bc.provider(self.root.address, self.root.init)

    def provider(self, owner: Address | Treasury, role: Role) -> tuple[Provider, SandboxProvider]:
        addr = owner.address if isinstance(owner, Treasury) else owner
        p = Provider.create_from_config(ProviderConfig(self.root.address, addr, role), self.codes.provider)
        return p, self.bc.provider(p.address, p.init)

    def provider_data(self, p: Provider) -> ProviderData:
        return _provider_data(self.bc.run_get_method(p.address, "get_provider_data").stack)

    def balances(self, *addrs: Address | Treasury | Provider | Root) -> dict[str, int]:
        out = {}
        for a in addrs:
            key = raw(a if isinstance(a, Address) else a.address)
            out[key] = self.bc.account(key).balance
        return out

    def balance(self, addr: Address | Treasury | Provider | Root) -> int:
        return self.bc.account(addr.address if not isinstance(addr, Address) else addr).balance

    def register(
        self,
        who: Treasury,
        role: Role = Role.BANDWIDTH,
        stake: int = MIN_STAKE,
        *,
        image_hash: int | None = None,
        value: int | None = None,
    ) -> tuple[Provider, SendResult]:
        p, _ = self.provider(who, role)
        if role == Role.GPU and image_hash is None:
            image_hash = IMAGE_HASH
        body = Root.register_provider_body(
            role=role, stake=stake, node_key=NODE_KEY, endpoint=ENDPOINT, image_hash=image_hash
        )
        if value is None:
            value = stake + REGISTER_VALUE_OVER_STAKE
        return p, who.send(self.root.address, value, body)

    def owner_send(self, body: Cell, value: int = ton("0.1")) -> SendResult:
        return self.owner.send(self.root.address, value, body)

    def version(self) -> int:
        return self.bc.run_get_method(self.root.address, "get_root_data").stack[2]

    def order(self, target: Address, amount: int, nonce: int, reason: int = 1) -> SlashOrder:
        return SlashOrder(root=self.root.address, target=target, amount=amount, reason_hash=reason, nonce=nonce)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "gas: the test records an operation into tests/gas_snapshot.json")


@pytest.fixture(scope="session")
def compiled() -> Compiled:
    return Compiled(root=code_cell("Root"), provider=code_cell("Provider"))


@pytest.fixture(scope="session")
def session_chain() -> Blockchain:
    return Blockchain.create(now=SANDBOX_NOW)


@pytest.fixture(scope="session")
def deployed(session_chain: Blockchain, compiled: Compiled) -> tuple[Snapshot, Root, list[SigningKey]]:
    bc = session_chain
    owner, treasury = bc.treasury("foundation"), bc.treasury("protocol-treasury")
    keys = validator_keys(5)
    config = RootConfig(
        owner=owner.address,
        treasury=treasury.address,
        provider_code=compiled.provider,
        roles={role: RoleParams(min_stake=MIN_STAKE, cooldown=COOLDOWN) for role in Role},
        image_hashes=[IMAGE_HASH],
        model_hashes=[MODEL_HASH],
        validators=[pubkey(k) for k in keys],
        threshold=3,
    )
    root = Root.create_from_config(config, compiled.root)
    res = owner.send(root.address, ton(1), None, init=root.init)
    assert res.transactions[-1].success and bc.account(root.address).status == "active", res.tree()
    return bc.snapshot(), root, keys


def _make_env(session_chain: Blockchain, deployed: tuple[Snapshot, Root, list[SigningKey]], compiled: Compiled) -> Env:
    snap, root, keys = deployed
    session_chain.load_from(snap)
    return Env(
        bc=session_chain,
        codes=compiled,
        owner=session_chain.treasury("foundation"),
        treasury=session_chain.treasury("protocol-treasury"),
        root=root,
        validators=keys,
    )


@pytest.fixture
def env(
    session_chain: Blockchain, deployed: tuple[Snapshot, Root, list[SigningKey]], compiled: Compiled
) -> Iterator[Env]:
    yield _make_env(session_chain, deployed, compiled)


@pytest.fixture
def env_factory(session_chain: Blockchain, deployed: tuple[Snapshot, Root, list[SigningKey]], compiled: Compiled):
    """For hypothesis: a fresh `env` per example (the snapshot is restored each call)."""
    return lambda: _make_env(session_chain, deployed, compiled)


# ---- the payment stack (Channel, RewardPool) ---------------------------------------------

from tests.contracts.payments import CLOSE_DELAY, PayEnv, key, pub  # noqa: E402
from wrappers.reward_pool import RewardPool, RewardPoolConfig  # noqa: E402


@pytest.fixture(scope="session")
def pay_chain() -> Blockchain:
    return Blockchain.create(now=SANDBOX_NOW)


def deploy_payments(bc: Blockchain, root_code: Cell, provider_code: Cell) -> tuple[Root, RewardPool, list[SigningKey]]:
    """Root with the child codes, the pool deployed at its derived address and configured
    (also what benchmarks/claim_gas.py claims against)."""
    owner, treasury = bc.treasury("foundation"), bc.treasury("protocol-treasury")
    keys = validator_keys(5)
    channel_code, pool_code = code_cell("Channel"), code_cell("RewardPool")
    config = RootConfig(
        owner=owner.address,
        treasury=treasury.address,
        provider_code=provider_code,
        channel_code=channel_code,
        reward_pool_code=pool_code,
        roles={role: RoleParams(min_stake=MIN_STAKE, cooldown=COOLDOWN) for role in Role},
        image_hashes=[IMAGE_HASH],
        validators=[pubkey(k) for k in keys],
        threshold=3,
        close_delay=CLOSE_DELAY,
    )
    root = Root.create_from_config(config, root_code)
    owner.send(root.address, ton(1), None, init=root.init)
    pool = RewardPool.create_from_config(RewardPoolConfig(root.address), pool_code)
    res = owner.send(pool.address, ton(1), None, init=pool.init)
    assert bc.account(pool.address).status == "active", res.tree()
    res = owner.send(root.address, ton("0.1"), Root.set_reward_pool_body(reward_pool=pool.address))
    assert all(t.success for t in res.transactions), res.tree()
    res = owner.send(root.address, ton("0.1"), Root.push_pool_config_body())
    assert all(t.success for t in res.transactions), res.tree()
    return root, pool, keys


def pay_env(bc: Blockchain, root: Root, pool: RewardPool, keys: list[SigningKey], provider_code: Cell) -> PayEnv:
    return PayEnv(
        bc=bc,
        root=root,
        pool=pool,
        owner=bc.treasury("foundation"),
        treasury=bc.treasury("protocol-treasury"),
        client=bc.treasury("client"),
        router=bc.treasury("router"),
        client_key=key("client"),
        router_key=key("router"),
        validators=keys,
        channel_code=code_cell("Channel"),
        provider_code=provider_code,
    )


@pytest.fixture(scope="session")
def pay_deployed(pay_chain: Blockchain, compiled: Compiled) -> tuple[Snapshot, Root, RewardPool, list[SigningKey]]:
    """The payment stack deployed once a session (`deploy_payments`), as a snapshot."""
    root, pool, keys = deploy_payments(pay_chain, compiled.root, compiled.provider)
    return pay_chain.snapshot(), root, pool, keys


@pytest.fixture
def pay(pay_chain: Blockchain, pay_deployed, compiled: Compiled) -> PayEnv:
    snap, root, pool, keys = pay_deployed
    pay_chain.load_from(snap)
    return pay_env(pay_chain, root, pool, keys, compiled.provider)


__all__ = ["pub"]

"""The whole loop on a devnet, as `cocoon devnet` runs it and its end-to-end test checks it:

    public web data -> verified dataset -> confidential compute -> TON payment -> reward split

1. the network (`Devnet.start`): localnet, the local HTTPS web, Root and the RewardPool, a
   router, validators (a quorum), GPU workers and data nodes, each a process with its wallet;
2. a client buys a data + compute package through one channel: a crawl of the local sites
   through the data nodes (validator-held TLS, signed provenance), every page embedded by the
   workers (sealed requests), a vector index over it, the manifest anchored on chain;
3. the client closes its channel cooperatively: the pool holds exactly what it was charged;
4. epochs close by themselves (validators settle, sign, post), and every provider with
   earnings claims by itself;
5. `money_check` reads the chain and the published epochs and balances the books to the
   nanoTON.

Each stage is a plain function over a started `Devnet`, so the test and the command run the
same code; the command only adds the progress display and the tables.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nacl.signing import SigningKey
from pytoniq_core import Address

from offchain.client import ClientConfig, CocoonClient
from offchain.devnet._flows import Flows, Mark, mark, settled_flows
from offchain.devnet._network import FOUNDATION, Devnet, DevnetConfig, wallet_env
from offchain.devnet._web import DEFAULT_HOSTS
from offchain.errors import CocoonError
from offchain.protocol.wire import CrawlSpec
from offchain.settlement import ROLE_NAMES, raw_address
from offchain.ton._wallet import WalletKey
from offchain.ton.network import create_network_provider
from wrappers.channel import Channel
from wrappers.events import EpochReported, RevenueDeposited, default_registry
from wrappers.provider import Provider, Role
from wrappers.reward_pool import CLAIM_FEE, RewardPool
from wrappers.root import Root

__all__ = [
    "Bought",
    "DemoConfig",
    "DemoError",
    "MoneyCheck",
    "buy_package",
    "demo_devnet_config",
    "devnet_client",
    "mark_chain",
    "money_check",
    "wait_settled",
    "write_client_profile",
]

TON = 10**9
MODEL = "all-MiniLM-L6-v2"


class DemoError(CocoonError):
    """A stage of the demo did not finish (its message says which and why)."""


@dataclass
class DemoConfig:
    """The demo's network and package. Prices are set so that every provider's share of a
    small package is above a claim's cost (CLAIM_FEE): the point is to see each one paid."""

    workers: int = 3
    validators: int = 2
    threshold: int = 2
    datanodes: int = 5
    hosts: tuple[str, ...] = DEFAULT_HOSTS
    max_pages: int = 15
    max_page_bytes: int = 128 * 1024  # the validator keeps 64 KiB of it for TLS and headers
    deposit: int = 30 * TON  # above the crawl's budget: every stream held at the page cap
    compute_unit_price: int = 400_000  # nanoTON per token: 0.0004 TON
    data_unit_price: int = 3_000_000  # nanoTON per KiB relayed: 0.003 TON
    epoch_seconds: int = 4
    claim_threshold: str = "0.05"  # TON: CLAIM_FEE, the least a claim can be worth
    settle_timeout: float = 120.0
    gateway: bool = False


def demo_devnet_config(demo: DemoConfig, **extra: Any) -> DevnetConfig:
    """The `DevnetConfig` of the demo's network (`extra` overrides fields)."""
    values: dict[str, Any] = dict(
        workers=demo.workers,
        validators=demo.validators,
        validator_threshold=demo.threshold,
        datanodes=demo.datanodes,
        gateway=demo.gateway,
        compute_unit_price=demo.compute_unit_price,
        data_unit_price=demo.data_unit_price,
        redeem_interval=600.0,
        redeem_threshold="1000",  # the router redeems when a validator asks for its ledger
        epoch_seconds=demo.epoch_seconds,
        settle=True,
        claim_threshold=demo.claim_threshold,
        claim_interval=1.0,
        validator_extra={"probe_interval": 3600, "deposit": "0.5", "fetch_timeout": 10},
    )
    values.update(extra)
    return DevnetConfig(**values)


@contextlib.asynccontextmanager
async def devnet_client(net: Devnet, store: Path, *, wallet: int | None = None,
                        channel_key: SigningKey | None = None) -> AsyncIterator[CocoonClient]:
    """A `CocoonClient` of the devnet's router on a localnet wallet (default: the spare client
    wallet, so not the gateway's), its books in `store`, a new channel key unless given."""
    chain_net = await create_network_provider(
        "localnet", base_url=net.api_url, env=wallet_env(net.client_wallet + 1 if wallet is None else wallet)
    )
    config = ClientConfig(router_url=net.router["url"], root=net.root, router=net.router["address"],
                          router_key=bytes.fromhex(net.router["router_key"]))
    async with (
        chain_net,
        CocoonClient(config, chain=chain_net.chain, wallet=chain_net.sender(),
                     channel_key=channel_key or SigningKey.generate(), store=store) as client,
    ):
        yield client


@dataclass
class Bought:
    """What the client bought and holds: the channel, the package folder, the charges."""

    channel: str
    directory: Path
    pages: int
    embedded: int
    workers: int
    charged_compute: int
    charged_data: int
    anchor: str | None = None
    search: list[tuple[str, float]] = field(default_factory=list)  # the demo query's hits


def crawl_spec(demo: DemoConfig) -> CrawlSpec:
    return CrawlSpec(seeds=[f"https://{h}/" for h in demo.hosts], max_pages=demo.max_pages, max_depth=2,
                     politeness_ms=20, max_page_bytes=demo.max_page_bytes)


async def buy_package(net: Devnet, demo: DemoConfig, directory: Path, *, query: str | None = None,
                      progress: Callable[[str], None] = lambda _: None) -> Bought:
    """Open a channel, buy the data + compute package into `directory` (offchain.index),
    optionally answer `query` from it through the network, and close the channel
    cooperatively (the router signs the final totals: the pool gets exactly the charge, the
    rest of the deposit comes back)."""
    from offchain.index import buy_package as buy
    from offchain.index import search

    store = directory.parent / f"{directory.name}.client.db"
    async with devnet_client(net, store) as client:
        progress("opening a channel")
        channel = await client.open_channel(deposit=demo.deposit)
        pkg = await buy(client, crawl_spec(demo), directory, model=MODEL, progress=progress)
        hits: list[tuple[str, float]] = []
        if query:
            progress("search through the network")
            hits = [(h.url, h.score) for h in await search(client, directory, query, k=3)]
        charged = (client.charged_compute, client.charged_data)
        progress("closing the channel cooperatively")
        await client.close_cooperative()
    a = pkg.manifest.anchor
    return Bought(channel=channel, directory=directory, pages=pkg.pages, embedded=pkg.pages, workers=pkg.workers,
                  charged_compute=charged[0], charged_data=charged[1],
                  anchor=f"Root transaction lt {a.lt} ({a.tx_hash[:16]}…)" if a else None, search=hits)


def write_client_profile(net: Devnet, path: Path) -> Path:
    """The profile `cocoon search` uses on this devnet: the spare client wallet (the demo's, not
    the gateway's) with a channel of its own, opened on first use."""
    from offchain.client._profile import ClientProfile, write_profile

    return write_profile(path, ClientProfile(
        network="localnet", url=net.api_url, root=net.root, router_url=net.router["url"],
        router=net.router["address"], router_key=net.router["router_key"], wallet=f"localnet:{net.client_wallet + 1}",
        channel_key_file="search.key", store="search.db", deposit=TON))


# ---- the chain's books ---------------------------------------------------------------------------
async def _with_chain(net: Devnet, fn: Callable[[Any], Any]) -> Any:
    async with await create_network_provider("localnet", base_url=net.api_url, env=wallet_env(FOUNDATION)) as n:
        return await fn(n)


async def _pool(n: Any, root: str) -> RewardPool:
    r = Root.create_from_address(Address(root))
    return RewardPool.create_from_address((await r.get_params(n.open(r))).reward_pool)


def published(net: Devnet) -> list[int]:
    """The epochs published in the devnet's epochs folder (result.json written last)."""
    if net.epochs_dir is None:
        return []
    return sorted(int(p.name) for p in Path(net.epochs_dir).glob("*") if p.name.isdigit()
                  and (p / "result.json").exists())


def _result(net: Devnet, epoch: int) -> dict[str, Any]:
    return json.loads((Path(str(net.epochs_dir)) / str(epoch) / "result.json").read_text())


async def _claimed(n: Any, provider: str) -> int | None:
    """What the Provider contract has claimed; None if there is no such contract (a leaf of a
    router or validator that never registered one: it waits in the tree)."""
    if not await n.is_contract_deployed(Address(provider)):
        return None
    p = Provider.create_from_address(Address(provider))
    return int((await p.get_provider_data(n.open(p))).claimed)


def _floor(demo: DemoConfig) -> int:
    return max(CLAIM_FEE, int(float(demo.claim_threshold) * TON))


def wait_settled(net: Devnet, demo: DemoConfig, *, progress: Callable[[str], None] = lambda _: None) -> int:
    """Until the pool has allocated everything it holds (pots empty: every ledger naming the
    work was settled; its last epoch published) and every provider in the last tree has
    claimed what is above the claim threshold; returns that epoch. A role's carry may stay:
    rounding dust, or its share of an epoch in which it had no work (the validators' share of
    compute revenue earned in an epoch without crawls), which its next work takes.
    Bounded by `demo.settle_timeout`."""
    floor = _floor(demo)

    async def look(n: Any) -> tuple[int, str]:
        pool = await _pool(n, net.root)
        d = await pool.get_pool_data(n.open(pool))
        if d.epoch == 0 or d.compute_pot or d.data_pot or d.epoch not in published(net):
            return 0, f"epoch {d.epoch} adopted; pots {(d.compute_pot + d.data_pot) / TON:.4f} TON to settle"
        leaves = [(e["provider"], e["cumulative"]) for e in _result(net, d.epoch)["providers"]]
        waiting = 0
        for provider, cumulative in leaves:
            claimed = await _claimed(n, provider)
            if claimed is not None and cumulative - claimed > floor:
                waiting += 1
        if waiting:
            return 0, f"epoch {d.epoch} adopted; {waiting} of {len(leaves)} providers still to claim"
        return d.epoch, f"epoch {d.epoch}: everything settled and claimed"

    deadline = time.monotonic() + demo.settle_timeout
    while True:
        epoch, what = asyncio.run(_with_chain(net, look))
        progress(what)
        if epoch:
            return epoch
        if time.monotonic() > deadline:
            raise DemoError(f"not settled within {demo.settle_timeout:g}s: {what} (logs in {net.sup.workdir})")
        time.sleep(1.0)


@dataclass
class Earner:
    role: str
    provider: str
    name: str  # which devnet process
    earned: int  # its cumulative total in the last tree
    claimed: int


@dataclass
class MoneyCheck:
    """The books at the end, read from the chain and the published epochs.

    revenue:  deposited = what the channels redeemed into the pool (RevenueDeposited)
    split:    deposited = claimed + unclaimed leaves + protocol + carries + pots
    """

    charged_compute: int
    charged_data: int
    redeemed: int  # by the client's channel
    deposited: int  # into the pool, every channel
    epochs: int
    earners: list[Earner]
    protocol: int
    carries: dict[str, int]
    pots: int
    root_total: int
    claimed: int
    splits: dict[str, dict[str, int]]
    flows: dict[str, int]  # TON moved over the run by party (fees as negative lines); sums to 0
    flows_residue: int | None  # sum of `flows`: 0 when every nanoTON is accounted for (None: not read)

    @property
    def unclaimed(self) -> int:
        return self.root_total - self.claimed

    @property
    def balanced(self) -> bool:
        right = self.claimed + self.unclaimed + self.protocol + sum(self.carries.values()) + self.pots
        return (self.deposited == right and self.redeemed == self.charged_compute + self.charged_data
                and self.flows_residue in (0, None))

    def by_role(self) -> dict[str, int]:
        out = dict.fromkeys(ROLE_NAMES, 0)
        for e in self.earners:
            out[e.role] += e.earned
        return out


def mark_chain(net: Devnet) -> dict[str, Mark]:
    """Every account's balance now (before the client buys): `money_check` sums what moved since."""
    seeds = [WalletKey.localnet(i, with_secret=False).address for i in range(net.wallet_count)]
    return asyncio.run(_with_chain(net, lambda n: mark(n.chain, seeds)))


def _parties(net: Devnet, names: dict[str, str], client_wallet: str, treasury: str, contracts: set[str]) -> Any:
    """An account's line in the TON flows table."""
    wallets = {WalletKey.localnet(i, with_secret=False).address.to_str(False): i for i in range(net.wallet_count)}

    def party(addr: str) -> str:
        if addr == client_wallet:
            return "client wallet (paid in)"
        if addr == treasury:
            return "treasury (protocol fee, the rest of report values)"
        if addr in contracts or addr in names:
            return "contracts (pool, Root, channels, Providers)"
        if addr in wallets:
            return "providers' and agents' wallets (claims in, gas out)"
        return "contracts (pool, Root, channels, Providers)"

    return party


def money_check(net: Devnet, package: Bought, marks: dict[str, Mark] | None = None) -> MoneyCheck:
    """Read the books (see MoneyCheck) after `wait_settled`; with `marks` (`mark_chain` before
    the purchase) also every nanoTON that moved since, fees included."""
    names: dict[str, str] = {}

    async def read(n: Any) -> MoneyCheck:
        root = Root.create_from_address(Address(net.root))
        params = await root.get_params(n.open(root))
        splits = await root.get_split_tables(n.open(root))
        for p in (*net.workers, *net.datanodes):
            names[raw_address(str(p.info.get("provider")))] = p.name
        wallets = {"router": net.router["address"],
                   **{p.name: p.info.get("address", "") for p in net.validators}}
        for name, wallet in wallets.items():
            if not wallet:
                continue
            for role in (Role.ROUTER, Role.VALIDATOR):
                a = await root.get_provider_address(n.open(root), Address(wallet), role)
                names[a.to_str(False)] = name
        ch = Channel.create_from_address(Address(package.channel))
        cd = await ch.get_channel_data(n.open(ch))
        pool = RewardPool.create_from_address(params.reward_pool)
        data = await pool.get_pool_data(n.open(pool))
        roles = await pool.get_pool_roles(n.open(pool))
        txs = await n.chain.get_transactions(pool.address.to_str(False), limit=1000)
        reg = default_registry()
        events = [e for tx in txs for e in reg.decode(tx)]
        deposited = sum(e.compute + e.data for e in events if isinstance(e, RevenueDeposited))
        reports = sorted((e for e in events if isinstance(e, EpochReported)), key=lambda e: e.epoch)
        protocol = sum(_result(net, e.epoch)["protocol"] for e in reports)
        last = _result(net, data.epoch) if data.epoch else {"providers": []}
        earners = []
        for leaf in last["providers"]:
            provider = raw_address(leaf["provider"])
            earners.append(Earner(ROLE_NAMES[leaf["role"]], provider, names.get(provider, "?"),
                                  leaf["cumulative"], await _claimed(n, provider) or 0))
        flows: dict[str, int] = {}
        residue = None
        if marks is not None:
            f: Flows = await settled_flows(n.chain, marks)
            wallet = WalletKey.localnet(net.client_wallet + 1, with_secret=False).address.to_str(False)
            party = _parties(net, names, wallet, params.treasury.to_str(False),
                             {pool.address.to_str(False), net.root, raw_address(package.channel)})
            for addr, d in f.deltas.items():
                flows[party(addr)] = flows.get(party(addr), 0) + d
            flows["gas and storage fees"] = -f.gas
            flows["forwarding fees"] = -f.forward
            residue = sum(f.deltas.values()) + f.fees
        return MoneyCheck(
            charged_compute=package.charged_compute, charged_data=package.charged_data,
            redeemed=cd.redeemed_compute + cd.redeemed_data, deposited=deposited, epochs=data.epoch,
            earners=sorted(earners, key=lambda e: (ROLE_NAMES.index(e.role), e.name)), protocol=protocol,
            carries=dict(zip(ROLE_NAMES, roles.carries.as_tuple(), strict=True)),
            pots=data.compute_pot + data.data_pot, root_total=data.root_total, claimed=data.claimed,
            splits={"compute": _fields(splits.compute), "data": _fields(splits.data)},
            flows=flows, flows_residue=residue,
        )

    return asyncio.run(_with_chain(net, read))


def _fields(split: Any) -> dict[str, int]:
    import dataclasses

    return {f.name: int(getattr(split, f.name)) for f in dataclasses.fields(split)}

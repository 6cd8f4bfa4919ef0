"""Readers and waits the end-to-end tests share: the agents' logs, their SQLite books (read
read-only, as an operator would), the gateway as an `openai` client, bounded polls."""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import openai
from nacl.signing import SigningKey
from pytoniq_core import Address

from offchain.client import ClientConfig, CocoonClient
from offchain.devnet import Devnet, DevnetConfig, wallet_env
from offchain.devnet._network import FOUNDATION
from offchain.protocol.wire import CrawlSpec
from offchain.ton.network import create_network_provider
from wrappers.provider import Provider
from wrappers.reward_pool import RewardPool
from wrappers.root import Root

MODEL = "all-MiniLM-L6-v2"
TON = 10**9


def logs(net: Devnet) -> str:
    return "\n".join(f"===== {n}\n{p.output(30)}" for n, p in net.sup.procs.items())


def read_db(path: Path, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """The rows of `sql` on the SQLite file at `path`, opened read-only."""
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return db.execute(sql, params).fetchall()
    finally:
        db.close()


def router_db(net: Devnet, sql: str, *args: Any) -> list[tuple[Any, ...]]:
    """The rows of `sql` on the router's store, read-only."""
    return read_db(net.workdir / "router" / "router.db", sql, args)


def router_config(net: Devnet) -> ClientConfig:
    """A `ClientConfig` for the devnet's router."""
    return ClientConfig(router_url=net.router["url"], root=net.root, router=net.router["address"],
                        router_key=bytes.fromhex(net.router["router_key"]))


@contextlib.asynccontextmanager
async def fresh_client(net: Devnet, store: Path) -> AsyncIterator[CocoonClient]:
    """A client with a new channel key (so its own channel) on the devnet's spare client wallet."""
    chain_net = await create_network_provider("localnet", base_url=net.api_url, env=wallet_env(net.client_wallet))
    async with (
        chain_net,
        CocoonClient(router_config(net), chain=chain_net.chain, wallet=chain_net.sender(),
                     channel_key=SigningKey.generate(), store=store) as client,
    ):
        yield client


def gateway(net: Devnet, key: str = "x") -> openai.OpenAI:
    """The official `openai` client on the devnet's gateway."""
    return openai.OpenAI(base_url=net.gateway_url, api_key=key, timeout=60, max_retries=0)


def embed(net: Devnet, texts: list[str]) -> int:
    """One request through the gateway; returns the nanoTON it cost (the gateway's header)."""
    raw = gateway(net).embeddings.with_raw_response.create(input=texts, model=MODEL)
    raw.parse()
    return int(raw.headers["x-cocoon-cost-nanoton"])


def wait_until(what: str, net: Devnet, check: Callable[[], Any], timeout: float = 30.0, *,
               interval: float = 0.1) -> Any:
    """`check()` every `interval` seconds until it is truthy (its value), for at most `timeout`
    seconds; then fails with `what` and the agents' logs."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = check()
        if got:
            return got
        time.sleep(interval)
    raise AssertionError(f"{what}: not within {timeout:g}s\n{logs(net)}")


def wait_log(net: Devnet, name: str, text: str, timeout: float = 30.0) -> None:
    """Until process `name` logs `text` (within its last 400 lines)."""
    wait_until(f"{name} logs {text!r}", net, lambda: text in net.sup.procs[name].output(400), timeout)


# ---- the chain and the epochs ---------------------------------------------------------------------
def settling_network(**kw: Any) -> DevnetConfig:
    """A network whose validators settle 4-second epochs and whose providers claim above
    0.05 TON: no workers, no gateway, data nodes relaying at 0.003 TON per KiB (each earns
    above a claim's cost), the router redeeming when a validator asks for its ledger; `kw`
    overrides any field (validators, datanodes, modules, ...)."""
    values: dict[str, Any] = dict(
        workers=0, gateway=False, redeem_interval=600.0, redeem_threshold="1000", validators=1, datanodes=2,
        data_unit_price=3 * 10**6, epoch_seconds=4, settle=True, claim_threshold="0.05", claim_interval=1.0,
        validator_extra={"probe_interval": 3600, "deposit": "0.5", "fetch_timeout": 10},
    )
    return DevnetConfig(**{**values, **kw})


async def _chain(net: Devnet, fn: Any) -> Any:
    """`fn(network provider)` on the devnet's chain (the foundation wallet)."""
    async with await create_network_provider("localnet", base_url=net.api_url, env=wallet_env(FOUNDATION)) as n:
        return await fn(n)


def chain(net: Devnet, fn: Any) -> Any:
    """`_chain`, from synchronous test code."""
    return asyncio.run(_chain(net, fn))


async def pool_of(n: Any, root: str) -> RewardPool:
    params = await Root.create_from_address(Address(root)).get_params(n.open(Root.create_from_address(Address(root))))
    return RewardPool.create_from_address(params.reward_pool)


def pool_books(net: Devnet) -> tuple[Any, Any]:
    """The reward pool's (get_pool_data, get_pool_roles)."""
    async def read(n: Any) -> tuple[Any, Any]:
        pool = await pool_of(n, net.root)
        return await pool.get_pool_data(n.open(pool)), await pool.get_pool_roles(n.open(pool))

    return chain(net, read)


def claimed(net: Devnet, provider: str) -> int:
    """What `provider` (a Provider contract) has claimed from the pool."""
    async def read(n: Any) -> int:
        p = Provider.create_from_address(Address(provider))
        return (await p.get_provider_data(n.open(p))).claimed

    return chain(net, read)


async def buy(net: Devnet, spec: CrawlSpec, out: Path, store: Path) -> tuple[str, int]:
    """One crawl from a fresh client on the spare wallet; (its channel, what it was charged)."""
    async with fresh_client(net, store) as client:
        channel = await client.open_channel(deposit=15 * TON)
        await client.crawl(spec, out, max_cost=12 * TON, anchor=False)
        assert client.last_crawl is not None and client.last_crawl.records >= 3, client.last_crawl
        # the voucher covered the crawl's budget, more than it cost: the router cannot redeem
        # it; the cooperative close pays the pool exactly the charge
        await client.close_cooperative()
        return channel, client.charged_data


def published(net: Devnet) -> list[int]:
    """The epochs the validators published (those with a result.json), sorted."""
    assert net.epochs_dir is not None
    return sorted(int(p.name) for p in Path(net.epochs_dir).glob("*") if (p / "result.json").exists())

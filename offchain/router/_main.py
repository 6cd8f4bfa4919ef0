"""`cocoon agent router`: a router against localnet or testnet, from a TOML config.

    network = "localnet"                  # or testnet / mainnet; url = "http://..." to override
    root = "EQ..."                        # the foundation's Root
    host = "0.0.0.0"  port = 8700
    data_dir = ".cocoon/router"           # router.db, directory.db, node.key
    redeem_threshold = "0.1"              # TON earned and unredeemed that triggers a redeem
    redeem_interval = 60                  # seconds; timer redeem of anything earned
    poll_interval = 1.0                   # seconds between directory (chain) polls
    ops_host = "127.0.0.1"  ops_port = 0  # /healthz + /metrics; 0: a free port, -1: off
    ready_file = "..."                    # JSON {url, address, router_key, port, ops_url} once listening
epoch_seconds = 3600                  # the usage epoch its ledgers are kept by (validators settle each)
epochs_dir = "epochs"                 # settled epochs: its ROUTER Provider (if registered) claims from there
claim_threshold = "0.1"               # TON earned and unclaimed above which it claims
stake = "10"                          # register (stake from the wallet) its ROUTER Provider at start

`/healthz` is 503 while the directory has not completed a poll round for 3 poll intervals
(at least 5 s); `/metrics` is listed in `offchain/router/_ops.py`.

The router's wallet (which redeems, and which clients open channels to) is `WALLET_MNEMONIC`.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

from prometheus_client import CollectorRegistry, ProcessCollector

from offchain.agentkit import AgentConfig, node_key, open_network, write_ready
from offchain.directory import Directory
from offchain.errors import ConfigError
from offchain.ops import running_ops
from offchain.protocol.wire import wire_address
from offchain.registration import register_from_config
from offchain.router._ops import RouterCollector, router_health
from offchain.router._server import Router, RouterConfig
from offchain.router._store import RouterStore
from offchain.settlement._claimer import provider_claimer
from scripts._common import parse_ton
from wrappers.provider import Role

__all__ = ["run_router"]

log = logging.getLogger("cocoon.router")


async def run_router(cfg: AgentConfig, stop: asyncio.Event) -> None:
    data = Path(cfg.get("data_dir", ".cocoon/router"))
    data.mkdir(parents=True, exist_ok=True)
    key = node_key(data / "node.key")
    async with await open_network(cfg) as net:
        wallet = net.sender()
        if wallet is None:
            raise ConfigError("the router needs a wallet: set WALLET_MNEMONIC")
        await register_from_config(cfg, net, Role.ROUTER, key)  # with `stake`: its ROUTER Provider
        root = wire_address(cfg.need("root"))
        poll_interval = cfg.num("poll_interval", 1.0)
        directory = Directory(net.chain, root, db_path=data / "directory.db", poll_interval=poll_interval)
        store = RouterStore(data / "router.db")
        config = RouterConfig(
            root=root,
            node_key=key,
            host=str(cfg.get("host", "127.0.0.1")),
            port=cfg.int("port", 8700),
            redeem_threshold=parse_ton(cfg.get("redeem_threshold", "0.1"), "redeem_threshold"),
            redeem_interval=cfg.num("redeem_interval", 60.0),
            request_timeout=cfg.num("request_timeout", 30.0),
            epoch_seconds=cfg.int("epoch_seconds", 3600),
        )
        collector: RouterCollector | None = None
        try:
            async with directory, Router(config, directory=directory, store=store, wallet=wallet) as router:
                registry = CollectorRegistry()
                ProcessCollector(registry=registry)
                collector = RouterCollector(router)
                registry.register(collector)
                health = router_health(router, stale_after=max(3 * poll_interval, 5.0))
                async with running_ops(
                    str(cfg.get("ops_host", "127.0.0.1")), cfg.int("ops_port", 0), registry=registry, health=health
                ) as ops_url:
                    info = {
                        "url": router.url,
                        "port": router.port,
                        "address": router.address,
                        "router_key": router.router_key.hex(),
                        "ops_url": ops_url,
                    }
                    write_ready(cfg.get("ready_file"), info)
                    log.info("router ready: %s", info)
                    claimer = await provider_claimer(cfg, net, Role.ROUTER)
                    claiming = asyncio.ensure_future(claimer.run()) if claimer is not None else None
                    serving = asyncio.ensure_future(router.serve_forever())
                    stopping = asyncio.ensure_future(stop.wait())
                    await asyncio.wait({serving, stopping}, return_when=asyncio.FIRST_COMPLETED)
                    serving.cancel()
                    stopping.cancel()
                    if claiming is not None:
                        claiming.cancel()
        finally:
            if collector is not None:
                collector.close()
            store.close()

"""`cocoon agent router`: a router against localnet or testnet, from a TOML config.

    network = "localnet"                  # or testnet / mainnet; url = "http://..." to override
    root = "EQ..."                        # the foundation's Root
    host = "0.0.0.0"  port = 8700
    data_dir = ".cocoon/router"           # router.db, directory.db, node.key
    redeem_threshold = "0.1"              # TON earned and unredeemed that triggers a redeem
    redeem_interval = 60                  # seconds; timer redeem of anything earned
    ready_file = "..."                    # JSON {url, address, router_key, port} once listening

The router's wallet (which redeems, and which clients open channels to) is `WALLET_MNEMONIC`.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

from offchain.agentkit import AgentConfig, node_key, open_network, write_ready
from offchain.directory import Directory
from offchain.errors import ConfigError
from offchain.protocol.wire import wire_address
from offchain.router._server import Router, RouterConfig
from offchain.router._store import RouterStore
from scripts._common import parse_ton

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
        root = wire_address(cfg.need("root"))
        directory = Directory(
            net.chain, root, db_path=data / "directory.db", poll_interval=cfg.num("poll_interval", 1.0)
        )
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
        try:
            async with directory, Router(config, directory=directory, store=store, wallet=wallet) as router:
                info = {
                    "url": router.url,
                    "port": router.port,
                    "address": router.address,
                    "router_key": router.router_key.hex(),
                }
                write_ready(cfg.get("ready_file"), info)
                log.info("router ready: %s", info)
                serving = asyncio.ensure_future(router.serve_forever())
                stopping = asyncio.ensure_future(stop.wait())
                await asyncio.wait({serving, stopping}, return_when=asyncio.FIRST_COMPLETED)
                serving.cancel()
                stopping.cancel()
        finally:
            store.close()

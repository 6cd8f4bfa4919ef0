"""`cocoon gateway`: OpenAI's HTTP API in front of the client SDK, paid through a Channel.

    network = "localnet"
    root = "EQ..."
    router_url = "ws://127.0.0.1:8700"
    router = "0:..."                      # the router's wallet (from its ready file / operator)
    router_key = "hex"                    # the router's node key
    deposit = "5"                         # TON deposited when the channel is first opened
    host = "127.0.0.1"  port = 8080
    api_key = "..."                       # optional bearer key (or COCOON_API_KEY)
    data_dir = ".cocoon/gateway"          # client.db (vouchers), channel.key

The wallet that opens and funds the channel is `WALLET_MNEMONIC`'s.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

from offchain.agentkit import AgentConfig, node_key, open_network, write_ready
from offchain.client._client import ClientConfig, CocoonClient
from offchain.errors import ConfigError
from offchain.gateway import GatewayConfig, create_app, serve_gateway
from scripts._common import parse_ton

__all__ = ["run_gateway"]

log = logging.getLogger("cocoon.gateway")


async def run_gateway(cfg: AgentConfig, stop: asyncio.Event) -> None:
    data = Path(cfg.get("data_dir", ".cocoon/gateway"))
    key = node_key(data / "channel.key")
    try:
        router_key = bytes.fromhex(str(cfg.need("router_key")))
    except ValueError as err:
        raise ConfigError("config: router_key must be hex") from err
    async with await open_network(cfg) as net:
        if net.sender() is None:
            raise ConfigError("the gateway needs a wallet to pay from: set WALLET_MNEMONIC")
        config = ClientConfig(
            router_url=cfg.need("router_url"),
            root=str(cfg.need("root")),
            router=str(cfg.need("router")),
            router_key=router_key,
        )
        async with CocoonClient(
            config, chain=net.chain, wallet=net.sender(), channel_key=key, store=data / "client.db"
        ) as client:
            channel = await client.open_channel(deposit=parse_ton(cfg.get("deposit", "5"), "deposit"))
            log.info("channel %s open", channel)
            app = create_app(client, GatewayConfig(api_key=cfg.get("api_key") or None))
            host = str(cfg.get("host", "127.0.0.1"))

            def ready(port: int) -> None:
                write_ready(
                    cfg.get("ready_file"), {"url": f"http://{host}:{port}/v1", "port": port, "channel": channel}
                )
                log.info("gateway on http://%s:%d/v1", host, port)

            serving = asyncio.ensure_future(serve_gateway(app, host=host, port=cfg.int("port", 8080), ready=ready))
            stopping = asyncio.ensure_future(stop.wait())
            await asyncio.wait({serving, stopping}, return_when=asyncio.FIRST_COMPLETED)
            serving.cancel()
            stopping.cancel()
            await asyncio.gather(serving, return_exceptions=True)
            if serving.done() and not serving.cancelled() and serving.exception():
                raise serving.exception()  # type: ignore[misc]

"""`cocoon agent datanode`: register as a bandwidth Provider if needed, then relay for a router.

network = "localnet"
root = "EQ..."
router = "ws://router.example.org:8700"
stake = "10"                          # TON staked at registration (from WALLET_MNEMONIC's wallet)
endpoint = "datanode://my-home-box"   # what the Provider records
allow_private = false                 # relay to private/loopback targets (default: true on localnet only)
ports = [80, 443]                     # the ports relayed
max_streams = 16                      # concurrent streams
max_stream_bytes = 16777216           # per stream, both directions (16 MiB)
bytes_per_second = 2097152            # the node's bandwidth, both directions (2 MiB/s)
burst_bytes = 2097152                 # what the token bucket saves while idle
connect_timeout = 10
resolve = { "news.cocoon.test" = ["127.0.0.1", 8443] }   # local networks only: these names go
                                      # to that address and port (a local web), by configuration
data_dir = ".cocoon/datanode"         # node.key
ops_host = "127.0.0.1"  ops_port = 0  # /healthz + /metrics; 0: a free port, -1: off
ready_file = "..."                    # JSON {provider, node_key, ops_url} once connected
epochs_dir = "epochs"                 # where validators publish settled epochs: claim from there (none: no claims)
claim_threshold = "0.1"               # TON earned and unclaimed above which it claims (never below a claim's cost)

`/healthz` is 503 while the node is not connected to its router.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry, ProcessCollector

from offchain.agentkit import AgentConfig, node_key, open_network, write_ready
from offchain.datanode._agent import DataNode, DataNodeConfig
from offchain.datanode._policy import DEFAULT_PORTS, Caps, Policy
from offchain.errors import ConfigError
from offchain.ops import running_ops
from offchain.registration import ensure_registered
from offchain.settlement._claimer import provider_claimer
from scripts._common import parse_ton
from wrappers.provider import Role
from wrappers.root import Root

__all__ = ["datanode_caps", "run_datanode"]

log = logging.getLogger("cocoon.datanode")


def _flag(cfg: AgentConfig, key: str, default: bool) -> bool:
    value = cfg.get(key, default)
    if isinstance(value, bool):
        return value
    return str(value).strip().lower() in ("1", "true", "yes", "on")


def datanode_caps(cfg: AgentConfig) -> Caps:
    d = Caps()
    try:
        return Caps(
            max_streams=cfg.int("max_streams", d.max_streams),
            max_stream_bytes=cfg.int("max_stream_bytes", d.max_stream_bytes),
            bytes_per_second=cfg.int("bytes_per_second", d.bytes_per_second),
            burst_bytes=cfg.int("burst_bytes", cfg.int("bytes_per_second", d.burst_bytes)),
        )
    except ValueError as err:
        raise ConfigError(f"config: {err}") from err


def datanode_policy(cfg: AgentConfig, resolver: Callable[[str], Any] | None = None) -> Policy:
    raw = cfg.get("ports", sorted(DEFAULT_PORTS))
    try:
        ports = {int(p) for p in (raw if isinstance(raw, list) else str(raw).split(","))}
    except (TypeError, ValueError) as err:
        raise ConfigError(f"config: 'ports' must be a list of port numbers, not {raw!r}") from err
    allow = _flag(cfg, "allow_private", str(cfg.get("network", "localnet")) == "localnet")
    if resolver is None:
        return Policy(allow_private=allow, ports=ports)
    return Policy(resolver=resolver, allow_private=allow, ports=ports)


def _table_resolver(names: dict[str, tuple[str, int]]) -> Callable[[str], list[str]]:
    from offchain.datanode._policy import system_resolver

    def resolve(host: str) -> list[str]:
        hit = names.get(host.lower().rstrip("."))
        return [hit[0]] if hit else system_resolver(host)

    return resolve


def local_names(cfg: AgentConfig) -> dict[str, tuple[str, int]]:
    """The `resolve` table: host name -> (address, port), for a local network's test sites."""
    raw = cfg.get("resolve", {}) or {}
    try:
        return {str(h).lower(): (str(v[0]), int(v[1])) for h, v in dict(raw).items()}
    except (TypeError, ValueError, IndexError) as err:
        raise ConfigError(f"config: 'resolve' must map host names to [address, port], not {raw!r}") from err


def local_opener(names: dict[str, tuple[str, int]]) -> Any:
    """Connect a configured name's address to its configured port (the local web serves every
    name on one port); anything else is connected as asked."""
    ports = {addr: port for addr, port in names.values()}

    async def opener(address: str, port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        return await asyncio.open_connection(address, ports.get(address, port) if port in (80, 443) else port)

    return opener


async def run_datanode(cfg: AgentConfig, stop: asyncio.Event) -> None:
    data = Path(cfg.get("data_dir", ".cocoon/datanode"))
    key = node_key(data / "node.key")
    names = local_names(cfg)
    caps = datanode_caps(cfg)
    policy = datanode_policy(cfg, resolver=_table_resolver(names) if names else None)
    async with await open_network(cfg) as net:
        if net.sender() is None:
            raise ConfigError("the data node needs a wallet: set WALLET_MNEMONIC")
        root = Root.create_from_address(cfg.need("root"))
        provider = await ensure_registered(
            net,
            root,
            role=Role.BANDWIDTH,
            key=key,
            stake=parse_ton(cfg.get("stake", "10"), "stake"),
            endpoint=str(cfg.get("endpoint", "datanode://local")),
        )
        node = DataNode(
            DataNodeConfig(router_url=cfg.need("router"), caps=caps, connect_timeout=cfg.num("connect_timeout", 10.0)),
            key=key,
            owner=net.sender().address.to_str(is_user_friendly=False),
            policy=policy,
            opener=local_opener(names) if names else None,
        )

        def health() -> tuple[bool, dict[str, Any]]:
            details: dict[str, Any] = {"router": node.config.router_url, "streams": node.streams,
                                       "relayed_bytes": node.relayed}
            if not node.connected.is_set():
                return False, {**details, "reason": f"not connected to the router {node.config.router_url}"}
            return True, details

        registry = CollectorRegistry()
        ProcessCollector(registry=registry)
        ops = running_ops(str(cfg.get("ops_host", "127.0.0.1")), cfg.int("ops_port", 0), registry=registry,
                          health=health)
        claimer = await provider_claimer(cfg, net, Role.BANDWIDTH, provider)
        async with ops as ops_url:
            task = asyncio.create_task(node.run())
            claiming = asyncio.create_task(claimer.run()) if claimer is not None else None

            async def announce() -> None:
                await node.connected.wait()
                write_ready(
                    cfg.get("ready_file"),
                    {
                        "provider": provider.address.to_str(is_user_friendly=False),
                        "node_key": bytes(key.verify_key).hex(),
                        "ops_url": ops_url,
                    },
                )

            announcer = asyncio.create_task(announce())
            stopped = asyncio.create_task(stop.wait())
            try:
                await asyncio.wait({task, stopped}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                node.stop()
                announcer.cancel()
                if claiming is not None:
                    claiming.cancel()
                stopped.cancel()
                await task  # its error, if it ended on one

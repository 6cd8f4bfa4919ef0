"""The data node agent: one outbound websocket to its router, TCP streams relayed for it.

    node = DataNode(config, key=node_key, owner=wallet_address)
    await node.run()              # connects, re-connects with backoff, relays until stopped

The node dials out (it works behind a home NAT), proves its node key in the router's
handshake (role "datanode"), then answers the router's `StreamOpen` / `StreamData` /
`StreamClose` with its `Relay` (policy checks, caps, bandwidth shaping). Streams live and
die with the connection: when it drops, every stream is closed, and the router, which
has lost them too, opens new ones on the next connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass, field

from nacl.signing import SigningKey

from offchain.datanode._policy import Caps, Policy
from offchain.datanode._relay import Opener, Relay, StreamStats
from offchain.mesh import LOST, Limits, connect, join, keep_connected
from offchain.protocol.wire import Error, ErrorCode

__all__ = ["DataNode", "DataNodeConfig"]

log = logging.getLogger("cocoon.datanode")


@dataclass
class DataNodeConfig:
    router_url: str
    caps: Caps = field(default_factory=Caps)
    connect_timeout: float = 10.0
    reconnect_max_delay: float = 10.0
    limits: Limits = field(default_factory=Limits)


class DataNode:
    """The data node agent (see the module doc). `run()` is the only coroutine to start."""

    def __init__(
        self,
        config: DataNodeConfig,
        *,
        key: SigningKey,
        owner: str,
        policy: Policy | None = None,
        opener: Opener | None = None,
    ) -> None:
        """`policy` holds the resolver and whether private targets are allowed (the chain's
        params: the localnet allows them); `opener` connects to a checked address (default
        `asyncio.open_connection`)."""
        self.config = config
        self.key = key
        self.node_key = bytes(key.verify_key)
        self.owner = owner
        self.policy = policy or Policy()
        self.opener = opener
        self.connected = asyncio.Event()
        self.relayed = 0  # bytes of finished streams, both directions, every connection
        self.streams = 0
        self.relay: Relay | None = None
        self._stop = asyncio.Event()

    def stop(self) -> None:
        """Make `run()` return (the current connection and its streams are closed). Safe from any task."""
        self._stop.set()

    async def run(self) -> None:
        """Connect and relay; on any disconnect wait (exponential backoff with jitter, capped at
        `reconnect_max_delay`) and connect again. A refusal by the router (e.g. our Provider is
        not active) is logged and retried the same way: staking may fix it."""
        await keep_connected(
            self._session,
            stop=self._stop,
            connected=self.connected,
            max_delay=self.config.reconnect_max_delay,
            log=log,
            what="data node",
        )

    def _closed(self, stats: StreamStats) -> None:
        self.relayed += stats.total
        self.streams += 1

    async def _session(self) -> None:
        peer = await connect(self.config.router_url, self.config.limits)
        relay = Relay(
            peer.send,
            policy=self.policy,
            caps=self.config.caps,
            opener=self.opener,
            connect_timeout=self.config.connect_timeout,
            on_closed=self._closed,
        )
        self.relay = relay
        stop = asyncio.ensure_future(self._stop.wait())
        try:
            await join(peer, key=self.key, role="datanode", owner=self.owner, agent="cocoon-datanode/1")
            self.connected.set()
            log.info("connected to %s", self.config.router_url)
            while not stop.done():
                recv = asyncio.ensure_future(peer.recv(timeout=10.0**9))  # websocket pings tell a dead router
                done, _ = await asyncio.wait({recv, stop}, return_when=asyncio.FIRST_COMPLETED)
                if recv not in done:
                    recv.cancel()
                    with contextlib.suppress(asyncio.CancelledError, *LOST):
                        await recv
                    break
                frame = recv.result()
                if await relay.handle(frame):
                    continue
                if isinstance(frame, Error):
                    log.warning(
                        "router says: %s %s",
                        ErrorCode(frame.code).name if frame.code in ErrorCode._value2member_map_ else frame.code,
                        frame.message,
                    )
                else:
                    await peer.send_error(
                        getattr(frame, "id", None),
                        ErrorCode.UNEXPECTED_FRAME,
                        f"a router does not send {type(frame).__name__} to a data node",
                    )
        finally:
            stop.cancel()
            await relay.close_all()
            self.relay = None
            with contextlib.suppress(Exception):
                await peer.close()

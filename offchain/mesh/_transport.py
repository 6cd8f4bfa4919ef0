"""The mesh transport: framed, bounded, authenticated websocket connections.

One `Peer` wraps a `websockets` connection (either side) and moves `offchain.protocol.wire`
frames. What arrives is checked before any agent code sees it:

- a frame over `Limits.max_frame_bytes` is answered with `FRAME_TOO_LARGE` and dropped;
  above `Limits.transport_max_bytes` websockets itself closes the connection (1009), so
  a peer cannot make us buffer without bound;
- an undecodable or out-of-bounds frame is answered with `BAD_FRAME` (naming its request id
  when one can be read) and the connection goes on; after `max_bad_frames` of them the peer
  is disconnected with 1008 (policy violation);
- liveness is websockets' own ping/pong (`ping_interval`, `ping_timeout`); a peer that sends
  no frame for `idle_timeout` is closed.

The handshake (`accept_peer` on the router's side, `join` on the peer's) proves the peer
holds the node key it claims: it signs the router's fresh random challenge bound to its
role and wallet (`wire.hello_digest`). Whether that key may serve is the router's decision
(its directory), not the transport's.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from dataclasses import dataclass

from nacl.exceptions import BadSignatureError
from nacl.signing import SigningKey, VerifyKey
from websockets.asyncio.client import ClientConnection
from websockets.asyncio.client import connect as ws_connect
from websockets.asyncio.server import ServerConnection
from websockets.exceptions import ConnectionClosed

from offchain.errors import InvalidMessage, PeerRejected, RequestFailed
from offchain.protocol import wire
from offchain.protocol.wire import Challenge, Error, ErrorCode, Frame, Hello, Welcome

__all__ = ["Limits", "Peer", "accept_peer", "connect", "join"]

log = logging.getLogger("cocoon.mesh")


@dataclass(frozen=True)
class Limits:
    """Bounds of one connection (defaults suit a router on the public internet)."""

    max_frame_bytes: int = wire.MAX_FRAME_BYTES
    transport_max_bytes: int = 4 * wire.MAX_FRAME_BYTES
    max_in_flight: int = 64
    max_bad_frames: int = 8
    handshake_timeout: float = 10.0
    idle_timeout: float = 600.0
    ping_interval: float | None = 20.0
    ping_timeout: float | None = 20.0

    def ws_options(self) -> dict[str, object]:
        """Options for websockets' `serve` / `connect`: its own caps and heartbeats."""
        return {
            "max_size": self.transport_max_bytes,
            "ping_interval": self.ping_interval,
            "ping_timeout": self.ping_timeout,
            "compression": None,  # vectors and ciphertext do not compress; deflate costs CPU
            "max_queue": 64,
        }


class Peer:
    """One mesh connection: `send` frames, `recv` valid frames only.

    `recv` may be called by one task at a time (websockets' rule); `send` by any number
    (websockets serializes writes). Cancelling either is safe.
    """

    def __init__(
        self, ws: ServerConnection | ClientConnection, limits: Limits | None = None, *, name: str = ""
    ) -> None:
        self.ws = ws
        self.limits = limits or Limits()
        self.bad_frames = 0
        self.name = name or _remote(ws)
        self.log = logging.LoggerAdapter(log, {"peer": self.name})

    async def send(self, frame: Frame) -> None:
        """Send one frame. Raises websockets' ConnectionClosed if the connection is gone."""
        await self.ws.send(wire.encode(frame))

    async def send_error(self, request_id: int | None, code: ErrorCode, message: str = "") -> None:
        """Answer with a typed error; a connection that is already gone is not an error here."""
        with contextlib.suppress(ConnectionClosed):
            await self.send(Error(id=request_id, code=int(code), message=message[:1000]))

    async def recv(self, *, timeout: float | None = None) -> Frame:
        """The next valid frame; bad ones are answered and skipped (see the module doc).

        Raises:
            ConnectionClosed: the peer went away, or sent too many bad frames (it is then
                closed with 1008).
            TimeoutError: nothing arrived within `timeout` (default: the idle limit, after
                which the connection is closed).
        """
        wait = self.limits.idle_timeout if timeout is None else timeout
        while True:
            try:
                data = await asyncio.wait_for(self.ws.recv(), wait)
            except TimeoutError:
                await self.ws.close(1000, "idle")
                raise
            if isinstance(data, str):
                data = data.encode()
                is_text = True
            else:
                is_text = False
            if len(data) > self.limits.max_frame_bytes:
                code = ErrorCode.FRAME_TOO_LARGE
                reason = f"frame of {len(data)} bytes over {self.limits.max_frame_bytes}"
            elif is_text:
                reason, code = "text frames are not part of the protocol", ErrorCode.BAD_FRAME
            else:
                try:
                    return wire.decode(data)
                except InvalidMessage as err:
                    reason, code = str(err), ErrorCode.BAD_FRAME
            self.bad_frames += 1
            self.log.info("bad frame (%d of %d allowed): %s", self.bad_frames, self.limits.max_bad_frames, reason)
            await self.send_error(wire.frame_id(data) if code == ErrorCode.BAD_FRAME else None, code, reason)
            if self.bad_frames >= self.limits.max_bad_frames:
                await self.ws.close(1008, "too many bad frames")
                await self.ws.wait_closed()
                raise ConnectionClosed(None, None)

    async def close(self, code: int = 1000, reason: str = "") -> None:
        await self.ws.close(code, reason)


def _remote(ws: ServerConnection | ClientConnection) -> str:
    try:
        host, port = ws.remote_address[:2]
        return f"{host}:{port}"
    except (TypeError, ValueError, AttributeError):
        return "?"


async def accept_peer(peer: Peer, *, router: str, router_key: bytes, root: str) -> Hello:
    """Router side: challenge the peer and return its Hello once its signature checks.

    Raises:
        PeerRejected: wrong version, bad signature or no Hello in time (the peer was told why).
    """
    challenge = Challenge(
        version=wire.PROTOCOL_VERSION, nonce=os.urandom(32), router=router, router_key=router_key, root=root
    )
    await peer.send(challenge)
    try:
        frame = await peer.recv(timeout=peer.limits.handshake_timeout)
    except TimeoutError as err:
        raise PeerRejected("no Hello within the handshake timeout") from err
    if not isinstance(frame, Hello):
        await peer.send_error(None, ErrorCode.NOT_AUTHENTICATED, f"expected Hello, got {type(frame).__name__}")
        raise PeerRejected(f"expected Hello, got {type(frame).__name__}")
    if frame.version != wire.PROTOCOL_VERSION:
        await peer.send_error(
            None,
            ErrorCode.UNSUPPORTED_VERSION,
            f"protocol version {frame.version}; this router speaks {wire.PROTOCOL_VERSION}",
        )
        raise PeerRejected(f"unsupported protocol version {frame.version}")
    digest = wire.hello_digest(challenge, role=frame.role, owner=frame.owner, node_key=frame.node_key)
    try:
        VerifyKey(frame.node_key).verify(digest, frame.signature)
    except BadSignatureError as err:
        await peer.send_error(None, ErrorCode.NOT_AUTHENTICATED, "the challenge signature does not match the node key")
        raise PeerRejected("bad challenge signature") from err
    return frame


async def join(
    peer: Peer, *, key: SigningKey, role: str, owner: str, agent: str = "", expect_router_key: bytes | None = None
) -> tuple[Challenge, Welcome]:
    """Peer side: answer the router's challenge; return it and the router's Welcome.

    Raises:
        RequestFailed: the router refused us (its typed error).
        PeerRejected: the router is not the one we expected, or spoke out of turn.
    """
    first = await peer.recv(timeout=peer.limits.handshake_timeout)
    if not isinstance(first, Challenge):
        raise PeerRejected(f"expected Challenge, got {type(first).__name__}")
    if expect_router_key is not None and first.router_key != expect_router_key:
        raise PeerRejected("the router's key is not the one its channel names")
    node_key = bytes(key.verify_key)
    sig = key.sign(wire.hello_digest(first, role=role, owner=owner, node_key=node_key)).signature
    await peer.send(
        Hello(
            version=wire.PROTOCOL_VERSION,
            role=role,
            owner=owner,  # type: ignore[arg-type]
            node_key=node_key,
            signature=sig,
            agent=agent,
        )
    )
    answer = await peer.recv(timeout=peer.limits.handshake_timeout)
    if isinstance(answer, Error):
        raise RequestFailed(answer.code, answer.message)
    if not isinstance(answer, Welcome):
        raise PeerRejected(f"expected Welcome, got {type(answer).__name__}")
    return first, answer


async def connect(url: str, limits: Limits | None = None, *, open_timeout: float = 10.0) -> Peer:
    """Open a websocket to `url` with the mesh's options (no handshake yet)."""
    limits = limits or Limits()
    ws = await ws_connect(url, open_timeout=open_timeout, proxy=None, **limits.ws_options())  # type: ignore[arg-type]
    return Peer(ws, limits, name=url)

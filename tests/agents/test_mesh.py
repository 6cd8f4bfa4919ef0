"""The mesh transport on real websockets (loopback, port 0): the handshake, and how a
connection answers bad, oversized and text frames and goes on serving.

The server side is a minimal router: `accept_peer`, a Welcome, then it answers ListModels
with Models. Every wait is bounded by `asyncio.timeout`; nothing sleeps.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import msgspec
import pytest
from nacl.signing import SigningKey
from websockets.asyncio.server import ServerConnection, serve
from websockets.exceptions import ConnectionClosed

from offchain.errors import PeerRejected, RequestFailed
from offchain.mesh import Limits, Peer, accept_peer, connect, join
from offchain.protocol import wire
from offchain.protocol.wire import Challenge, Error, ErrorCode, Hello, ListModels, Models, Welcome

ROUTER = "0:" + "aa" * 32
ROOT = "-1:" + "bb" * 32
OWNER = "0:" + "cc" * 32
ROUTER_KEY = bytes(SigningKey(b"\x01" * 32).verify_key)
NODE = SigningKey(b"\x02" * 32)
LIMITS = Limits(
    max_frame_bytes=1024,
    transport_max_bytes=16 * 1024,
    max_bad_frames=3,
    handshake_timeout=0.3,
    ping_interval=None,
    ping_timeout=None,
)
WAIT = 5.0  # bound on any single wait; a passing test takes milliseconds (the timeout test 0.3 s)


@dataclass
class MiniRouter:
    url: str
    hellos: asyncio.Queue[Hello] = field(default_factory=asyncio.Queue)
    rejected: asyncio.Queue[PeerRejected] = field(default_factory=asyncio.Queue)
    ended: asyncio.Queue[BaseException] = field(default_factory=asyncio.Queue)


@pytest.fixture
async def router() -> AsyncIterator[MiniRouter]:
    mini = MiniRouter(url="")

    async def handler(ws: ServerConnection) -> None:
        peer = Peer(ws, LIMITS)
        try:
            hello = await accept_peer(peer, router=ROUTER, router_key=ROUTER_KEY, root=ROOT)
        except PeerRejected as err:
            mini.rejected.put_nowait(err)
            return
        except ConnectionClosed as err:  # the client gave up mid-handshake
            mini.ended.put_nowait(err)
            return
        mini.hellos.put_nowait(hello)
        await peer.send(Welcome(session="s1", compute_unit_price=100, data_unit_price=1))
        try:
            while True:
                frame = await peer.recv()
                if isinstance(frame, ListModels):
                    await peer.send(Models(id=frame.id, models=[]))
        except (ConnectionClosed, TimeoutError) as err:
            mini.ended.put_nowait(err)

    async with serve(handler, "127.0.0.1", 0, **LIMITS.ws_options()) as server:  # type: ignore[arg-type]
        port = server.sockets[0].getsockname()[1]
        mini.url = f"ws://127.0.0.1:{port}"
        yield mini


@pytest.fixture
async def client(router: MiniRouter) -> AsyncIterator[Peer]:
    async with asyncio.timeout(WAIT):
        peer = await connect(router.url, LIMITS, open_timeout=WAIT)
    yield peer
    await peer.close()


async def joined(router: MiniRouter, client: Peer) -> None:
    async with asyncio.timeout(WAIT):
        await join(client, key=NODE, role="worker", owner=OWNER)
        await router.hellos.get()


async def hello(client: Peer, *, key: SigningKey = NODE, version: int = wire.PROTOCOL_VERSION) -> Challenge:
    """Answer the challenge by hand: signed with `key`, claiming NODE's public key."""
    challenge = await client.recv()
    assert isinstance(challenge, Challenge)
    node_key = bytes(NODE.verify_key)
    sig = key.sign(wire.hello_digest(challenge, role="worker", owner=OWNER, node_key=node_key)).signature
    await client.send(Hello(version=version, role="worker", owner=OWNER, node_key=node_key, signature=sig))
    return challenge


async def expect_error(client: Peer, code: ErrorCode, request_id: int | None = None) -> Error:
    frame = await client.recv()
    assert isinstance(frame, Error), frame
    assert (frame.code, frame.id) == (int(code), request_id), frame
    return frame


async def still_serves(client: Peer, request_id: int = 99) -> None:
    await client.send(ListModels(id=request_id))
    assert await client.recv() == Models(id=request_id, models=[])


# ---- handshake -----------------------------------------------------------------------------
async def test_join_good_handshake_returns_hello_and_welcome(router: MiniRouter, client: Peer) -> None:
    async with asyncio.timeout(WAIT):
        challenge, welcome = await join(client, key=NODE, role="worker", owner=OWNER, agent="test/1")
        got = await router.hellos.get()
        await still_serves(client)
    assert (challenge.router, challenge.router_key, challenge.root) == (ROUTER, ROUTER_KEY, ROOT)
    assert challenge.version == wire.PROTOCOL_VERSION
    assert welcome == Welcome(session="s1", compute_unit_price=100, data_unit_price=1)
    assert (got.role, got.owner, got.node_key, got.agent) == ("worker", OWNER, bytes(NODE.verify_key), "test/1")


async def test_accept_wrong_signature_is_not_authenticated(router: MiniRouter, client: Peer) -> None:
    async with asyncio.timeout(WAIT):
        await hello(client, key=SigningKey(b"\x03" * 32))
        await expect_error(client, ErrorCode.NOT_AUTHENTICATED)
        err = await router.rejected.get()
    assert "signature" in str(err)
    assert router.hellos.empty()


async def test_accept_signature_over_another_challenge_is_not_authenticated(router: MiniRouter, client: Peer) -> None:
    async with asyncio.timeout(WAIT):
        challenge = await client.recv()
        assert isinstance(challenge, Challenge)
        replayed = msgspec.structs.replace(challenge, nonce=b"\x00" * 32)  # a nonce from another session
        node_key = bytes(NODE.verify_key)
        sig = NODE.sign(wire.hello_digest(replayed, role="worker", owner=OWNER, node_key=node_key)).signature
        await client.send(
            Hello(version=wire.PROTOCOL_VERSION, role="worker", owner=OWNER, node_key=node_key, signature=sig)
        )
        await expect_error(client, ErrorCode.NOT_AUTHENTICATED)
        await router.rejected.get()


async def test_accept_wrong_version_is_unsupported(router: MiniRouter, client: Peer) -> None:
    async with asyncio.timeout(WAIT):
        await hello(client, version=wire.PROTOCOL_VERSION + 1)
        frame = await expect_error(client, ErrorCode.UNSUPPORTED_VERSION)
        err = await router.rejected.get()
    assert "version" in frame.message and "version" in str(err)


async def test_accept_other_frame_first_is_not_authenticated(router: MiniRouter, client: Peer) -> None:
    async with asyncio.timeout(WAIT):
        await client.recv()
        await client.send(ListModels(id=1))
        await expect_error(client, ErrorCode.NOT_AUTHENTICATED)
        await router.rejected.get()


async def test_accept_no_hello_within_timeout_is_rejected(router: MiniRouter, client: Peer) -> None:
    async with asyncio.timeout(WAIT):
        assert isinstance(await client.recv(), Challenge)
        err = await router.rejected.get()
        await client.ws.wait_closed()
    assert "timeout" in str(err)


async def test_join_unexpected_router_key_is_rejected(router: MiniRouter, client: Peer) -> None:
    with pytest.raises(PeerRejected):
        async with asyncio.timeout(WAIT):
            await join(client, key=NODE, role="worker", owner=OWNER, expect_router_key=b"\x09" * 32)


async def test_join_refused_raises_request_failed(router: MiniRouter) -> None:
    """A router that answers the Hello with an Error: join raises its code."""

    async def refuse(ws: ServerConnection) -> None:
        peer = Peer(ws, LIMITS)
        await accept_peer(peer, router=ROUTER, router_key=ROUTER_KEY, root=ROOT)
        await peer.send_error(None, ErrorCode.NOT_A_PROVIDER, "no such provider")
        await ws.wait_closed()

    async with serve(refuse, "127.0.0.1", 0, **LIMITS.ws_options()) as server:  # type: ignore[arg-type]
        url = f"ws://127.0.0.1:{server.sockets[0].getsockname()[1]}"
        async with asyncio.timeout(WAIT):
            peer = await connect(url, LIMITS)
            with pytest.raises(RequestFailed) as err:
                await join(peer, key=NODE, role="worker", owner=OWNER)
            await peer.close()
    assert err.value.code == ErrorCode.NOT_A_PROVIDER


# ---- bad frames ----------------------------------------------------------------------------
async def test_recv_malformed_frame_gets_bad_frame_and_goes_on(router: MiniRouter, client: Peer) -> None:
    await joined(router, client)
    async with asyncio.timeout(WAIT):
        await client.ws.send(b"\xc1 not msgpack")
        await expect_error(client, ErrorCode.BAD_FRAME, None)
        await still_serves(client, 1)
        bad_embed = {
            "t": "Embed",
            "id": 77,
            "model": "bge",
            "units": 1,
            "max_coefficient": 0,  # coefficient out of bounds
            "voucher": {"compute": 1, "data": 0, "signature": b"\x00" * 64},
            "texts": ["x"],
        }
        await client.ws.send(msgspec.msgpack.encode(bad_embed))
        await expect_error(client, ErrorCode.BAD_FRAME, 77)
        await still_serves(client, 2)


async def test_recv_frame_over_max_bytes_gets_frame_too_large_and_goes_on(router: MiniRouter, client: Peer) -> None:
    await joined(router, client)
    async with asyncio.timeout(WAIT):
        big = wire.encode(Error(id=5, code=1, message="")) + b"\x00" * LIMITS.max_frame_bytes
        await client.ws.send(big)
        frame = await expect_error(client, ErrorCode.FRAME_TOO_LARGE, None)
        await still_serves(client)
    assert str(LIMITS.max_frame_bytes) in frame.message


async def test_recv_text_frame_gets_bad_frame(router: MiniRouter, client: Peer) -> None:
    await joined(router, client)
    async with asyncio.timeout(WAIT):
        await client.ws.send('{"t": "ListModels", "id": 1}')
        frame = await expect_error(client, ErrorCode.BAD_FRAME, None)
        await still_serves(client)
    assert "text" in frame.message


async def test_recv_too_many_bad_frames_closes_with_1008(router: MiniRouter, client: Peer) -> None:
    await joined(router, client)
    async with asyncio.timeout(WAIT):
        for i in range(LIMITS.max_bad_frames):
            await client.ws.send(b"\xc1" if i % 2 else "text")
            await expect_error(client, ErrorCode.BAD_FRAME)
        with pytest.raises(ConnectionClosed) as closed:
            await client.recv()
        assert isinstance(await router.ended.get(), ConnectionClosed)
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 1008


async def test_recv_bad_frames_below_limit_keep_connection(router: MiniRouter, client: Peer) -> None:
    await joined(router, client)
    async with asyncio.timeout(WAIT):
        for _ in range(LIMITS.max_bad_frames - 1):
            await client.ws.send(b"\xc1")
            await expect_error(client, ErrorCode.BAD_FRAME)
        await still_serves(client)


async def test_recv_frame_over_transport_max_closes_with_1009(router: MiniRouter, client: Peer) -> None:
    await joined(router, client)
    async with asyncio.timeout(WAIT):
        await client.ws.send(b"\x00" * (LIMITS.transport_max_bytes + 1))
        with pytest.raises(ConnectionClosed) as closed:
            await client.recv()
        await router.ended.get()
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 1009

"""The data node's relay engine (`offchain.datanode._relay`) between the validator's TLS
client (`offchain.protocol.tls_stream`) and a real TLS site on loopback, frames passed in
memory (through wire encode/decode): the page arrives verified and its leaf certificate is
the site's; a relay that flips one byte breaks TLS; the caps, the port and destination
policy hold. Every wait is bounded."""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from offchain.datanode._policy import Caps, Policy
from offchain.datanode._relay import Relay, StreamStats
from offchain.protocol import wire
from offchain.protocol.tls_stream import TlsClient, http_get
from offchain.protocol.wire import (
    StreamClose,
    StreamData,
    StreamOpen,
    StreamOpened,
    StreamRefusal,
    StreamRefused,
)
from tests.protocol._tls_certs import Pki

HOST = "site.test"
WAIT = 5.0


@pytest.fixture(scope="module")
def pki() -> Pki:
    return Pki.make([HOST])


@dataclass
class Site:
    port: int
    body: bytes
    requests: list[bytes] = field(default_factory=list)
    disconnected: asyncio.Event = field(default_factory=asyncio.Event)


@pytest.fixture
async def site(pki: Pki, tmp_path: Path) -> AsyncIterator[Site]:
    """A TLS web site on 127.0.0.1 (a free port) serving `site.body` to any GET."""
    state = Site(port=0, body=b"<html>" + b"provenance " * 2000 + b"</html>")

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            state.requests.append(head)
            writer.write(
                b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: %d\r\nConnection: close\r\n\r\n"
                % len(state.body)
                + state.body
            )
            await writer.drain()
            await reader.read()  # until the client goes
        except (OSError, asyncio.IncompleteReadError, ssl.SSLError):
            pass
        finally:
            state.disconnected.set()
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0, ssl=pki.server_context(tmp_path))
    state.port = server.sockets[0].getsockname()[1]
    async with server:
        yield state
        server.close()


class Router:
    """The router's (here: the validator's) end: frames from the relay land in `frames`,
    through msgpack both ways, optionally tampered with by `tamper`."""

    def __init__(self, tamper: Callable[[StreamData], StreamData] | None = None) -> None:
        self.frames: asyncio.Queue[wire.Frame] = asyncio.Queue()
        self.tamper = tamper
        self.down = bytearray()  # every byte the node relayed to us

    async def send(self, frame: wire.Frame) -> None:
        frame = wire.decode(wire.encode(frame))
        if isinstance(frame, StreamData):
            self.down += frame.data
            if self.tamper is not None:
                frame = self.tamper(frame)
        await self.frames.put(frame)

    async def next(self) -> wire.Frame:
        return await asyncio.wait_for(self.frames.get(), WAIT)

    def transport(self, relay: Relay, stream: int):  # type: ignore[no-untyped-def]
        """`http_get`'s pump: TLS bytes up as StreamData, the next StreamData down (b"" on close)."""

        async def pump(out: bytes) -> bytes:
            for i in range(0, len(out), wire.MAX_STREAM_DATA):
                chunk = StreamData(id=stream, data=out[i : i + wire.MAX_STREAM_DATA])
                await relay.handle(wire.decode(wire.encode(chunk)))
            frame = await self.next()
            if isinstance(frame, StreamClose):
                return b""
            assert isinstance(frame, StreamData) and frame.id == stream, frame
            return frame.data

        return pump


def make_relay(
    router: Router, site: Site, *, allow_private: bool = True, caps: Caps | None = None, **kw: object
) -> tuple[Relay, list[tuple[str, int]], list[StreamStats]]:
    """A relay whose resolver maps HOST to 127.0.0.1 and whose opener sends port 443 to the
    site's real port (how the local web plugs in), recording what it was asked to open."""
    opened: list[tuple[str, int]] = []
    closed: list[StreamStats] = []

    async def opener(address: str, port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        opened.append((address, port))
        return await asyncio.open_connection(address, site.port if port == 443 else port)

    policy = Policy(resolver={HOST: ["127.0.0.1"], "public.example": ["127.0.0.1"]}.__getitem__,
                    allow_private=allow_private)
    relay = Relay(router.send, policy=policy, caps=caps, opener=opener, on_closed=closed.append, **kw)  # type: ignore[arg-type]
    return relay, opened, closed


async def open_stream(relay: Relay, router: Router, stream: int = 1, host: str = HOST, port: int = 443) -> wire.Frame:
    await relay.handle(wire.decode(wire.encode(StreamOpen(id=stream, host=host, port=port))))
    return await router.next()


async def test_page_is_fetched_verified_and_the_leaf_is_the_sites(pki: Pki, site: Site) -> None:
    router = Router()
    relay, opened, closed = make_relay(router, site)
    assert await open_stream(relay, router) == StreamOpened(id=1, address="127.0.0.1")
    assert opened == [("127.0.0.1", 443)]  # the checked address, never the name
    tls = TlsClient(pki.client_context(), HOST)
    async with asyncio.timeout(WAIT):
        status, headers, body = await http_get(tls, router.transport(relay, 1), "/index.html")
    assert status == 200 and body == site.body
    assert ("content-length", str(len(site.body))) in headers
    assert tls.peer_certificate_der() == pki.leaf_der
    assert tls.peer_certificate_hash() == pki.leaf_hash
    assert site.requests[0].startswith(b"GET /index.html HTTP/1.1\r\n")
    assert b"provenance" not in router.down and b"HTTP/1.1" not in router.down  # the node moved ciphertext only
    stats = relay.stats(1)
    assert stats is not None and stats.up > 0 and stats.down > len(site.body)
    await relay.handle(StreamClose(id=1))  # the validator is done
    assert relay.open_streams == 0 and closed[0].id == 1 and closed[0].error == ""
    async with asyncio.timeout(WAIT):
        await site.disconnected.wait()
    await relay.close_all()


@pytest.mark.parametrize("offset", [0, 10, 300, 700, 1500, 6000, 20_000])
async def test_a_relay_that_flips_one_byte_breaks_tls(pki: Pki, site: Site, offset: int) -> None:
    """Offsets in the record header, the handshake and certificate, and the page itself."""
    seen = 0

    def flip(frame: StreamData) -> StreamData:
        nonlocal seen
        data = bytearray(frame.data)
        if seen <= offset < seen + len(data):
            data[offset - seen] ^= 0x40
        seen += len(data)
        return StreamData(id=frame.id, data=bytes(data))

    router = Router(tamper=flip)
    relay, _, _ = make_relay(router, site)
    assert isinstance(await open_stream(relay, router), StreamOpened)
    tls = TlsClient(pki.client_context(), HOST)
    with pytest.raises(ssl.SSLError):
        async with asyncio.timeout(WAIT):
            await http_get(tls, router.transport(relay, 1))
    assert seen > offset  # the flip happened
    await relay.close_all()


async def test_a_stream_over_its_byte_cap_is_closed(pki: Pki, site: Site) -> None:
    router = Router()
    relay, _, closed = make_relay(router, site, caps=Caps(max_stream_bytes=12_000))
    assert isinstance(await open_stream(relay, router), StreamOpened)
    tls = TlsClient(pki.client_context(), HOST)
    with pytest.raises(ssl.SSLEOFError):  # the page is cut: the client refuses it
        async with asyncio.timeout(WAIT):
            await http_get(tls, router.transport(relay, 1))
    assert relay.open_streams == 0
    assert closed[0].error.startswith("byte cap") and closed[0].total <= 12_000
    async with asyncio.timeout(WAIT):
        await site.disconnected.wait()  # its socket is closed too


async def test_the_byte_cap_counts_what_the_router_sends_too(site: Site) -> None:
    router = Router()
    relay, _, closed = make_relay(router, site, caps=Caps(max_stream_bytes=100_000))
    assert isinstance(await open_stream(relay, router), StreamOpened)
    for _ in range(2):
        await relay.handle(StreamData(id=1, data=b"\x16" * wire.MAX_STREAM_DATA))
    frames = [await router.next()]
    while not isinstance(frames[-1], StreamClose):
        frames.append(await router.next())
    assert frames[-1].error.startswith("byte cap")
    assert closed[0].up == wire.MAX_STREAM_DATA and relay.open_streams == 0
    await relay.handle(StreamData(id=1, data=b"late"))  # after the close: dropped quietly
    assert router.frames.empty()


@pytest.mark.parametrize("port", [22, 8443, 6379])
async def test_a_port_other_than_80_and_443_is_refused(site: Site, port: int) -> None:
    router = Router()
    relay, opened, _ = make_relay(router, site)
    refused = await open_stream(relay, router, port=port)
    assert isinstance(refused, StreamRefused) and refused.reason == StreamRefusal.PORT
    assert opened == [] and relay.open_streams == 0


@pytest.mark.parametrize("host", ["public.example", "127.0.0.1", HOST])
async def test_a_private_target_is_refused_when_the_flag_is_off(site: Site, host: str) -> None:
    """`public.example` resolves to 127.0.0.1: the resolved address is what is judged."""
    router = Router()
    relay, opened, _ = make_relay(router, site, allow_private=False)
    refused = await open_stream(relay, router, host=host)
    assert isinstance(refused, StreamRefused) and refused.reason == StreamRefusal.DESTINATION
    assert "loopback" in refused.message and opened == []


async def test_concurrent_stream_cap_and_duplicate_ids(pki: Pki, site: Site) -> None:
    router = Router()
    relay, _, _ = make_relay(router, site, caps=Caps(max_streams=2))
    assert isinstance(await open_stream(relay, router, 1), StreamOpened)
    dup = await open_stream(relay, router, 1)
    assert isinstance(dup, StreamRefused) and dup.reason == StreamRefusal.DUPLICATE
    assert isinstance(await open_stream(relay, router, 2), StreamOpened)
    over = await open_stream(relay, router, 3)
    assert isinstance(over, StreamRefused) and over.reason == StreamRefusal.TOO_MANY_STREAMS
    await relay.handle(StreamClose(id=1))
    assert isinstance(await open_stream(relay, router, 3), StreamOpened)  # a slot is free again
    assert relay.open_streams == 2
    await relay.close_all()
    assert relay.open_streams == 0
    shut = await open_stream(relay, router, 4)
    assert isinstance(shut, StreamRefused) and shut.reason == StreamRefusal.SHUTTING_DOWN


async def test_an_unreachable_target_is_refused_as_connect_failed(site: Site) -> None:
    router = Router()
    relay, _, _ = make_relay(router, site)
    probe = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
    port = probe.sockets[0].getsockname()[1]
    probe.close()
    await probe.wait_closed()
    relay.policy.ports = frozenset({port})  # a port nothing listens on any more
    refused = await open_stream(relay, router, port=port)
    assert isinstance(refused, StreamRefused) and refused.reason == StreamRefusal.CONNECT_FAILED
    assert relay.open_streams == 0


async def test_bandwidth_is_shaped_by_the_token_bucket(pki: Pki, site: Site) -> None:
    """A fake clock that only moves when the relay sleeps: what it slept is what the bytes
    cost at the configured rate, less the burst."""
    now = [0.0]
    slept: list[float] = []

    async def sleep(seconds: float) -> None:
        slept.append(seconds)
        now[0] += seconds
        await asyncio.sleep(0)

    router = Router()
    caps = Caps(bytes_per_second=100_000, burst_bytes=4096)
    relay, _, closed = make_relay(router, site, caps=caps, clock=lambda: now[0], sleep=sleep)
    assert isinstance(await open_stream(relay, router), StreamOpened)
    tls = TlsClient(pki.client_context(), HOST)
    async with asyncio.timeout(WAIT):
        assert (await http_get(tls, router.transport(relay, 1))).body == site.body
    await relay.handle(StreamClose(id=1))
    total = closed[0].total
    assert total > 20_000 and slept
    assert sum(slept) == pytest.approx((total - caps.burst_bytes) / caps.bytes_per_second, rel=1e-6)

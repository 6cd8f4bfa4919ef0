"""The data node agent (`offchain.datanode.DataNode`) against a minimal router on a real
websocket: it joins as "datanode", relays a TLS page the router's side fetches through it,
answers frames that are not its with UNEXPECTED_FRAME, and reconnects after a drop."""

from __future__ import annotations

import asyncio
import ssl
from pathlib import Path

import pytest
from nacl.signing import SigningKey
from websockets.asyncio.server import ServerConnection, serve

from offchain.datanode import DataNode, DataNodeConfig, Policy
from offchain.mesh import Limits, Peer, accept_peer
from offchain.protocol import wire
from offchain.protocol.tls_stream import TlsClient, http_get
from offchain.protocol.wire import ErrorCode, Hello, StreamClose, StreamData, StreamOpen, StreamOpened, Welcome
from tests.protocol._tls_certs import Pki

ROUTER = "0:" + "11" * 32
ROOT = "0:" + "22" * 32
OWNER = "0:" + "33" * 32
WAIT = 5.0
LIMITS = Limits(ping_interval=None, ping_timeout=None)


async def test_datanode_joins_relays_a_page_and_reconnects(tmp_path: Path) -> None:
    pki = Pki.make(["site.test"])
    body = b"<html>" + b"relayed " * 3000 + b"</html>"

    async def page(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await reader.readuntil(b"\r\n\r\n")
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(body) + body)
            await writer.drain()
            await reader.read()
        except (OSError, asyncio.IncompleteReadError, ssl.SSLError):
            pass
        finally:
            writer.close()

    site = await asyncio.start_server(page, "127.0.0.1", 0, ssl=pki.server_context(tmp_path))
    site_port = site.sockets[0].getsockname()[1]
    hellos: list[Hello] = []
    results: asyncio.Queue[object] = asyncio.Queue()

    async def router(ws: ServerConnection) -> None:
        peer = Peer(ws, LIMITS)
        hellos.append(await accept_peer(peer, router=ROUTER, router_key=bytes(32), root=ROOT))
        await peer.send(Welcome(session=f"s{len(hellos)}", compute_unit_price=1, data_unit_price=1))
        if len(hellos) > 1:
            await results.put("reconnected")
            await ws.wait_closed()
            return
        await peer.send(wire.ListModels(id=5))  # not a data node's frame
        err = await peer.recv(timeout=WAIT)
        assert isinstance(err, wire.Error) and err.code == ErrorCode.UNEXPECTED_FRAME and err.id == 5
        await peer.send(StreamOpen(id=7, host="site.test", port=443))
        opened = await peer.recv(timeout=WAIT)
        assert opened == StreamOpened(id=7, address="127.0.0.1")
        tls = TlsClient(pki.client_context(), "site.test")

        async def transport(out: bytes) -> bytes:
            if out:
                await peer.send(StreamData(id=7, data=out))
            frame = await peer.recv(timeout=WAIT)
            return b"" if isinstance(frame, StreamClose) else frame.data  # type: ignore[union-attr]

        response = await http_get(tls, transport)
        await peer.send(StreamClose(id=7))
        await results.put((response.status, response.body, tls.peer_certificate_hash()))
        await ws.close()  # drop the node: it must come back

    async def opener(address: str, port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        return await asyncio.open_connection(address, site_port if port == 443 else port)

    async with site, serve(router, "127.0.0.1", 0, **LIMITS.ws_options()) as server:  # type: ignore[arg-type]
        url = f"ws://127.0.0.1:{server.sockets[0].getsockname()[1]}"
        node = DataNode(
            DataNodeConfig(router_url=url, reconnect_max_delay=0.2, limits=LIMITS),
            key=SigningKey.generate(),
            owner=OWNER,
            policy=Policy(resolver=lambda host: ["127.0.0.1"], allow_private=True),
            opener=opener,
        )
        task = asyncio.create_task(node.run())
        try:
            async with asyncio.timeout(WAIT):
                status, got, leaf = await results.get()  # type: ignore[misc]
                assert (status, got, leaf) == (200, body, pki.leaf_hash)
                assert await results.get() == "reconnected"
                await node.connected.wait()
        finally:
            node.stop()
            async with asyncio.timeout(WAIT):
                await task
    assert [h.role for h in hellos] == ["datanode", "datanode"]
    assert hellos[0].node_key == node.node_key and hellos[0].owner == OWNER
    assert node.streams == 1 and node.relayed > len(body)
    assert not node.connected.is_set()


@pytest.mark.parametrize("url", ["ws://127.0.0.1:9"])
async def test_datanode_retries_an_unreachable_router_until_stopped(url: str) -> None:
    node = DataNode(DataNodeConfig(router_url=url, reconnect_max_delay=0.05), key=SigningKey.generate(), owner=OWNER)
    task = asyncio.create_task(node.run())
    await asyncio.sleep(0.3)
    assert not task.done() and not node.connected.is_set()
    node.stop()
    async with asyncio.timeout(WAIT):
        await task

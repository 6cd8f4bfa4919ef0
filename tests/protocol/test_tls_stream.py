"""The validator's TLS client over a byte stream it does not own (`offchain.protocol.tls_stream`),
against an in-memory TLS server (`ssl.MemoryBIO` on both ends, no sockets): the certificate
is verified (CA, host name), the leaf is what the server served, and one flipped byte
anywhere in the server's stream makes TLS fail."""

from __future__ import annotations

import contextlib
import ssl
from pathlib import Path

import h11
import pytest

from offchain.protocol.tls_stream import HttpGet, TlsClient, http_get
from tests.protocol._tls_certs import Pki

HOST = "site.test"


@pytest.fixture(scope="module")
def pki() -> Pki:
    return Pki.make([HOST, "www.site.test"])


@pytest.fixture(scope="module")
def server_ctx(pki: Pki, tmp_path_factory: pytest.TempPathFactory) -> ssl.SSLContext:
    return pki.server_context(Path(tmp_path_factory.mktemp("tls")))


class MemoryServer:
    """A TLS server on memory buffers that answers one HTTP request with `body`, then closes."""

    def __init__(
        self, ctx: ssl.SSLContext, body: bytes = b"<html>hello</html>", *, framed: bool = True, notify: bool = True
    ) -> None:
        self.inc, self.out = ssl.MemoryBIO(), ssl.MemoryBIO()
        self.ssl = ctx.wrap_bio(self.inc, self.out, server_side=True)
        self.http = h11.Connection(our_role=h11.SERVER)
        self.body, self.framed, self.notify = body, framed, notify
        self.closed = False
        self.request: h11.Request | None = None

    def feed(self, data: bytes) -> bytes:
        if data:
            self.inc.write(data)
        try:
            self.ssl.do_handshake()
            while not self.closed:
                self.http.receive_data(self.ssl.read(65536))
                self._answer()
        except ssl.SSLWantReadError:
            pass
        return self.out.read()

    def _answer(self) -> None:
        while True:
            event = self.http.next_event()
            if event is h11.NEED_DATA:
                return
            if isinstance(event, h11.Request):
                self.request = event
            if isinstance(event, h11.EndOfMessage):
                break
        if self.framed:
            headers = [("Content-Type", "text/html"), ("Content-Length", str(len(self.body)))]
            raw = self.http.send(h11.Response(status_code=200, headers=headers))
            raw += self.http.send(h11.Data(data=self.body)) + self.http.send(h11.EndOfMessage())
        else:  # HTTP/1.0-style: the body ends where the connection does (h11 would chunk it)
            raw = b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nConnection: close\r\n\r\n" + self.body
        self.ssl.write(raw)
        if self.notify:
            with contextlib.suppress(ssl.SSLWantReadError):
                self.ssl.unwrap()
        self.closed = True


def exchange(client: TlsClient, server: MemoryServer, tamper: int | None = None) -> int:
    """Run the client against the server until it closes, flipping the server's byte at
    offset `tamper`; the number of bytes the server sent. Raises what the client raises."""
    sent = 0
    for _ in range(50):
        down = bytearray(server.feed(client.data_to_send()))
        if tamper is not None and sent <= tamper < sent + len(down):
            down[tamper - sent] ^= 0x01
        sent += len(down)
        client.feed(bytes(down))
        if server.closed and not client.data_to_send():
            break
    client.feed_eof()
    return sent


def test_handshake_verifies_and_exposes_the_leaf(pki: Pki, server_ctx: ssl.SSLContext) -> None:
    client = TlsClient(pki.client_context(), HOST)
    assert not client.handshake_done and client.peer_certificate_der() is None
    client.send_app(b"GET / HTTP/1.1\r\nHost: site.test\r\n\r\n")  # buffered until the handshake ends
    server = MemoryServer(server_ctx)
    exchange(client, server)
    assert client.handshake_done and client.eof
    assert client.version == "TLSv1.3"
    assert client.peer_certificate_der() == pki.leaf_der
    assert client.peer_certificate_hash() == pki.leaf_hash
    assert server.request is not None and server.request.target == b"/"
    assert client.received_app().endswith(b"<html>hello</html>")
    assert client.received_app() == b""  # emptied by the read


async def test_http_get_returns_status_headers_body(pki: Pki, server_ctx: ssl.SSLContext) -> None:
    client = TlsClient(pki.client_context(), HOST)
    server = MemoryServer(server_ctx, body=b"x" * 100_000)

    async def transport(out: bytes) -> bytes:
        return server.feed(out)

    status, headers, body = await http_get(client, transport, "/page?q=1", [("Accept", "text/html")])
    assert status == 200 and body == b"x" * 100_000
    assert ("content-length", "100000") in headers  # h11 gives names lower-case
    assert server.request is not None
    assert server.request.target == b"/page?q=1"
    sent = dict(server.request.headers)
    assert sent[b"host"] == HOST.encode() and sent[b"accept"] == b"text/html"


async def test_http_get_close_delimited_body_needs_close_notify(pki: Pki, server_ctx: ssl.SSLContext) -> None:
    for notify in (True, False):
        client = TlsClient(pki.client_context(), HOST)
        server = MemoryServer(server_ctx, body=b"unframed", framed=False, notify=notify)

        async def transport(out: bytes, server: MemoryServer = server) -> bytes:
            data = server.feed(out)
            return data if data or not server.closed else b""

        if notify:
            assert (await http_get(client, transport)).body == b"unframed"
        else:  # a cut stream could be a truncated page: refused
            with pytest.raises(ssl.SSLEOFError):
                await http_get(client, transport)


def test_http_get_body_over_the_limit_is_refused(pki: Pki, server_ctx: ssl.SSLContext) -> None:
    client = TlsClient(pki.client_context(), HOST)
    server = MemoryServer(server_ctx, body=b"y" * 5000)
    get = HttpGet(client, "/", max_body=4096)
    with pytest.raises(ValueError, match="4096"):
        for _ in range(20):
            get.feed(server.feed(get.data_to_send()) or b"")


@pytest.mark.parametrize("name", ["other.test", "site.test.evil", "127.0.0.1"])
def test_wrong_host_name_fails_verification(pki: Pki, server_ctx: ssl.SSLContext, name: str) -> None:
    client = TlsClient(pki.client_context(), name)
    with pytest.raises(ssl.SSLCertVerificationError):
        exchange(client, MemoryServer(server_ctx))


def test_untrusted_ca_fails_verification(server_ctx: ssl.SSLContext) -> None:
    stranger = Pki.make([HOST], ca_name="Another CA")
    client = TlsClient(stranger.client_context(), HOST)
    with pytest.raises(ssl.SSLCertVerificationError):
        exchange(client, MemoryServer(server_ctx))


def test_a_flipped_byte_anywhere_in_the_servers_stream_fails(pki: Pki, server_ctx: ssl.SSLContext) -> None:
    """Every offset of the server's stream (handshake, certificate, session tickets, the page,
    close_notify) is tried: each flip breaks TLS. The one exception is the first record's
    `legacy_record_version` (bytes 1-2 of the plaintext ServerHello record), which TLS 1.3
    says to ignore (RFC 8446, 5.1): a flip there is harmless, the page is the same."""
    request = b"GET / HTTP/1.1\r\nHost: site.test\r\n\r\n"
    honest = TlsClient(pki.client_context(), HOST)
    honest.send_app(request)
    total = exchange(honest, MemoryServer(server_ctx))
    page = honest.received_app()
    assert honest.eof and page.endswith(b"<html>hello</html>") and total > 1000
    unnoticed = []
    for offset in range(total):
        client = TlsClient(pki.client_context(), HOST)
        client.send_app(request)
        try:
            sent = exchange(client, MemoryServer(server_ctx), tamper=offset)
        except ssl.SSLError:
            continue
        if offset >= sent:  # this run's stream was shorter (ECDSA signatures vary in length)
            continue
        unnoticed.append(offset)
        assert client.received_app() == page
    assert set(unnoticed) <= {1, 2}, f"flipped bytes at {unnoticed} went unnoticed"

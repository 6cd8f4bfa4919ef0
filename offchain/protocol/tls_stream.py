"""A TLS client over a byte stream it does not own (no I/O): the validator's end of a relay.

In provenance mode (DESIGN.md, "Data node") the validator is the TLS client and a data
node only moves bytes between it and the site, so the node sees ciphertext and cannot forge
a page. `TlsClient` is that client, on `ssl.MemoryBIO` + `SSLContext.wrap_bio`: the caller
moves the bytes (here, `StreamData` frames through the router).

    tls = TlsClient(ssl.create_default_context(), "example.org")   # SNI + hostname check
    send(tls.data_to_send())                 # ClientHello
    tls.feed(bytes_from_network)             # raises ssl.SSLError on any tampering
    tls.send_app(b"...")  /  tls.received_app()
    tls.peer_certificate_der()               # the leaf, for the provenance record

On top, one HTTP/1.1 GET with h11: `HttpGet` is the sans-I/O exchange, `http_get` drives it
with an injected `transport(bytes_out) -> bytes_in` coroutine (b"" in: the stream closed).

Every record is authenticated (AEAD), so a single flipped byte anywhere in what the server
sent makes `feed` raise `ssl.SSLError`; a stream cut short is an error too, unless the
response's own framing (Content-Length, chunked) says it was complete.
"""

from __future__ import annotations

import contextlib
import hashlib
import ssl
from collections.abc import Awaitable, Callable, Iterable
from typing import NamedTuple

import h11

__all__ = ["HttpGet", "HttpResponse", "TlsClient", "Transport", "http_get"]

Transport = Callable[[bytes], Awaitable[bytes]]
"""Send the bytes given (maybe none), return the next bytes received; b"" when the stream closed."""

_READ = 64 * 1024


class TlsClient:
    """One TLS client connection over memory buffers (see the module doc)."""

    def __init__(self, context: ssl.SSLContext, server_hostname: str) -> None:
        """`context` decides what is trusted (a CA file, or the system's roots) and should
        verify: `check_hostname` with `CERT_REQUIRED`, as `ssl.create_default_context()`."""
        self._incoming = ssl.MemoryBIO()
        self._outgoing = ssl.MemoryBIO()
        self._ssl = context.wrap_bio(self._incoming, self._outgoing, server_side=False, server_hostname=server_hostname)
        self.server_hostname = server_hostname
        self.handshake_done = False
        self.eof = False  # the server closed the TLS session (close_notify)
        self._pending = bytearray()  # app data given before the handshake finished
        self._received = bytearray()
        self._step()

    def feed(self, data: bytes) -> None:
        """Bytes from the network. Raises `ssl.SSLError` (e.g. a bad record MAC, a certificate
        that does not verify: `ssl.SSLCertVerificationError`)."""
        if data:
            self._incoming.write(data)
            self._step()

    def feed_eof(self) -> None:
        """The stream closed. Raises `ssl.SSLEOFError` unless the server closed TLS first."""
        self._incoming.write_eof()
        if not self.eof:
            self._step()

    def data_to_send(self) -> bytes:
        """TLS bytes for the network (handshake and records), emptied by the call."""
        return self._outgoing.read()

    def send_app(self, data: bytes) -> None:
        """Application bytes to encrypt (buffered until the handshake is done)."""
        self._pending += data
        self._step()

    def received_app(self) -> bytes:
        """Decrypted application bytes received so far, emptied by the call."""
        out = bytes(self._received)
        self._received.clear()
        return out

    def peer_certificate_der(self) -> bytes | None:
        """The server's leaf certificate (DER), once the handshake is done."""
        return self._ssl.getpeercert(binary_form=True) if self.handshake_done else None

    def peer_certificate_hash(self) -> bytes | None:
        """sha256 of the leaf certificate (DER): what a provenance record holds."""
        der = self.peer_certificate_der()
        return hashlib.sha256(der).digest() if der else None

    @property
    def version(self) -> str | None:
        return self._ssl.version()

    def close(self) -> None:
        """Send close_notify (no more application data from us)."""
        with contextlib.suppress(ssl.SSLWantReadError, ssl.SSLZeroReturnError):
            self._ssl.unwrap()

    def _step(self) -> None:
        if not self.handshake_done:
            try:
                self._ssl.do_handshake()
            except ssl.SSLWantReadError:
                return
            self.handshake_done = True
        if self._pending:
            self._ssl.write(bytes(self._pending))
            self._pending.clear()
        while not self.eof:
            try:
                chunk = self._ssl.read(_READ)
            except ssl.SSLWantReadError:
                return
            except ssl.SSLZeroReturnError:
                self.eof = True
                return
            if not chunk:
                self.eof = True
                return
            self._received += chunk


class HttpResponse(NamedTuple):
    status: int
    headers: list[tuple[str, str]]
    body: bytes


class HttpGet:
    """One HTTP/1.1 GET over a `TlsClient` (sans-I/O): `data_to_send()`, `feed(bytes)`,
    `feed(b"")` at the end of the stream, until `response` is set.

    Raises (from `feed`): `ssl.SSLError` (tampering, a truncated TLS stream), `h11`'s
    `ProtocolError` (not HTTP), `ValueError` (a body over `max_body`)."""

    def __init__(
        self,
        tls: TlsClient,
        path: str = "/",
        headers: Iterable[tuple[str, str]] = (),
        *,
        max_body: int = 16 * 1024 * 1024,
    ) -> None:
        self.tls = tls
        self.max_body = max_body
        self.response: HttpResponse | None = None
        self._conn = h11.Connection(our_role=h11.CLIENT)
        self._head: h11.Response | None = None
        self._body = bytearray()
        given = [(k, v) for k, v in headers]
        names = {k.lower() for k, _ in given}
        base = [("Host", tls.server_hostname)] if "host" not in names else []
        if "connection" not in names:
            base.append(("Connection", "close"))
        if "user-agent" not in names:
            base.append(("User-Agent", "cocoon-validator/1"))
        request = h11.Request(method="GET", target=path, headers=base + given)
        tls.send_app(self._conn.send(request) + (self._conn.send(h11.EndOfMessage()) or b""))

    def data_to_send(self) -> bytes:
        return self.tls.data_to_send()

    @property
    def done(self) -> bool:
        return self.response is not None

    def feed(self, data: bytes) -> None:
        if self.response is not None:
            return
        if data:
            self.tls.feed(data)
        else:
            # a complete framed response never gets here; a close-delimited body must end with
            # close_notify, or the stream may have been cut short (ssl.SSLEOFError)
            self.tls.feed_eof()
        app = self.tls.received_app()
        if app:
            self._conn.receive_data(app)
        if self.tls.eof or not data:
            self._conn.receive_data(b"")
        self._events()

    def _events(self) -> None:
        while self.response is None:
            event = self._conn.next_event()
            if event is h11.NEED_DATA or event is h11.PAUSED:
                return
            if isinstance(event, h11.Response):
                self._head = event
            elif isinstance(event, h11.Data):
                self._body += event.data
                if len(self._body) > self.max_body:
                    raise ValueError(f"the response body passed {self.max_body} bytes")
            elif isinstance(event, h11.EndOfMessage):
                assert self._head is not None
                self.response = HttpResponse(
                    status=self._head.status_code,
                    headers=[(k.decode("latin-1"), v.decode("latin-1")) for k, v in self._head.headers],
                    body=bytes(self._body),
                )
            elif isinstance(event, h11.ConnectionClosed):
                raise h11.RemoteProtocolError("the server closed before the response was complete")


async def http_get(
    tls: TlsClient,
    transport: Transport,
    path: str = "/",
    headers: Iterable[tuple[str, str]] = (),
    *,
    max_body: int = 16 * 1024 * 1024,
) -> HttpResponse:
    """GET `path` over `tls`, moving bytes with `transport`; the (status, headers, body).

    The caller bounds the time (e.g. `asyncio.timeout`); see `HttpGet` for what it raises."""
    exchange = HttpGet(tls, path, headers, max_body=max_body)
    while exchange.response is None:
        exchange.feed(await transport(exchange.data_to_send()))
    return exchange.response

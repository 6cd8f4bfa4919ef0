"""A local web for tests and the local network: a few fictional sites served over HTTPS on
loopback, with their own test CA, resolved by configuration (no internet, no /etc/hosts).

- `LocalWeb(WebConfig(...))` generates a CA (EC P-256) at start, one leaf certificate per
  host name (the name as its SAN) signed by it, writes the CA's PEM to `ca_file`, and serves
  every host on one port (`port`): the TLS server picks the host's certificate from the
  client's SNI (`sni_callback`), and HTTP/1.1 (h11) routes on the `Host` header. A name
  it does not serve gets a `localhost` certificate (so verification fails) and a 421.
- `Resolver` maps a host name to (127.0.0.1, port), whatever port its URL names, so URLs
  are plain `https://news.cocoon.test/...`; `ResolvingTransport` is an httpx transport
  that connects there while TLS still sends SNI = the host name and verifies the
  certificate for it; `Resolver.open_connection` does the same for raw asyncio streams.
- Every site has the same shape: `/` (links to every page, same-site, `/private/` and other
  sites), three content pages (a few paragraphs of English, links same-site and
  cross-site), `/robots.txt` (disallows `/private/`), `/private/`, `/slow` (its headers
  at once, its body after `slow_delay` seconds), `/huge` (`huge_size` bytes of HTML),
  `/moved` (301 to the first content page) and a 404 for anything else; GET and HEAD (405
  otherwise), Content-Type and Content-Length always set. Bodies are pure
  functions of the host, the path and the config's hosts (never of the port), so tests
  can compare hashes.

Run as a process: `python -m offchain.devnet._web --ready-file F` writes JSON
`{port, host, hosts, ca_file, resolve}` once listening (`Devnet.start_web()` starts it so).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime
import functools
import hashlib
import ipaddress
import logging
import os
import random
import shutil
import signal
import ssl
import tempfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from html import escape
from pathlib import Path
from typing import Any

import h11
import httpcore
import httpx
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from offchain.agentkit import write_ready
from offchain.errors import ConfigError

__all__ = ["DEFAULT_HOSTS", "LocalWeb", "Resolver", "ResolvingTransport", "WebConfig"]

log = logging.getLogger("cocoon.devnet.web")

DEFAULT_HOSTS = ("news.cocoon.test", "docs.cocoon.test", "shop.cocoon.test")
MiB = 1 << 20
_CHUNK = 64 * 1024
_IDLE_TIMEOUT = 30.0  # seconds a keep-alive connection may sit without a request


@dataclass(frozen=True)
class WebConfig:
    hosts: tuple[str, ...] = DEFAULT_HOSTS
    host: str = "127.0.0.1"  # the address to listen on (and that the resolver answers)
    port: int = 0  # 0: a free port from the OS (see `LocalWeb.port`)
    slow_delay: float = 1.0  # seconds `/slow` holds its body back
    huge_size: int = 8 * MiB  # bytes in `/huge`'s body
    dir: Path | str | None = None  # where the CA and keys go; None: a temporary folder removed at close


# ---- name resolution ------------------------------------------------------------------------
class Resolver:
    """Host name -> (address, port), by configuration. Names it does not know resolve to
    themselves (with the port asked for)."""

    def __init__(self, mapping: Mapping[str, tuple[str, int]] | None = None) -> None:
        self._map = {h.lower(): (a, int(p)) for h, (a, p) in (mapping or {}).items()}

    def resolve(self, host: str, port: int = 443) -> tuple[str, int]:
        return self._map.get(host.lower().rstrip("."), (host, port))

    def __contains__(self, host: object) -> bool:
        return isinstance(host, str) and host.lower().rstrip(".") in self._map

    @property
    def hosts(self) -> tuple[str, ...]:
        return tuple(self._map)

    def as_dict(self) -> dict[str, list[str | int]]:
        """JSON-ready: `{host: [address, port]}` (what the web's ready file carries)."""
        return {h: [a, p] for h, (a, p) in self._map.items()}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Resolver:
        return cls({h: (str(v[0]), int(v[1])) for h, v in data.items()})

    async def open_connection(
        self, host: str, port: int = 443, *, ssl: ssl.SSLContext, timeout: float | None = 10.0
    ) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        """A TLS stream to `host` at its resolved address, with SNI and verification for
        `host`. Cancelling is safe (nothing is left open); call concurrently at will."""
        addr, rport = self.resolve(host, port)
        return await asyncio.wait_for(
            asyncio.open_connection(addr, rport, ssl=ssl, server_hostname=host), timeout
        )

    def transport(self, verify: ssl.SSLContext, **kwargs: Any) -> ResolvingTransport:
        return ResolvingTransport(self, verify=verify, **kwargs)


class _ResolvingBackend(httpcore.AsyncNetworkBackend):
    """httpcore's network backend with the TCP target rewritten; TLS is started later by
    httpcore with server_hostname = the URL's host, so SNI and verification are the name's."""

    def __init__(self, resolver: Resolver, inner: httpcore.AsyncNetworkBackend) -> None:
        self._resolver = resolver
        self._inner = inner

    async def connect_tcp(
        self, host: str, port: int, timeout: float | None = None, local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        addr, rport = self._resolver.resolve(host, port)
        return await self._inner.connect_tcp(addr, rport, timeout, local_address, socket_options)

    async def connect_unix_socket(
        self, path: str, timeout: float | None = None, socket_options: Iterable[Any] | None = None
    ) -> httpcore.AsyncNetworkStream:
        return await self._inner.connect_unix_socket(path, timeout, socket_options)

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


class ResolvingTransport(httpx.AsyncHTTPTransport):
    """An httpx transport that connects through a `Resolver`:
    `httpx.AsyncClient(transport=ResolvingTransport(resolver, verify=ctx))` fetches
    `https://news.cocoon.test/` from the local web, verifying its certificate with `ctx`.
    Environment proxies are ignored (the names are local)."""

    def __init__(
        self, resolver: Resolver, *, verify: ssl.SSLContext, limits: httpx.Limits | None = None, retries: int = 0
    ) -> None:
        limits = limits or httpx.Limits()
        super().__init__(verify=verify, trust_env=False, limits=limits, retries=retries)
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=verify,
            max_connections=limits.max_connections,
            max_keepalive_connections=limits.max_keepalive_connections,
            keepalive_expiry=limits.keepalive_expiry,
            retries=retries,
            network_backend=_ResolvingBackend(resolver, httpcore.AnyIOBackend()),
        )


# ---- the test CA ----------------------------------------------------------------------------
def _pem_key(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def _cert(subject: str, key: ec.EllipticCurvePrivateKey, issuer: x509.Certificate | None,
          issuer_key: ec.EllipticCurvePrivateKey, sans: list[x509.GeneralName] | None) -> x509.Certificate:
    now = datetime.datetime.now(datetime.UTC)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)])
    ski = x509.SubjectKeyIdentifier.from_public_key(key.public_key())
    b = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(issuer.subject if issuer else name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(days=30))
        .add_extension(ski, critical=False)
    )
    if issuer is None:
        b = b.add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True).add_extension(
            x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True, content_commitment=False,
                          key_encipherment=False, data_encipherment=False, key_agreement=False,
                          encipher_only=False, decipher_only=False), critical=True)
    else:
        isk = issuer.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
        b = (
            b.add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=False, crl_sign=False,
                                         content_commitment=False, key_encipherment=False,
                                         data_encipherment=False, key_agreement=False, encipher_only=False,
                                         decipher_only=False), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(isk), critical=False)
            .add_extension(x509.SubjectAlternativeName(sans or []), critical=False)
        )
    return b.sign(issuer_key, hashes.SHA256())


# ---- the sites ------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Theme:
    name: str
    pages: tuple[tuple[str, str, tuple[str, ...]], ...]  # (path, title, its own sentences) per content page
    sentences: tuple[str, ...]  # the site's general sentences, shared by its pages


_THEMES = (
    _Theme(
        "news",
        (
            ("/world/harbour-reopens", "The old harbour reopens after two years of repairs", (
                "The old harbour opened to boats again on Saturday after two years of repairs.",
                "Engineers spent most of the winter replacing the wooden supports under the pier.",
                "Local residents gathered early in the morning to watch the first boats arrive.",
                "Officials said the total cost stayed within the budget approved last spring.",
                "Several shop owners near the water reported more visitors during the first weekend.",
                "Critics argued that the money could have been spent on the schools instead.",
                "The fishing cooperative plans to move its weekly market back to the quay.",
            )),
            ("/science/deep-sea-survey", "A deep sea survey maps cold water corals", (
                "A research ship returned this week from a survey of the cold water corals off the coast.",
                "Researchers collected more than four hundred samples during the three week voyage.",
                "The survey team used a small remotely operated vehicle to film the sea floor.",
                "Some of the coral reefs they found are thought to be several thousand years old.",
                "Scientists hope the new maps will help protect the most fragile areas from trawling.",
                "A full report is expected to be published before the end of the year.",
                "The university will show the best of the footage at a free public lecture.",
            )),
            ("/local/library-hours", "The city library extends its evening hours", (
                "The city library will stay open later on weekday evenings from next month.",
                "Visitors will be able to borrow books until nine o'clock from Monday to Friday.",
                "Librarians said that students had asked for longer opening hours for years.",
                "The extra hours are paid for by a small grant from a local charity.",
                "The reading room on the top floor will also be open for quiet study.",
                "The change will be reviewed after six months to see how many people use it.",
                "Children's story evenings will move to Thursdays to suit working parents.",
            )),
        ),
        (
            "The council will hold a public meeting next Tuesday to discuss the next steps.",
            "The mayor thanked the volunteers who helped to make it happen.",
            "Readers can send their questions to the newsroom by email.",
            "Weather forecasters expect mild temperatures for the rest of the week.",
            "A small exhibition in the town hall explains the history of the neighbourhood.",
            "Our reporters will follow the story over the coming weeks.",
        ),
    ),
    _Theme(
        "docs",
        (
            ("/guide/install", "Installing the command line tool", (
                "This page explains how to install the command line tool on your computer.",
                "The tool runs on any recent version of Linux and macOS with Python installed.",
                "Download the latest release and unpack it into a folder of your choice.",
                "Add that folder to your path so that your shell can find the tool.",
                "You can check the installed version by running the tool with the version flag.",
                "Older releases remain available for download from the archive page.",
                "Upgrading keeps your data folder, so nothing has to be copied by hand.",
            )),
            ("/guide/configuration", "Writing a configuration file", (
                "This page explains how to write a configuration file for the tool.",
                "Each setting in the configuration file has a default that suits most users.",
                "Values given on the command line take precedence over the configuration file.",
                "If a setting is misspelled, the tool stops at start and names the unknown key.",
                "Time values are given in seconds and may contain a fractional part.",
                "Paths in the file are read relative to the folder that holds the file.",
                "Keep secrets such as keys in the environment rather than in the file itself.",
            )),
            ("/reference/api", "The HTTP API reference", (
                "This page lists every endpoint of the HTTP API with its parameters and answers.",
                "The server listens on a local port and answers requests in plain JSON.",
                "Every response carries a status code and a short message that explains it.",
                "Requests that arrive without a valid key are rejected with an error.",
                "Large uploads are split into parts, and each part is checked on arrival.",
                "The health endpoint answers with a short report that monitoring can poll.",
                "Clients should retry a failed request after a short and growing pause.",
            )),
        ),
        (
            "The examples in this guide assume that the tool is already on your path.",
            "Logs are written to standard error, one event per line, with a timestamp.",
            "Please report problems with a copy of the log and the exact command you ran.",
            "Every release is described in the changelog, with its fixes and new features.",
            "Questions that are not answered here can be asked on the community forum.",
            "The documentation is updated together with each release of the tool.",
        ),
    ),
    _Theme(
        "shop",
        (
            ("/products/kettle", "A stainless steel kettle for the kitchen", (
                "Our stainless steel kettle is made for kitchens that see a lot of tea.",
                "It boils a full litre of water in a little under four minutes.",
                "Its handle stays cool and the lid opens with a single button.",
                "The kettle switches itself off when the water boils or the jug is empty.",
                "A filter in the spout keeps scale out of your cup.",
                "Reviewers praised the simple design and the quiet heating element.",
                "The base turns freely, so the kettle can be lifted from any side.",
            )),
            ("/products/desk-lamp", "A desk lamp with a warm adjustable light", (
                "Our desk lamp gives a warm light that is easy on the eyes in the evening.",
                "It has three brightness levels that you choose with a touch on the base.",
                "Its arm can be turned and tilted to light exactly the part of the desk you need.",
                "The lamp uses very little power and its light source lasts for many years.",
                "A heavy base keeps it steady even when the arm is fully stretched.",
                "Reviewers liked the soft light and the careful finish of the joints.",
                "It comes with a long cable and a plug that fits standard sockets.",
            )),
            ("/products/backpack", "A light backpack for daily travel", (
                "Our light backpack is made for the daily trip to work or school.",
                "It weighs less than a kilogram and has a padded laptop sleeve.",
                "Its fabric resists light rain, and the zips are sealed against dust.",
                "Wide shoulder straps spread the weight when the bag is full.",
                "A hidden pocket at the back keeps a passport or a wallet out of sight.",
                "Reviewers praised the many pockets and the strong stitching of the seams.",
                "It is available in four colours, from dark grey to a bright orange.",
            )),
        ),
        (
            "Orders placed before noon are usually shipped on the same working day.",
            "Every product comes with a two year warranty against manufacturing defects.",
            "Customers may return unused items within thirty days for a full refund.",
            "Delivery is free for orders above a modest minimum amount.",
            "Prices include tax, and the final total is shown before you pay.",
            "Our team answers questions by email within one business day.",
        ),
    ),
)


def _theme(host: str) -> _Theme:
    label = host.split(".", 1)[0]
    for t in _THEMES:
        if t.name == label:
            return t
    return _THEMES[hashlib.sha256(host.encode()).digest()[0] % len(_THEMES)]


@dataclass(frozen=True)
class _Reply:
    status: int
    headers: tuple[tuple[str, str], ...]
    body: bytes
    delay: float = 0.0  # seconds between the headers and the body


def _html_reply(status: int, body: str, *, extra: tuple[tuple[str, str], ...] = (), delay: float = 0.0) -> _Reply:
    data = body.encode()
    headers = (("Content-Type", "text/html; charset=utf-8"), ("Content-Length", str(len(data))), *extra)
    return _Reply(status, headers, data, delay)


class _Site:
    """One host's pages: pure functions of (host, the web's hosts, the config)."""

    def __init__(self, host: str, hosts: tuple[str, ...], config: WebConfig) -> None:
        self.host = host
        self.theme = _theme(host)
        self.others = tuple(h for h in hosts if h != host)
        self.config = config

    def _paragraphs(self, path: str, own: tuple[str, ...]) -> list[str]:
        """`own[0]` opens the page; the rest of `own` and the site's general sentences follow,
        in an order fixed by (host, path), three to a paragraph."""
        rest = [*own[1:], *self.theme.sentences]
        random.Random(f"{self.host}{path}").shuffle(rest)
        sentences = [*own[:1], *rest]
        return [" ".join(sentences[i : i + 3]) for i in range(0, len(sentences), 3)]

    def _page(self, path: str, title: str, links: list[tuple[str, str]], own: tuple[str, ...]) -> str:
        nav = " | ".join(f'<a href="{escape(href)}">{escape(text)}</a>' for href, text in links)
        paras = "\n".join(f"<p>{escape(p)}</p>" for p in self._paragraphs(path, own))
        cross = " ".join(f'<a href="https://{h}/">{escape(h)}</a>' for h in self.others)
        return (
            "<!DOCTYPE html>\n"
            f'<html lang="en"><head><meta charset="utf-8"><title>{escape(title)}</title></head>\n'
            f"<body>\n<header><nav>{nav}</nav></header>\n"
            f"<main><article>\n<h1>{escape(title)}</h1>\n{paras}\n</article></main>\n"
            f"<footer>Elsewhere: {cross}</footer>\n</body></html>\n"
        )

    @functools.cached_property
    def routes(self) -> dict[str, _Reply]:
        pages = self.theme.pages
        home = ("/", f"{self.host} home")
        routes: dict[str, _Reply] = {}
        index_links = [*((path, title) for path, title, _ in pages), ("/private/", "Members only")]
        intro = (f"Welcome to {self.host}, where you can read the pages listed below.", *(s[0] for *_, s in pages))
        routes["/"] = _html_reply(200, self._page("/", f"Welcome to {self.host}", index_links, intro))
        for i, (path, title, own) in enumerate(pages):
            nxt = pages[(i + 1) % len(pages)]
            links = [home, (nxt[0], nxt[1])]
            if self.others:
                other = self.others[i % len(self.others)]
                links.append((f"https://{other}{_theme(other).pages[i % 3][0]}", f"Read on {other}"))
            routes[path] = _html_reply(200, self._page(path, title, links, own))
        routes["/private/"] = _html_reply(200, self._page("/private/", "Members only", [home],
                                                          ("Robots are asked not to read this page.",)))
        robots = f"User-agent: *\nDisallow: /private/\n\n# {self.host}\n".encode()
        routes["/robots.txt"] = _Reply(200, (("Content-Type", "text/plain; charset=utf-8"),
                                             ("Content-Length", str(len(robots)))), robots)
        slow = self._page("/slow", "A page that takes its time", [home], ("This page is served slowly on purpose.",))
        routes["/slow"] = _html_reply(200, slow, delay=self.config.slow_delay)
        target = pages[0][0]
        moved = f'<!DOCTYPE html>\n<html><body><a href="{target}">Moved</a></body></html>\n'
        routes["/moved"] = _html_reply(301, moved, extra=(("Location", target),))
        return routes

    @functools.cached_property
    def huge(self) -> _Reply:
        head = b"<!DOCTYPE html>\n<html><head><title>A very long page</title></head><body><main>\n"
        tail = b"</main></body></html>\n"
        own = tuple(s for *_, sentences in self.theme.pages for s in sentences)
        para = b"".join(f"<p>{escape(p)}</p>\n".encode() for p in self._paragraphs("/huge", own))
        size = self.config.huge_size
        filler = head + para * (size // len(para) + 1)
        data = filler[: size - len(tail)] + tail if size >= len(tail) else b"x" * size
        return _Reply(200, (("Content-Type", "text/html; charset=utf-8"), ("Content-Length", str(len(data)))), data)

    def reply(self, path: str) -> _Reply:
        path = path.split("?", 1)[0].split("#", 1)[0] or "/"
        if path == "/huge":
            return self.huge
        found = self.routes.get(path)
        if found is not None:
            return found
        return _not_found(path)


def _not_found(path: str) -> _Reply:
    return _html_reply(404, f"<!DOCTYPE html>\n<html><body><h1>Not found</h1><p>{escape(path)}</p></body></html>\n")


# ---- the server -----------------------------------------------------------------------------
class LocalWeb:
    """The local web: `async with LocalWeb(WebConfig()) as web:` then `web.port`, `web.hosts`,
    `web.url(host, path)`, `web.ca_file`, `web.resolver`, `web.client_context()`,
    `web.client()` (an httpx client through the resolver, trusting the CA)."""

    def __init__(self, config: WebConfig | None = None) -> None:
        self.config = config or WebConfig()
        if not self.config.hosts:
            raise ConfigError("the local web needs at least one host name")
        self.hosts = tuple(h.lower() for h in self.config.hosts)
        self._sites = {h: _Site(h, self.hosts, self.config) for h in self.hosts}
        self._tmp: Path | None = None
        self._server: asyncio.Server | None = None
        self._conns: dict[asyncio.Task[None], asyncio.StreamWriter] = {}
        self._closing = asyncio.Event()
        self._contexts: dict[str, ssl.SSLContext] = {}
        self._default_context: ssl.SSLContext | None = None
        self.dir = Path(self.config.dir) if self.config.dir is not None else Path()
        self.ca_file = Path()
        self.port = 0
        self.resolver = Resolver()

    async def __aenter__(self) -> LocalWeb:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.close()
        await self.wait_closed()

    # ---- certificates ------------------------------------------------------------------------
    def _make_certs(self) -> None:
        if self.config.dir is None:
            self._tmp = Path(tempfile.mkdtemp(prefix="cocoon-web-"))
            self.dir = self._tmp
        self.dir.mkdir(parents=True, exist_ok=True)
        ca_key = ec.generate_private_key(ec.SECP256R1())
        ca = _cert("Cocoon local web test CA", ca_key, None, ca_key, None)
        self.ca_file = self.dir / "ca.pem"
        self.ca_file.write_bytes(ca.public_bytes(serialization.Encoding.PEM))

        def leaf_context(name: str, sans: list[x509.GeneralName]) -> ssl.SSLContext:
            key = ec.generate_private_key(ec.SECP256R1())
            cert = _cert(name, key, ca, ca_key, sans)
            cert_file, key_file = self.dir / f"{name}.pem", self.dir / f"{name}.key"
            cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
            fd = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "wb") as f:
                f.write(_pem_key(key))
            ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            ctx.load_cert_chain(cert_file, key_file)
            return ctx

        for h in self.hosts:
            self._contexts[h] = leaf_context(h, [x509.DNSName(h)])
        default = leaf_context("localhost", [x509.DNSName("localhost"),
                                             x509.IPAddress(ipaddress.ip_address("127.0.0.1"))])
        default.sni_callback = self._sni
        self._default_context = default

    def _sni(self, sslobj: ssl.SSLObject, name: str | None, _ctx: ssl.SSLContext) -> int | None:
        chosen = self._contexts.get((name or "").lower())
        if chosen is not None:
            sslobj.context = chosen
        return None  # unknown names get the default (localhost) certificate, and fail verification

    def server_context(self) -> ssl.SSLContext:
        """The listening socket's context: SNI picks the host's certificate."""
        if self._default_context is None:
            raise ConfigError("the local web is not started")
        return self._default_context

    def client_context(self) -> ssl.SSLContext:
        """A client context that trusts only this web's CA, with hostname checks on."""
        return ssl.create_default_context(cafile=str(self.ca_file))

    def transport(self, **kwargs: Any) -> ResolvingTransport:
        return ResolvingTransport(self.resolver, verify=self.client_context(), **kwargs)

    def client(self, **kwargs: Any) -> httpx.AsyncClient:
        """An httpx client that reaches these hosts by name and verifies them with the CA."""
        return httpx.AsyncClient(transport=self.transport(), **kwargs)

    def url(self, host: str, path: str = "/") -> str:
        if host.lower() not in self._sites:
            raise ConfigError(f"{host} is not one of the local web's hosts {self.hosts}")
        return f"https://{host.lower()}{path if path.startswith('/') else '/' + path}"

    def info(self) -> dict[str, Any]:
        """What the ready file holds."""
        return {"port": self.port, "host": self.config.host, "hosts": list(self.hosts),
                "ca_file": str(self.ca_file), "resolve": self.resolver.as_dict()}

    # ---- lifecycle ---------------------------------------------------------------------------
    async def start(self) -> None:
        """Make the certificates and listen. Call once; not safe to cancel half-way."""
        self._make_certs()
        self._server = await asyncio.start_server(
            self._connection, self.config.host, self.config.port, ssl=self.server_context(),
            ssl_handshake_timeout=10.0,
        )
        self.port = int(self._server.sockets[0].getsockname()[1])
        self.resolver = Resolver({h: (self.config.host, self.port) for h in self.hosts})
        log.info("local web listening port=%d hosts=%s", self.port, ",".join(self.hosts))

    async def serve_forever(self) -> None:
        """Serve until `close()` (or cancellation, which is safe)."""
        if self._server is None:
            raise ConfigError("the local web is not started")
        with contextlib.suppress(asyncio.CancelledError):
            await self._server.serve_forever()

    def close(self) -> None:
        """Stop listening and drop open connections (idempotent)."""
        if self._server is not None:
            self._server.close()
        self._closing.set()
        for w in list(self._conns.values()):
            w.transport.abort()

    async def wait_closed(self) -> None:
        """Wait for the server to finish closing; removes a temporary certificate folder."""
        if self._server is not None:
            await self._server.wait_closed()
            self._server = None
        if self._tmp is not None:
            shutil.rmtree(self._tmp, ignore_errors=True)
            self._tmp = None

    # ---- HTTP/1.1 ----------------------------------------------------------------------------
    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._conns[task] = writer
        conn = h11.Connection(h11.SERVER)
        request: h11.Request | None = None
        try:
            while True:
                event = conn.next_event()
                if event is h11.NEED_DATA:
                    data = await asyncio.wait_for(reader.read(_CHUNK), _IDLE_TIMEOUT)
                    conn.receive_data(data)
                elif isinstance(event, h11.Request):
                    request = event
                elif isinstance(event, h11.EndOfMessage) and request is not None:
                    await self._answer(conn, writer, request)
                    request = None
                    if conn.our_state is h11.MUST_CLOSE or conn.their_state is not h11.DONE:
                        break
                    conn.start_next_cycle()
                elif isinstance(event, h11.ConnectionClosed) or event is h11.PAUSED:
                    break
        except h11.RemoteProtocolError:
            with contextlib.suppress(Exception):
                if conn.our_state in (h11.IDLE, h11.SEND_RESPONSE):
                    await self._send(conn, writer, _html_reply(400, "bad request\n"), head=False)
        except (TimeoutError, ConnectionError, ssl.SSLError, h11.LocalProtocolError):
            pass
        finally:
            self._conns.pop(task, None)
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    async def _answer(self, conn: h11.Connection, writer: asyncio.StreamWriter, req: h11.Request) -> None:
        method = req.method.decode()
        host = dict(req.headers).get(b"host", b"").decode("latin-1").rsplit(":", 1)[0].lower()
        path = req.target.decode("latin-1")
        site = self._sites.get(host)
        if method not in ("GET", "HEAD"):
            reply = _html_reply(405, "method not allowed\n", extra=(("Allow", "GET, HEAD"),))
        elif site is None:
            reply = _html_reply(421, f"{escape(host)} is not served here\n")
        else:
            reply = site.reply(path)
        if log.isEnabledFor(logging.DEBUG):
            log.debug("request host=%s path=%s status=%d", host, path, reply.status)
        await self._send(conn, writer, reply, head=method == "HEAD")

    async def _send(self, conn: h11.Connection, writer: asyncio.StreamWriter, reply: _Reply, *, head: bool) -> None:
        writer.write(conn.send(h11.Response(status_code=reply.status, headers=list(reply.headers))) or b"")
        await writer.drain()
        if not head:
            if reply.delay > 0:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._closing.wait(), reply.delay)
                if self._closing.is_set():
                    raise ConnectionAbortedError("the local web is closing")
            view = memoryview(reply.body)
            for i in range(0, len(view), _CHUNK):
                writer.write(conn.send(h11.Data(data=view[i : i + _CHUNK])) or b"")
                await writer.drain()
        writer.write(conn.send(h11.EndOfMessage()) or b"")
        await writer.drain()


# ---- as a process ---------------------------------------------------------------------------
async def _serve(config: WebConfig, ready_file: Path | None) -> None:
    async with LocalWeb(config) as web:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, web.close)
        if ready_file is not None:
            write_ready(ready_file, web.info())
        await web.serve_forever()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m offchain.devnet._web",
                                description="Serve the local web's sites over HTTPS on loopback.")
    p.add_argument("--ready-file", type=Path, help="JSON {port, host, hosts, ca_file, resolve} once listening")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--hosts", default=",".join(DEFAULT_HOSTS), help="comma-separated host names")
    p.add_argument("--dir", type=Path, help="where the CA and keys go (default: a temporary folder)")
    p.add_argument("--slow-delay", type=float, default=1.0)
    p.add_argument("--huge-size", type=int, default=8 * MiB)
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    config = WebConfig(hosts=tuple(h.strip() for h in args.hosts.split(",") if h.strip()), host=args.host,
                       port=args.port, slow_delay=args.slow_delay, huge_size=args.huge_size, dir=args.dir)
    asyncio.run(_serve(config, args.ready_file))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

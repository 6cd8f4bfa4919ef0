"""The local web: HTTPS sites on loopback with a test CA, reached by name through a resolver."""

from __future__ import annotations

import asyncio
import hashlib
import ssl
import time
import urllib.robotparser
from collections.abc import AsyncIterator
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import urljoin, urlsplit

import httpx
import pytest
import trafilatura

from offchain.devnet import Devnet, LocalWeb, Resolver, ResolvingTransport, WebConfig
from offchain.errors import ConfigError

SLOW = 0.3
TIMEOUT = httpx.Timeout(5.0)
NEWS, DOCS = "news.cocoon.test", "docs.cocoon.test"
ARTICLE = "/world/harbour-reopens"


@pytest.fixture
async def web(tmp_path: Path) -> AsyncIterator[LocalWeb]:
    async with LocalWeb(WebConfig(slow_delay=SLOW, dir=tmp_path / "web")) as w:
        yield w


@pytest.fixture
async def client(web: LocalWeb) -> AsyncIterator[httpx.AsyncClient]:
    async with web.client(timeout=TIMEOUT) as c:
        yield c


class _Links(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.hrefs: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "a":
            self.hrefs += [v for k, v in attrs if k == "href" and v]


def _links(html: str) -> list[str]:
    p = _Links()
    p.feed(html)
    return p.hrefs


async def test_fetch_two_hosts_with_verification(web: LocalWeb, client: httpx.AsyncClient) -> None:
    for host in (NEWS, DOCS):
        r = await client.get(f"https://{host}/")
        assert r.status_code == 200
        assert r.headers["content-type"] == "text/html; charset=utf-8"
        assert int(r.headers["content-length"]) == len(r.content)
        assert f"Welcome to {host}" in r.text
    assert web.url(NEWS, ARTICLE) == f"https://{NEWS}{ARTICLE}"
    assert set(web.hosts) >= {NEWS, DOCS} and web.resolver.resolve(NEWS) == ("127.0.0.1", web.port)


async def test_fetch_without_the_ca_fails_verification(web: LocalWeb) -> None:
    transport = ResolvingTransport(web.resolver, verify=ssl.create_default_context())
    async with httpx.AsyncClient(transport=transport, timeout=TIMEOUT) as c:
        with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
            await c.get(web.url(NEWS))


async def test_sni_selects_the_host_certificate(web: LocalWeb) -> None:
    for host in web.hosts:
        _, writer = await web.resolver.open_connection(host, ssl=web.client_context())
        try:
            cert = writer.get_extra_info("peercert")
            assert cert["subjectAltName"] == (("DNS", host),)
        finally:
            writer.close()
            await writer.wait_closed()


async def test_unknown_sni_fails_verification(web: LocalWeb) -> None:
    other = Resolver({"other.cocoon.test": ("127.0.0.1", web.port)})
    with pytest.raises(ssl.SSLCertVerificationError):
        await other.open_connection("other.cocoon.test", ssl=web.client_context())


async def test_robots_disallows_private(client: httpx.AsyncClient) -> None:
    r = await client.get(f"https://{NEWS}/robots.txt")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
    rp = urllib.robotparser.RobotFileParser()
    rp.parse(r.text.splitlines())
    assert not rp.can_fetch("cocoon", f"https://{NEWS}/private/")
    assert rp.can_fetch("cocoon", f"https://{NEWS}{ARTICLE}")
    assert (await client.get(f"https://{NEWS}/private/")).status_code == 200  # it exists; robots ask not to read it


async def test_moved_redirects_with_301(client: httpx.AsyncClient) -> None:
    r = await client.get(f"https://{NEWS}/moved")
    assert r.status_code == 301 and r.headers["location"] == ARTICLE
    r = await client.get(f"https://{NEWS}/moved", follow_redirects=True)
    assert r.status_code == 200 and str(r.url) == f"https://{NEWS}{ARTICLE}"


async def test_unknown_path_is_404(client: httpx.AsyncClient) -> None:
    r = await client.get(f"https://{DOCS}/no/such/page")
    assert r.status_code == 404 and int(r.headers["content-length"]) == len(r.content)


async def test_head_and_post(client: httpx.AsyncClient) -> None:
    get = await client.get(f"https://{NEWS}/")
    head = await client.head(f"https://{NEWS}/")
    assert head.status_code == 200 and head.content == b""
    assert head.headers["content-length"] == str(len(get.content))
    assert (await client.post(f"https://{NEWS}/", content=b"x")).status_code == 405


async def test_slow_page_waits_the_configured_delay(client: httpx.AsyncClient) -> None:
    started = time.monotonic()
    r = await client.get(f"https://{NEWS}/slow")
    assert r.status_code == 200 and time.monotonic() - started >= SLOW


async def test_huge_page_has_the_configured_size(web: LocalWeb, client: httpx.AsyncClient) -> None:
    r = await client.get(f"https://{NEWS}/huge")
    assert r.status_code == 200
    assert len(r.content) == int(r.headers["content-length"]) == web.config.huge_size == 8 << 20


async def test_bodies_are_deterministic(web: LocalWeb, client: httpx.AsyncClient, tmp_path: Path) -> None:
    paths = ["/", ARTICLE, "/robots.txt", "/private/", "/moved"]
    first = [hashlib.sha256((await client.get(web.url(NEWS, p))).content).hexdigest() for p in paths]
    async with LocalWeb(WebConfig(dir=tmp_path / "again")) as again, again.client(timeout=TIMEOUT) as c2:
        assert again.port != web.port
        second = [hashlib.sha256((await c2.get(again.url(NEWS, p))).content).hexdigest() for p in paths]
    assert first == second


async def test_trafilatura_extracts_the_main_text(client: httpx.AsyncClient) -> None:
    r = await client.get(f"https://{NEWS}{ARTICLE}")
    text = trafilatura.extract(r.text)
    assert text is not None and len(text) > 500
    assert "The old harbour opened to boats again on Saturday" in text
    assert "Elsewhere" not in text  # the footer is not main text


async def test_links_point_to_existing_pages(web: LocalWeb, client: httpx.AsyncClient) -> None:
    seen: set[str] = set()
    cross = 0
    for host in web.hosts:
        index = web.url(host)
        links = [urljoin(index, h) for h in _links((await client.get(index)).text)]
        for page in [index, *links]:
            if urlsplit(page).path == "/private/":
                continue
            for link in _links((await client.get(page)).text):
                url = urljoin(page, link)
                cross += urlsplit(url).hostname != host
                seen.add(url)
    assert cross > 0 and len(seen) > 10
    for url in sorted(seen):
        assert (await client.get(url)).status_code == 200, url


async def test_url_for_an_unknown_host_raises(web: LocalWeb) -> None:
    with pytest.raises(ConfigError):
        web.url("example.com")


async def test_process_writes_ready_file_and_serves(tmp_path: Path) -> None:
    net = Devnet(tmp_path / "devnet")
    try:
        info = await asyncio.to_thread(net.start_web, slow_delay=0.1, huge_size=4096)
        assert set(info) >= {"port", "hosts", "ca_file", "resolve"} and info == net.web
        resolver = Resolver.from_dict(info["resolve"])
        ctx = ssl.create_default_context(cafile=info["ca_file"])
        async with httpx.AsyncClient(transport=ResolvingTransport(resolver, verify=ctx), timeout=TIMEOUT) as c:
            for host in info["hosts"]:
                assert (await c.get(f"https://{host}/")).status_code == 200
            assert len((await c.get(f"https://{info['hosts'][0]}/huge")).content) == 4096
    finally:
        net.close()


async def test_close_during_the_slow_page_is_prompt(tmp_path: Path) -> None:
    web = LocalWeb(WebConfig(slow_delay=30.0, dir=tmp_path / "web"))
    await web.start()
    async with web.client(timeout=TIMEOUT) as c, c.stream("GET", web.url(NEWS, "/slow")) as r:
        assert r.status_code == 200  # headers come at once, the body waits
        started = time.monotonic()
        web.close()
        await asyncio.wait_for(web.wait_closed(), 5.0)
        with pytest.raises(httpx.RemoteProtocolError):
            await r.aread()
    assert time.monotonic() - started < 5.0

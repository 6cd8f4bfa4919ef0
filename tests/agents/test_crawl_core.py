"""The validator's crawl decisions, without I/O: URLs, content extraction, robots.txt (RFC
9309) and the frontier (order, limits, politeness, redirects, resume) on a fake clock."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from offchain.devnet._web import DEFAULT_HOSTS, LocalWeb, WebConfig, _Site
from offchain.protocol.wire import CrawlSpec, CrawlStop
from offchain.validator._crawl import (
    MAX_CRAWL_DELAY,
    MAX_MAIN_TEXT,
    MAX_REDIRECTS,
    MAX_ROBOTS_BYTES,
    USER_AGENT,
    Done,
    Frontier,
    Page,
    Robots,
    RobotsNeeded,
    Wait,
    check_spec,
    extract,
    host_of,
    normalize_url,
)

NEWS, DOCS, SHOP = DEFAULT_HOSTS
ARTICLE = "/world/harbour-reopens"
ALLOW_ALL = Robots.from_response(404, b"")


class Clock:
    """A clock tests move by hand."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def spec(*seeds: str, **kw: object) -> CrawlSpec:
    kw.setdefault("politeness_ms", 0)
    return CrawlSpec(seeds=list(seeds), **kw)  # type: ignore[arg-type]


def frontier(*seeds: str, clock: Clock | None = None, robots: Robots | None = ALLOW_ALL, **kw: object) -> Frontier:
    """A frontier whose seed hosts' robots.txt is already known (`robots`; None: not yet)."""
    f = Frontier(spec(*seeds, **kw), clock=clock or Clock())
    if robots is not None:
        for s in seeds:
            f.set_robots(host_of(s), robots)
    return f


# ---- a fake web: the local web's sites, without a server --------------------------------------
@dataclass(frozen=True)
class Reply:
    status: int
    content_type: str
    body: bytes
    location: str = ""


@dataclass
class FakeWeb:
    """`fetch(url)` answers as the local web would (same bodies), from `_Site` directly."""

    hosts: tuple[str, ...] = DEFAULT_HOSTS
    fetched: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.sites = {h: _Site(h, self.hosts, WebConfig()) for h in self.hosts}

    def fetch(self, url: str) -> Reply:
        self.fetched.append(url)
        host = host_of(url)
        path = url.split(host, 1)[1] or "/"
        r = self.sites[host].reply(path)
        headers = {k.lower(): v for k, v in r.headers}
        return Reply(r.status, headers.get("content-type", ""), r.body, headers.get("location", ""))


def crawl(f: Frontier, web: FakeWeb, clock: Clock, *, steps: int = 10_000,
          on_page: Callable[[Page, Reply], None] | None = None) -> tuple[CrawlStop, list[str]]:
    """Drive `f` to the end, one fetch at a time, the way the crawler does: robots.txt when
    asked, redirects followed, duplicates (by body) not recorded. Returns (stop, recorded URLs)."""
    bodies: set[bytes] = set()
    recorded: list[str] = []
    for _ in range(steps):
        step = f.next()
        if isinstance(step, Done):
            return step.stop, recorded
        if isinstance(step, Wait):
            clock.advance(step.seconds)
            continue
        if isinstance(step, RobotsNeeded):
            r = web.fetch(f"https://{step.host}/robots.txt")
            f.set_robots(step.host, Robots.from_response(r.status, r.body))
            continue
        page: Page | None = step
        while page is not None:
            r = web.fetch(page.url)
            if on_page is not None:
                on_page(page, r)
            if 300 <= r.status < 400:
                page = f.redirected(page, r.location)
                continue
            if not 200 <= r.status < 300:
                f.done(page, recorded=False)
            elif r.body in bodies:
                f.done(page, links=extract(r.body, r.content_type, page.url)[1], recorded=False, duplicate=True)
            else:
                bodies.add(r.body)
                recorded.append(page.url)
                f.done(page, links=extract(r.body, r.content_type, page.url)[1], recorded=True)
            page = None
    raise AssertionError("the crawl did not end")


# ---- URLs -------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("url", "base", "expected"),
    [
        ("HTTPS://News.Cocoon.TEST:443", None, "https://news.cocoon.test/"),
        ("https://news.cocoon.test/a#frag", None, "https://news.cocoon.test/a"),
        ("/a/../b/./c?x=1 2#f", "https://h.test/z/y", "https://h.test/b/c?x=1%202"),
        ("c", "https://h.test/z/y", "https://h.test/z/c"),
        ("//other.test/x", "https://a.test/", "https://other.test/x"),
        ("", "https://a.test/p?q#f", "https://a.test/p?q"),
        ("  /p\n", "https://a.test/", "https://a.test/p"),
        ("https://[::1]:8443/x", None, "https://[::1]:8443/x"),
        ("https://a.test:8443", None, "https://a.test:8443/"),
        ("https://bücher.test/ü", None, "https://xn--bcher-kva.test/%C3%BC"),
        ("https://a.test/%zz%41", None, "https://a.test/%25zz%41"),
        ("https://a.test/a/b/../../../x", None, "https://a.test/x"),
        ("https://10.0.0.1/", None, "https://10.0.0.1/"),
        ("mailto:someone@a.test", "https://a.test/", None),
        ("javascript:void(0)", "https://a.test/", None),
        ("http://a.test/", None, None),
        ("ftp://a.test/", None, None),
        ("/relative", None, None),
        ("https://user:pw@a.test/", None, None),
        ("https://a.test:99999/", None, None),
        ("https://a..test/", None, None),
        ("https://1.2.3.999/", None, None),
        ("https://[fe80::1%25eth0]/", None, None),
    ],
)
def test_normalize_url(url: str, base: str | None, expected: str | None) -> None:
    assert normalize_url(url, base) == expected
    if expected is not None:
        assert normalize_url(expected) == expected  # idempotent


def test_host_of() -> None:
    assert host_of("https://News.cocoon.test:443/x?y") == NEWS
    assert host_of("https://[::1]:8443/x") == "[::1]:8443"
    with pytest.raises(ValueError, match="not an https URL"):
        host_of("http://a.test/")


def test_check_spec_normalizes_and_deduplicates() -> None:
    checked = check_spec(CrawlSpec(seeds=["https://A.test", "https://a.test/", "https://b.test:443/x#f",
                                          "https://a.test/#top"], max_pages=7))
    assert checked.seeds == ["https://a.test/", "https://b.test/x"]
    assert checked.max_pages == 7
    assert check_spec(checked) == checked


@pytest.mark.parametrize(
    ("seed", "why"),
    [
        ("http://a.test/", "not an https URL"),
        ("ftp://a.test/", "not an https URL"),
        ("https://u:p@a.test/", "userinfo"),
        ("https://a.test:8443/", "port 8443"),
        ("https://a.test:xx/", "not a valid URL"),
        ("https://a_b..c/", "no valid host"),
        ("https://300.1.1.1/", "no valid host"),
        ("https://a.test/" + "x" * 3000, "length"),
    ],
)
def test_check_spec_names_the_bad_seed(seed: str, why: str) -> None:
    with pytest.raises(ValueError, match=why) as err:
        check_spec(CrawlSpec(seeds=["https://ok.test/", seed]))
    assert seed[:60] in str(err.value)


def test_check_spec_applies_the_wire_constraints() -> None:
    with pytest.raises(ValueError, match="max_pages"):
        check_spec(CrawlSpec(seeds=["https://a.test/"], max_pages=10**6))
    with pytest.raises(ValueError, match="seeds"):
        check_spec(CrawlSpec(seeds=[]))


# ---- extract ----------------------------------------------------------------------------------
def _reply(host: str, path: str) -> tuple[bytes, str]:
    r = _Site(host, DEFAULT_HOSTS, WebConfig()).reply(path)
    return r.body, dict(r.headers)["Content-Type"]


def test_extract_article_text_not_navigation() -> None:
    body, ctype = _reply(NEWS, ARTICLE)
    text, links = extract(body, ctype, f"https://{NEWS}{ARTICLE}")
    site = _Site(NEWS, DEFAULT_HOSTS, WebConfig())
    own = next(sentences for path, _, sentences in site.theme.pages if path == ARTICLE)
    for sentence in own:
        assert sentence in text
    assert "A deep sea survey maps cold water corals" not in text  # the nav's link to the next page
    assert "Elsewhere" not in text and "news.cocoon.test home" not in text  # footer and nav
    assert links == [
        f"https://{NEWS}/",
        f"https://{NEWS}/science/deep-sea-survey",
        f"https://{DOCS}/guide/install",
        f"https://{DOCS}/",
        f"https://{SHOP}/",
    ]


def test_extract_index_links_are_absolute_and_deduplicated() -> None:
    body, ctype = _reply(DOCS, "/")
    text, links = extract(body, ctype, f"https://{DOCS}/")
    assert f"Welcome to {DOCS}" in text
    assert links == [normalize_url(u) for u in links] and len(set(links)) == len(links)
    assert f"https://{DOCS}/guide/install" in links and f"https://{DOCS}/private/" in links
    assert {host_of(u) for u in links} == {DOCS, NEWS, SHOP}


def test_extract_base_href_fragments_and_other_schemes() -> None:
    html = (b'<?xml version="1.0" encoding="utf-8"?>\n<html xmlns="http://www.w3.org/1999/xhtml"><head>'
            b'<base href="/sub/"/></head><body><p>Hello there.</p><a href="p">x</a><a href="p#y">y</a>'
            b'<a href="mailto:a@b.test">m</a><a href="javascript:go()">j</a><a href="http://a.test/">h</a>'
            b'<a href="../up">u</a><a>no href</a></body></html>')
    _, links = extract(html, "application/xhtml+xml", "https://a.test/q")
    assert links == ["https://a.test/sub/p", "https://a.test/up"]


def test_extract_decodes_with_the_declared_charset() -> None:
    html = "<html><body><main><p>Café crème, déjà vu. " * 20 + "</p></main></body></html>"
    text, _ = extract(html.encode("latin-1"), "text/html; charset=ISO-8859-1", "https://a.test/")
    assert "Café crème" in text
    text, _ = extract(html.encode("utf-8"), "text/html", "https://a.test/")  # utf-8 by default
    assert "Café crème" in text
    text, _ = extract(b"caf\xe9", "text/plain; charset=no-such-charset", "https://a.test/")
    assert text == "caf\ufffd"  # an unknown charset: utf-8, bad bytes replaced


def test_extract_non_html() -> None:
    assert extract(b"plain words\nhere", "text/plain; charset=utf-8", "https://a.test/t") == ("plain words\nhere", [])
    assert extract(b"\x89PNG\r\n", "image/png", "https://a.test/i.png") == ("", [])
    assert extract(b'{"a": 1}', "application/json", "https://a.test/j") == ("", [])
    assert extract(b"<a href='/x'>x</a>", "", "https://a.test/") == ("", [])
    assert extract(b"", "text/html", "https://a.test/") == ("", [])
    assert extract(b"   \n", "text/html; charset=utf-8", "https://a.test/") == ("", [])


def test_extract_truncates_the_main_text() -> None:
    text, _ = extract(b"y" * (MAX_MAIN_TEXT + 10), "text/plain", "https://a.test/")
    assert len(text) == MAX_MAIN_TEXT
    words = ["harbour", "library", "survey", "kettle", "lamp", "guide", "river", "window", "garden", "bridge"]
    paras = "".join(  # distinct paragraphs: trafilatura drops repeated ones
        "<p>" + " ".join(f"{words[(i * 7 + j) % 10]}{i}x{j}" for j in range(300)) + ".</p>\n" for i in range(130)
    )
    html = ("<html><body><main><article>" + paras + "</article></main></body></html>").encode()
    text, _ = extract(html, "text/html", "https://a.test/")
    assert len(text) == MAX_MAIN_TEXT


async def test_extract_on_the_running_local_web(tmp_path: Path) -> None:
    async with LocalWeb(WebConfig(dir=tmp_path / "web")) as web, web.client() as client:
        r = await client.get(web.url(SHOP, "/products/kettle"))
        text, links = extract(r.content, r.headers["content-type"], str(r.url))
    assert "It boils a full litre of water in a little under four minutes." in text
    assert f"https://{SHOP}/products/desk-lamp" in links and f"https://{NEWS}/" in links


# ---- robots.txt -------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("status", "allowed"),
    [(200, False), (204, True), (400, True), (401, True), (403, True), (404, True), (410, True), (429, True),
     (500, False), (503, False), (599, False), (0, False), (301, False), (100, False)],
)
def test_robots_status_rules(status: int, allowed: bool) -> None:
    """RFC 9309 §2.3.1: 2xx parse (this body disallows everything), 4xx "unavailable" allows
    all, 5xx "unreachable" disallows all; no response or an unfollowed redirect: unknown."""
    robots = Robots.from_response(status, b"User-agent: *\nDisallow: /\n" if status != 204 else b"")
    assert robots.allowed("https://a.test/page") is allowed
    assert robots.allowed("https://a.test/") is allowed


def test_robots_unreachable_disallows_all() -> None:
    assert not Robots.unreachable().allowed("https://a.test/")
    assert Robots.unreachable().crawl_delay() is None


def test_robots_local_web_disallows_private() -> None:
    body, _ = _reply(NEWS, "/robots.txt")
    robots = Robots.from_response(200, body)
    assert not robots.allowed(f"https://{NEWS}/private/")
    assert not robots.allowed(f"https://{NEWS}/private/deeper?x=1")
    assert robots.allowed(f"https://{NEWS}/private")  # the rule is "/private/"
    assert robots.allowed(f"https://{NEWS}{ARTICLE}")
    assert robots.crawl_delay() is None


def test_robots_longest_match_wildcards_and_groups() -> None:
    robots = Robots.from_response(200, (
        b"User-agent: *\nDisallow: /\n\n"
        b"User-agent: Cocoon-Validator\nUser-agent: other\nDisallow: /a\nAllow: /a/b\nDisallow: /*.pdf$\n"
        b"Crawl-delay: 3\n\n"
        b"User-agent: cocoon-validator\nDisallow: /c/\nAllow: /c/\n"
        b"User-agent: cocoon\nDisallow: /d\n"
    ))
    allowed = {p: robots.allowed(f"https://a.test{p}") for p in
               ["/", "/a", "/a/x", "/a/b", "/a/bc", "/x.pdf", "/x.pdf?y", "/a/b/x.pdf", "/c/1", "/d"]}
    assert allowed == {
        "/": True, "/a": False, "/a/x": False, "/a/b": True, "/a/bc": True,
        "/x.pdf": False, "/x.pdf?y": True, "/a/b/x.pdf": False,  # "/*.pdf$" (7) is longer than "/a/b" (4)
        "/c/1": True,  # the two groups naming the agent merge; Allow wins an equal-length tie
        "/d": True,  # "cocoon" is another product token, not a prefix match of ours
    }
    assert robots.crawl_delay() == 3.0 and robots.crawl_delay(f"{USER_AGENT}/1") == 3.0
    assert not robots.allowed("https://a.test/", "googlebot")  # no group of its own: the * group
    assert robots.crawl_delay("googlebot") is None


def test_robots_wildcards_match_in_linear_time() -> None:
    hostile = Robots.from_response(200, b"User-agent: *\nDisallow: /" + b"*a" * 2000 + b"*b\n")
    started = time.monotonic()
    assert hostile.allowed("https://a.test/" + "a" * 2000)
    assert not hostile.allowed("https://a.test/" + "a" * 2000 + "b")
    assert time.monotonic() - started < 1.0


def test_robots_parses_only_the_first_500_kib() -> None:
    body = b"User-agent: *\n" + b"# padding\n" * (MAX_ROBOTS_BYTES // 10) + b"Disallow: /\n"
    assert Robots.from_response(200, body).allowed("https://a.test/x")
    assert not Robots.from_response(200, b"\xef\xbb\xbfUser-agent: *\nDisallow: /x\n").allowed("https://a.test/x")


# ---- the frontier -----------------------------------------------------------------------------
def _settle(f: Frontier, page: Page | object, *links: str, recorded: bool = True) -> list[Page]:
    assert isinstance(page, Page), page
    return f.done(page, links=list(links), recorded=recorded)


def test_breadth_first_order() -> None:
    f = frontier("https://a.test/", max_depth=3)
    graph = {
        "/": ["/1", "/2", "/1"],
        "/1": ["/1a", "/1b", "/"],
        "/2": ["/2a", "/1a"],
        "/1a": ["/deep"],
    }
    order = []
    while not isinstance(step := f.next(), Done):
        assert isinstance(step, Page)
        order.append((step.url.removeprefix("https://a.test"), step.depth))
        links = [f"https://a.test{p}" for p in graph.get(step.url.removeprefix("https://a.test"), [])]
        f.done(step, links=links, recorded=True)
    assert step == Done(CrawlStop.EXHAUSTED)
    assert order == [("/", 0), ("/1", 1), ("/2", 1), ("/1a", 2), ("/1b", 2), ("/2a", 2), ("/deep", 3)]
    assert f.recorded == 7


def test_breadth_first_across_hosts_with_concurrency() -> None:
    """With several fetches in flight, the page handed out is the least (depth, discovery)
    whose host is free: a deeper page found early does not jump ahead."""
    f = frontier("https://a.test/", "https://b.test/", same_site=False)
    a, b = f.next(), f.next()
    assert (a, b) == (Page("https://a.test/", 0), Page("https://b.test/", 0))
    assert _settle(f, b, "https://b.test/1", "https://a.test/x") == [Page("https://b.test/1", 1),
                                                                    Page("https://a.test/x", 1)]
    assert f.next() == Page("https://b.test/1", 1)
    assert isinstance(f.next(), Wait)  # a.test is busy, b.test too
    _settle(f, a, "https://a.test/y")
    assert f.next() == Page("https://a.test/x", 1)


def test_same_site_keeps_to_the_seed_hosts() -> None:
    links = ["https://a.test/in", "https://b.test/out", "https://A.test:443/in#again", "https://a.test:8443/port"]
    f = frontier("https://a.test/")
    assert _settle(f, f.next(), *links) == [Page("https://a.test/in", 1)]
    g = frontier("https://a.test/", same_site=False)
    assert [p.url for p in _settle(g, g.next(), *links)] == ["https://a.test/in", "https://b.test/out",
                                                            "https://a.test:8443/port"]
    assert g.next() == Page("https://a.test/in", 1)
    assert g.next() == RobotsNeeded("b.test")
    assert g.next() == RobotsNeeded("a.test:8443")


def test_depth_limit() -> None:
    f = frontier("https://a.test/", max_depth=1)
    assert len(_settle(f, f.next(), "https://a.test/1")) == 1
    assert _settle(f, f.next(), "https://a.test/2") == []  # depth 2 > max_depth
    assert f.next() == Done(CrawlStop.EXHAUSTED)
    g = frontier("https://a.test/", max_depth=0)
    assert _settle(g, g.next(), "https://a.test/1") == []


def test_page_limit_never_hands_out_more_than_can_be_recorded() -> None:
    f = frontier("https://a.test/", "https://b.test/", "https://c.test/", max_pages=2)
    a, b = f.next(), f.next()
    assert isinstance(a, Page) and isinstance(b, Page)
    assert f.next() == Wait(1.0)  # two in flight could fill the limit: c.test waits
    _settle(f, a)
    assert isinstance(f.next(), Wait)  # one recorded, one in flight
    _settle(f, b, recorded=False)  # not recorded (a 404, say): room again
    c = f.next()
    assert c == Page("https://c.test/", 0)
    _settle(f, c, "https://c.test/more")
    assert f.next() == Done(CrawlStop.PAGE_LIMIT)
    assert (f.recorded, f.in_flight, f.queued()) == (2, 0, [Page("https://c.test/more", 1)])


def test_politeness_per_host_with_a_fake_clock() -> None:
    clock = Clock()
    f = frontier("https://a.test/", "https://b.test/", clock=clock, robots=None, politeness_ms=1000)
    assert f.next() == RobotsNeeded("a.test")
    assert f.next() == RobotsNeeded("b.test")
    assert f.next() == Wait(1.0)  # both robots.txt in flight
    f.set_robots("a.test", ALLOW_ALL)
    f.set_robots("b.test", ALLOW_ALL)
    assert f.next() == Wait(1.0)  # the robots.txt fetch counts: one second before each host's first page
    clock.advance(1.0)
    a0, b0 = f.next(), f.next()  # the two hosts interleave
    assert (a0, b0) == (Page("https://a.test/", 0), Page("https://b.test/", 0))
    clock.advance(0.2)
    _settle(f, a0, "https://a.test/1", "https://a.test/2")  # a.test rests until 2.2
    clock.advance(0.3)
    _settle(f, b0, "https://b.test/1")  # b.test rests until 2.5
    step = f.next()
    assert isinstance(step, Wait) and step.seconds == pytest.approx(0.7)
    clock.advance(0.7)
    a1 = f.next()
    assert a1 == Page("https://a.test/1", 1)
    assert f.next() == Wait(pytest.approx(0.3))  # a.test busy; b.test ready in 0.3
    clock.advance(0.3)
    assert f.next() == Page("https://b.test/1", 1)
    _settle(f, a1)  # at 2.5: a.test rests until 3.5
    clock.advance(0.5)
    assert f.next() == Wait(pytest.approx(0.5))  # the same host waits its full second
    clock.advance(0.5)
    assert f.next() == Page("https://a.test/2", 1)


def test_crawl_delay_when_larger_than_politeness_and_capped() -> None:
    clock = Clock()
    slow = Robots.from_response(200, b"User-agent: *\nCrawl-delay: 5\n")
    f = frontier("https://a.test/", clock=clock, robots=slow, politeness_ms=1000)
    _settle(f, f.next(), "https://a.test/1")
    assert f.next() == Wait(5.0)
    huge = Robots.from_response(200, b"User-agent: *\nCrawl-delay: 86400\n")
    g = frontier("https://a.test/", clock=clock, robots=huge)
    _settle(g, g.next(), "https://a.test/1")
    assert g.next() == Wait(MAX_CRAWL_DELAY)
    h = frontier("https://a.test/", clock=clock, robots=Robots.from_response(200, b"User-agent: *\nCrawl-delay: 1\n"),
                 politeness_ms=2000)
    _settle(h, h.next(), "https://a.test/1")
    assert h.next() == Wait(2.0)  # the spec's delay when robots.txt asks for less


def test_robots_needed_once_per_host() -> None:
    f = frontier("https://a.test/", "https://a.test/2", "https://b.test/", robots=None)
    assert f.next() == RobotsNeeded("a.test")
    assert f.next() == RobotsNeeded("b.test")
    for _ in range(3):
        assert f.next() == Wait(1.0)  # not asked again, and not Done: two robots.txt in flight
    f.set_robots("b.test", ALLOW_ALL)
    assert f.next() == Page("https://b.test/", 0)
    f.set_robots("a.test", Robots.unreachable())  # 5xx: nothing of a.test is fetched
    f.failed(Page("https://b.test/", 0))
    assert f.next() == Done(CrawlStop.EXHAUSTED)
    assert (f.skipped_robots, f.failures, f.recorded) == (2, 1, 0)


def test_robots_disallowed_pages_are_skipped_and_counted() -> None:
    body, _ = _reply(NEWS, "/robots.txt")
    f = frontier(f"https://{NEWS}/", robots=Robots.from_response(200, body))
    home = f.next()
    assert home == Page(f"https://{NEWS}/", 0)
    queued = _settle(f, home, f"https://{NEWS}/private/", f"https://{NEWS}{ARTICLE}", f"https://{NEWS}/private/x")
    assert len(queued) == 3  # queued as found: robots.txt is checked when they come up
    assert f.next() == Page(f"https://{NEWS}{ARTICLE}", 1)
    assert f.skipped_robots == 1
    _settle(f, Page(f"https://{NEWS}{ARTICLE}", 1))
    assert f.next() == Done(CrawlStop.EXHAUSTED)
    assert f.skipped_robots == 2 and f.queued() == []


def test_redirect_replaces_the_page_at_its_depth() -> None:
    f = frontier("https://a.test/", same_site=True)
    page = f.next()
    assert isinstance(page, Page)
    target = f.redirected(page, "/moved/here#x")
    assert target == Page("https://a.test/moved/here", 0)
    assert f.in_flight == 1 and isinstance(f.next(), Wait)  # the target is in flight on a.test
    assert f.redirected(target, "https://a.test/") is None  # a loop: seen before
    assert f.in_flight == 0
    assert f.next() == Done(CrawlStop.EXHAUSTED)


def test_redirect_off_site_disallowed_junk_and_too_many() -> None:
    robots = Robots.from_response(200, b"User-agent: *\nDisallow: /private/\n")
    f = frontier("https://a.test/", "https://a.test/2", "https://a.test/3", "https://a.test/4", robots=robots)
    assert f.redirected(_page(f), "https://elsewhere.test/") is None  # off-site
    assert f.redirected(_page(f), "/private/x") is None and f.skipped_robots == 1
    assert f.redirected(_page(f), "mailto:x@a.test") is None
    page: Page | None = _page(f)
    for i in range(MAX_REDIRECTS):
        page = f.redirected(page, f"/hop{i}")  # type: ignore[arg-type]
        assert page == Page(f"https://a.test/hop{i}", 0)
    assert f.redirected(page, "/one-too-many") is None  # type: ignore[arg-type]
    assert f.in_flight == 0 and f.next() == Done(CrawlStop.EXHAUSTED)


def test_redirect_to_a_host_without_robots_is_queued() -> None:
    f = frontier("https://a.test/", same_site=False)
    assert f.redirected(_page(f), "https://b.test/landing") is None
    assert f.queued() == [Page("https://b.test/landing", 0)]
    assert f.next() == RobotsNeeded("b.test")
    f.set_robots("b.test", ALLOW_ALL)
    assert f.next() == Page("https://b.test/landing", 0)


def _page(f: Frontier) -> Page:
    step = f.next()
    assert isinstance(step, Page), step
    return step


def test_duplicates_and_errors_are_not_recorded() -> None:
    f = frontier("https://a.test/", "https://a.test/dup", "https://a.test/404")
    _settle(f, f.next(), "https://a.test/x")
    f.done(_page(f), links=["https://a.test/x", "https://a.test/y"], recorded=False, duplicate=True)
    f.done(_page(f), recorded=False)
    assert (f.recorded, f.duplicates) == (1, 1)
    assert [p.url for p in f.queued()] == ["https://a.test/x", "https://a.test/y"]


def test_failed_pages_are_counted_not_retried_and_settling_twice_is_ignored() -> None:
    f = frontier("https://a.test/")
    page = _page(f)
    f.failed(page)
    f.failed(page)
    assert f.done(page, links=["https://a.test/x"], recorded=True) == []
    assert f.redirected(page, "/y") is None
    assert (f.failures, f.recorded, f.next()) == (1, 0, Done(CrawlStop.EXHAUSTED))


def test_restore_resumes_exactly() -> None:
    """Killed with a page in flight: the store still has it queued, so a new frontier
    restored from it hands it out again; counters and what was seen carry over."""
    clock = Clock()
    f = frontier("https://a.test/", "https://b.test/", clock=clock, same_site=False)
    a = _page(f)
    new = f.done(a, links=["https://a.test/1", "https://a.test/2", "https://b.test/"], recorded=True)
    b = _page(f)  # in flight at the kill
    f.failed(_page(f))  # a.test/1
    seen = ["https://a.test/", "https://b.test/", *(p.url for p in new)]
    on_disk = [b, Page("https://a.test/2", 1)]  # the queued rows: b.test/ was never settled

    g = Frontier(f.spec, clock=clock)
    g.restore(queued=on_disk, seen=seen, recorded=f.recorded, failed=f.failures, skipped=0)
    assert g.next() == RobotsNeeded("b.test")  # rules come from the store (or are fetched again)
    g.set_robots("a.test", ALLOW_ALL)
    g.set_robots("b.test", ALLOW_ALL)
    assert g.next() == b  # the page in flight at the kill, again
    assert g.next() == Page("https://a.test/2", 1)
    assert (g.recorded, g.failures) == (1, 1)
    assert g.done(b, links=["https://a.test/1", "https://a.test/", "https://b.test/new"], recorded=True) == [
        Page("https://b.test/new", 1)]  # what was seen before is not queued again


def test_crawl_of_the_local_web() -> None:
    """The whole crawl, driven as the crawler does, on the local web's real pages."""
    web, clock = FakeWeb(), Clock()
    f = Frontier(check_spec(spec(f"https://{NEWS}/", f"https://{NEWS}/moved", max_depth=3, politeness_ms=500)),
                 clock=clock)
    stop, recorded = crawl(f, web, clock)
    assert stop == CrawlStop.EXHAUSTED
    site = web.sites[NEWS]
    assert recorded == [f"https://{NEWS}/", *(f"https://{NEWS}{p}" for p, _, _ in site.theme.pages)]
    assert f"https://{NEWS}/private/" not in web.fetched and f.skipped_robots == 1
    assert web.fetched.count(f"https://{NEWS}/moved") == 1  # redirected to an article already queued
    assert {host_of(u) for u in web.fetched} == {NEWS}
    assert (f.recorded, f.failures, f.duplicates) == (4, 0, 0)
    assert clock.now >= 0.5 * 5  # robots.txt, /, /moved, three articles: half a second apart

    web2, clock2 = FakeWeb(), Clock()
    g = Frontier(spec(f"https://{NEWS}/", same_site=False, max_pages=8), clock=clock2)
    stop, recorded = crawl(g, web2, clock2)
    assert stop == CrawlStop.PAGE_LIMIT and len(recorded) == 8
    assert {host_of(u) for u in recorded} == {NEWS, DOCS, SHOP}

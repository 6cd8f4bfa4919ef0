"""A validator's crawl decisions, without I/O: which URL is fetched next, what a page's main
text and links are, and what robots.txt allows.

The async crawler (`_crawler.Crawler`) does the fetching; everything here is a pure function
or plain bookkeeping driven by its calls (and a clock it can fake), so the rules of a crawl
are tested without a network and two validators given the same pages decide the same way.

- `check_spec` makes the checks the wire's URL pattern cannot (a real host, port 443, no
  userinfo) and normalizes the seeds; `normalize_url` is the one URL form used everywhere
  (frontier, records, store), so "seen before" means the same thing at every step.
- `extract` turns a body into (main text, links): trafilatura for the text, lxml for links.
- `Robots` applies robots.txt per RFC 9309 on top of `urllib.robotparser`'s parser: the
  status rules (2xx parse, 4xx allow all, 5xx or unreachable disallow all), the product
  token matched exactly, matching groups merged, the longest matching rule winning (Allow
  on a tie) and the `*` / `$` wildcards, none of which the standard library does itself.
- `Frontier` orders the fetches: breadth first, same-site, depth and page limits, robots.txt
  and per-host politeness.
"""

from __future__ import annotations

import codecs
import functools
import heapq
import ipaddress
import itertools
import re
import time
import urllib.robotparser
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from email.message import Message
from urllib.parse import quote, unquote, urljoin, urlsplit, urlunsplit

import lxml.etree
import lxml.html
import msgspec
import trafilatura

from offchain.protocol.wire import CrawlSpec, CrawlStop

__all__ = [
    "MAX_CRAWL_DELAY",
    "MAX_MAIN_TEXT",
    "MAX_REDIRECTS",
    "MAX_ROBOTS_BYTES",
    "USER_AGENT",
    "Done",
    "Frontier",
    "Page",
    "Robots",
    "RobotsNeeded",
    "Wait",
    "check_spec",
    "extract",
    "host_of",
    "normalize_url",
]

MAX_MAIN_TEXT = 256 * 1024
"""Characters of main text kept in a record (the rest is cut): bounds a record's size."""
MAX_REDIRECTS = 5
"""Redirects followed from one page (RFC 9110 §15.4 leaves the limit to the client; five, as
RFC 9309 §2.3.1.2 asks of a robots.txt fetch)."""
USER_AGENT = "cocoon-validator"
"""The product token robots.txt groups are matched against (the request's User-Agent is this
token with a version)."""
MAX_ROBOTS_BYTES = 500 * 1024
"""Bytes of a robots.txt parsed (RFC 9309 §2.5: at least 500 KiB); the rest is ignored."""
MAX_CRAWL_DELAY = 60.0
"""Seconds: a larger robots.txt Crawl-delay is taken as this (the most a spec may ask for,
`CrawlSpec.politeness_ms` <= 60 s), so one site cannot stall a paid crawl for hours."""

_WAIT_FOR_FETCH = 1.0  # seconds a Wait lasts when only fetches in flight can change anything


# ---- URLs -------------------------------------------------------------------------------------
_LABEL = re.compile(r"^[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?$")
_PATH_SAFE = "/%:@!$&'()*+,;="  # RFC 3986 pchar and "/" (quote keeps unreserved characters itself)
_QUERY_SAFE = _PATH_SAFE + "?"
_LONE_PERCENT = re.compile(r"%(?![0-9A-Fa-f]{2})")
_HAS_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:")  # an absolute URL: joining it to a base changes nothing
_URL_JUNK = re.compile(r"[\t\n\r]")  # browsers drop these anywhere in a URL (WHATWG URL, "basic URL parser")


def _canonical_host(host: str) -> str | None:
    """The host as it goes in a normalized URL (IPv6 bracketed), or None if it is not a DNS
    name or an IP literal."""
    host = host.lower().rstrip(".")
    if not host:
        return None
    if ":" in host:  # urlsplit has taken the brackets off an IPv6 literal
        try:
            ip = ipaddress.IPv6Address(host)
        except ValueError:
            return None
        return None if ip.scope_id else f"[{ip.compressed}]"
    if not host.isascii():
        try:
            host = host.encode("idna").decode("ascii")
        except UnicodeError:
            return None
    labels = host.split(".")
    if labels[-1].isdigit():  # looks like an IPv4 address: it must be one
        try:
            return str(ipaddress.IPv4Address(host))
        except ValueError:
            return None
    if len(host) > 253 or not all(_LABEL.match(label) for label in labels):
        return None
    return host


def _remove_dot_segments(path: str) -> str:
    """RFC 3986 §5.2.4: "/a/./b/../c" -> "/a/c" (urljoin does it only for relative references)."""
    out: list[str] = []
    segments = path.split("/")
    for i, seg in enumerate(segments):
        last = i == len(segments) - 1
        if seg == ".":
            if last:
                out.append("")
        elif seg == "..":
            if len(out) > 1:
                out.pop()
            if last:
                out.append("")
        else:
            out.append(seg)
    result = "/".join(out)
    return result if result.startswith("/") else "/" + result


def normalize_url(url: str, base: str | None = None) -> str | None:
    """The one form a crawl keeps a URL in, or None for anything it does not fetch.

    Absolute (`urljoin` with `base`), https only, no userinfo, host lower-cased (IDN as
    punycode, IPv6 bracketed), the default port :443 dropped, dot segments removed, an empty
    path as "/", characters not allowed in a URL percent-encoded (UTF-8), the fragment
    dropped (it never reaches the server). None for mailto:, javascript:, http:, any other
    scheme, a relative URL without `base`, and junk (a bad host or port).
    """
    url = _URL_JUNK.sub("", url).strip()
    if base is None or _HAS_SCHEME.match(url):
        return _normalize_absolute(url)  # base plays no part: cached (the same links on every page)
    try:
        url = urljoin(base, url)
    except ValueError:
        return None
    return _normalize_absolute(url)


@functools.lru_cache(maxsize=65_536)
def _normalize_absolute(url: str) -> str | None:
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return None
    if parts.scheme != "https" or "@" in parts.netloc or parts.hostname is None:
        return None
    host = _canonical_host(parts.hostname)
    if host is None:
        return None
    netloc = host if port in (None, 443) else f"{host}:{port}"
    path = quote(_LONE_PERCENT.sub("%25", _remove_dot_segments(parts.path or "/")), safe=_PATH_SAFE)
    query = quote(_LONE_PERCENT.sub("%25", parts.query), safe=_QUERY_SAFE)
    return urlunsplit(("https", netloc, path, query, ""))


def host_of(url: str) -> str:
    """The authority robots.txt and politeness apply to (RFC 9309 §2.3: per scheme, host and
    port): the normalized host, with its port when not 443 ("news.cocoon.test",
    "[::1]:8443"). `f"https://{host_of(u)}/robots.txt"` is the URL of its robots.txt.

    Raises:
        ValueError: `url` is not an https URL `normalize_url` accepts.
    """
    normal = normalize_url(url)
    if normal is None:
        raise ValueError(f"{url!r} is not an https URL")
    return urlsplit(normal).netloc


def check_spec(spec: CrawlSpec) -> CrawlSpec:
    """`spec` with its seeds normalized and de-duplicated (in order), after the checks the
    wire's URL pattern cannot make: each seed parses, is https, names a host (a DNS name or
    an IP literal), carries no userinfo and no port but 443. The wire's own constraints
    (the URL pattern, counts and ranges) are then checked on the result: a `CrawlSpec`
    built in code has skipped them (msgspec checks on decode only).

    Raises:
        ValueError: one sentence naming the bad seed (or the bad field).
    """
    seeds: list[str] = []
    for seed in spec.seeds:
        try:
            parts = urlsplit(seed)
            port = parts.port
        except (ValueError, TypeError) as err:
            raise ValueError(f"seed {seed!r} is not a valid URL ({err})") from err
        if parts.scheme != "https":
            raise ValueError(f"seed {seed!r} is not an https URL")
        if "@" in parts.netloc:
            raise ValueError(f"seed {seed!r} carries userinfo (user or password), which a crawl never sends")
        if parts.hostname is None or _canonical_host(parts.hostname) is None:
            raise ValueError(f"seed {seed!r} has no valid host (a DNS name or an IP literal)")
        if port not in (None, 443):
            raise ValueError(f"seed {seed!r} names port {port}; crawls fetch https on port 443 only")
        normal = normalize_url(seed)
        if normal is None:  # the checks above are normalize_url's; kept in step by the tests
            raise ValueError(f"seed {seed!r} is not a URL this crawler fetches")
        if normal not in seeds:
            seeds.append(normal)
    checked = msgspec.structs.replace(spec, seeds=seeds)
    try:  # the wire's own rules, on the seeds as they will be used (quoting may lengthen one)
        return msgspec.convert(msgspec.to_builtins(checked), CrawlSpec)
    except msgspec.ValidationError as err:
        at = re.search(r"\$\.seeds\[(\d+)\]", str(err))
        what = f"seed {seeds[int(at[1])][:100]!r}" if at else "crawl spec"
        raise ValueError(f"invalid {what}: {err}") from err


# ---- content ----------------------------------------------------------------------------------
_HTML_TYPES = frozenset({"text/html", "application/xhtml+xml"})


def _media_type(content_type: str) -> tuple[str, str]:
    """(media type lower-cased, charset or "utf-8") of a Content-Type header value."""
    msg = Message()
    msg["content-type"] = content_type
    charset = msg.get_content_charset() or "utf-8"
    try:
        charset = codecs.lookup(charset).name
    except LookupError:
        charset = "utf-8"
    # the media type by hand: `Message.get_content_type` turns a malformed one into text/plain
    return content_type.split(";", 1)[0].strip().lower(), charset


def extract(body: bytes, content_type: str, url: str) -> tuple[str, list[str]]:
    """(main text, links) of a response body fetched from `url`.

    HTML (text/html, application/xhtml+xml): the main text is trafilatura's (comments left
    out; "" when it finds none), the links every `<a href>`, made absolute against `url` and
    the document's `<base href>`, normalized (`normalize_url`; others dropped) and
    de-duplicated in document order. text/plain: the decoded text, no links. Anything else
    (images, PDFs, JSON...): "" and no links. Bodies are decoded with the Content-Type's
    charset (utf-8 when it names none or one Python does not know; undecodable bytes
    replaced), so the same bytes always give the same text. The text is cut at
    `MAX_MAIN_TEXT` characters.
    """
    media, charset = _media_type(content_type)
    if media == "text/plain":
        return body.decode(charset, errors="replace")[:MAX_MAIN_TEXT], []
    if media not in _HTML_TYPES:
        return "", []
    # decode ourselves (the header's charset, as the record says), then hand lxml UTF-8 bytes:
    # it refuses a str that carries an XML encoding declaration
    data = body.decode(charset, errors="replace").encode("utf-8")
    try:
        doc = lxml.html.document_fromstring(data, parser=lxml.html.HTMLParser(encoding="utf-8"))
    except (lxml.etree.ParserError, ValueError):  # an empty or whitespace-only document
        return "", []
    base = url
    base_href = next((b.get("href") for b in doc.iter("base") if b.get("href")), None)
    if base_href:
        base = normalize_url(base_href, url) or url
    links: dict[str, None] = {}
    for a in doc.iter("a"):
        href = a.get("href")
        if href is not None:
            link = normalize_url(href, base)
            if link is not None:
                links.setdefault(link)
    # links first: trafilatura cleans the tree it is given in place
    text = trafilatura.extract(doc, url=url, include_comments=False) or ""
    return text[:MAX_MAIN_TEXT], list(links)


# ---- robots.txt -------------------------------------------------------------------------------
class _Parser(urllib.robotparser.RobotFileParser):
    """The standard parser, keeping every group as it was written (it keeps only the first
    `*` group, and files a group naming `*` and other agents under `*` alone; RFC 9309
    §2.2.1 merges every group that names the agent)."""

    def __init__(self) -> None:
        super().__init__()
        self.groups: list[urllib.robotparser.Entry] = []

    def _add_entry(self, entry: urllib.robotparser.Entry) -> None:
        self.groups.append(entry)
        super()._add_entry(entry)  # type: ignore[misc]


@functools.lru_cache(maxsize=4096)
def _rule(pattern: str) -> tuple[tuple[str, ...], bool]:
    """A rule's path (as the parser stores it: percent-encoded, so `*` is %2A and `$` %24) as
    (the literal pieces between `*`s, anchored by a final `$`) (RFC 9309 §2.2.3)."""
    anchored = pattern.endswith("%24")
    return tuple((pattern[:-3] if anchored else pattern).split("%2A")), anchored


def _rule_matches(pattern: str, path: str) -> bool:
    """Whether `path` matches a rule's `pattern`, in linear time: each piece is found at its
    leftmost place after the one before (no regex: a hostile robots.txt full of `*` could
    make a backtracking match take exponential time)."""
    pieces, anchored = _rule(pattern)
    first, rest = pieces[0], pieces[1:]
    if not path.startswith(first):
        return False
    pos = len(first)
    if not rest:
        return pos == len(path) if anchored else True
    for piece in rest[:-1]:
        found = path.find(piece, pos)
        if found < 0:
            return False
        pos = found + len(piece)
    last = rest[-1]
    if anchored:
        return len(path) - len(last) >= pos and path.endswith(last)
    return path.find(last, pos) >= 0


class Robots:
    """What one host's robots.txt allows (RFC 9309). Build with `from_response` (the fetch's
    status and body) or `unreachable()`; nothing else is needed to decide. Two are equal
    when they come from the same response (what the crawl store keeps)."""

    def __init__(self, status: int, body: bytes) -> None:
        self.status = status
        self.body = body[:MAX_ROBOTS_BYTES] if 200 <= status < 300 else b""
        self._parser: _Parser | None = None
        if 200 <= status < 300:
            self._parser = _Parser()
            self._parser.parse(self.body.decode("utf-8", errors="replace").removeprefix("\ufeff").splitlines())
        self._allow_all = 400 <= status < 500

    @classmethod
    def from_response(cls, status: int, body: bytes) -> Robots:
        """RFC 9309 §2.3.1: 2xx: the body's rules (its first `MAX_ROBOTS_BYTES`); 4xx
        ("unavailable"): everything allowed; 5xx ("unreachable"), or anything else (0 for no
        response, a 3xx the caller did not follow: the rules are unknown): nothing allowed.
        The caller follows a robots.txt redirect itself (§2.3.1.2, up to five) and passes
        the final response."""
        return cls(status, body)

    @classmethod
    def unreachable(cls) -> Robots:
        """No usable answer (5xx, no connection): the crawler must assume complete disallow."""
        return cls(0, b"")

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Robots):
            return NotImplemented
        return (self.status, self.body) == (other.status, other.body)

    def __hash__(self) -> int:
        return hash((self.status, self.body))

    def __repr__(self) -> str:
        return f"Robots(status={self.status}, body={len(self.body)} bytes)"

    def _groups(self, agent: str) -> list[urllib.robotparser.Entry]:
        """The groups that apply to `agent`: those naming its product token (case-insensitive,
        exact), merged; else the `*` groups (RFC 9309 §2.2.1)."""
        assert self._parser is not None
        token = agent.split("/", 1)[0].strip().lower()
        groups = self._parser.groups
        mine = [e for e in groups if any(ua.strip().lower() == token for ua in e.useragents)]
        return mine or [e for e in groups if "*" in (ua.strip() for ua in e.useragents)]

    def allowed(self, url: str, agent: str = USER_AGENT) -> bool:
        """May `agent` fetch `url`? The longest matching rule decides, Allow winning a tie;
        no matching rule (or no group for the agent) allows (RFC 9309 §2.2.2)."""
        if self._parser is None:
            return self._allow_all
        parts = urlsplit(url)
        # the path as the parser stores rules: unquoted then quoted again, so both compare alike
        path = quote(unquote(parts.path or "/") + (f"?{unquote(parts.query)}" if parts.query else ""))
        best: tuple[int, bool] | None = None
        for entry in self._groups(agent):
            for line in entry.rulelines:
                if _rule_matches(line.path, path):  # length in octets as written, not as quoted
                    candidate = (len(unquote(line.path).encode()), bool(line.allowance))
                    if best is None or candidate > best:
                        best = candidate
        return True if best is None else best[1]

    def crawl_delay(self, agent: str = USER_AGENT) -> float | None:
        """The Crawl-delay (seconds) of `agent`'s groups, the largest if several say one;
        None when none does. (Not part of RFC 9309, but widely used; whole seconds only, as
        `urllib.robotparser` reads it.)"""
        if self._parser is None:
            return None
        delays = [float(e.delay) for e in self._groups(agent) if e.delay is not None]
        return max(delays) if delays else None


# ---- the frontier -----------------------------------------------------------------------------
@dataclass(frozen=True)
class Page:
    """A URL to fetch (normalized) and its distance in links from a seed."""

    url: str
    depth: int


@dataclass(frozen=True)
class RobotsNeeded:
    """Fetch `https://{host}/robots.txt` and hand the result to `Frontier.set_robots`."""

    host: str


@dataclass(frozen=True)
class Wait:
    """Nothing can be fetched now: ask again after `seconds` (or when a fetch ends)."""

    seconds: float


@dataclass(frozen=True)
class Done:
    """The crawl is over, for `stop`'s reason."""

    stop: CrawlStop


class Frontier:
    """Which page to fetch next, per the spec (see `next`).

    - Breadth first: the queued page of least (depth, discovery order) whose host is ready.
    - Same-site (`spec.same_site`): only the seeds' hosts (`host_of`: host and port).
    - Depth: links are followed up to `spec.max_depth` hops from a seed.
    - Pages: at most `spec.max_pages` *recorded* (successes that were not duplicates); pages
      are never handed out beyond what can still be recorded (`recorded` + in flight).
    - robots.txt: a host's rules must be known before its pages are handed out (`next`
      answers `RobotsNeeded(host)` once; the caller fetches and calls `set_robots`); a page
      it disallows is dropped when it comes up, and counted (`skipped_robots`).
    - Politeness: a host is fetched again only `spec.politeness_ms` after its last fetch
      ended (or its robots.txt Crawl-delay, when larger, capped at `MAX_CRAWL_DELAY`), and
      never twice at once; different hosts are fetched in parallel.

    Deterministic (no randomness; time only from `clock`), not thread-safe.

    Counters (attributes): `recorded`, `failures` (pages given up: `failed` is the method that
    gives one up), `skipped_robots`, `duplicates`.
    """

    def __init__(self, spec: CrawlSpec, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.spec = spec
        self._clock = clock
        seeds = [u for u in dict.fromkeys(normalize_url(s) for s in spec.seeds) if u is not None]
        self._sites = frozenset(host_of(u) for u in seeds)
        self._robots: dict[str, Robots] = {}
        self._robots_asked: set[str] = set()  # RobotsNeeded handed out, set_robots not yet called
        self._ready_at: dict[str, float] = {}  # host -> when it may be fetched again
        self.recorded = self.failures = self.skipped_robots = self.duplicates = 0
        self._reset(queued=[Page(u, 0) for u in seeds], seen=seeds)

    def _reset(self, *, queued: Iterable[Page], seen: Iterable[str]) -> None:
        self._seq = itertools.count()
        self._queues: dict[str, list[tuple[int, int, Page]]] = {}  # host -> heap of (depth, seq, page)
        self._in_flight: dict[str, Page] = {}  # url -> page
        self._busy: set[str] = set()  # hosts with a fetch (a page or robots.txt) in flight
        self._hops: dict[str, int] = {}  # url in flight -> redirects that led to it
        self._robots_asked.clear()
        self._seen = set(seen)
        for page in queued:
            self._seen.add(page.url)
            self._push(page)

    # ---- state -------------------------------------------------------------------------------
    @property
    def in_flight(self) -> int:
        """Pages handed out and not settled yet."""
        return len(self._in_flight)

    def queued(self) -> list[Page]:
        """Every page waiting to be handed out, in the order it would be (host readiness aside)."""
        return [page for _, _, page in sorted(e for q in self._queues.values() for e in q)]

    def seen(self, url: str) -> bool:
        """Whether `url` (normalized) was queued, handed out or redirected to already."""
        return url in self._seen

    def _push(self, page: Page) -> None:
        heapq.heappush(self._queues.setdefault(host_of(page.url), []), (page.depth, next(self._seq), page))

    def _delay(self, host: str) -> float:
        robots = self._robots.get(host)
        crawl_delay = robots.crawl_delay() if robots is not None else None
        return max(self.spec.politeness_ms / 1000, min(crawl_delay or 0.0, MAX_CRAWL_DELAY))

    def _release(self, page: Page) -> bool:
        """Take `page` out of flight (its host rests for its delay); False if it was not in
        flight (settled already: a second settlement is ignored)."""
        if self._in_flight.pop(page.url, None) is None:
            return False
        host = host_of(page.url)
        self._busy.discard(host)
        self._ready_at[host] = self._clock() + self._delay(host)
        return True

    def _admit(self, url: str) -> bool:
        """Whether a link or redirect target may join the crawl: same-site when asked, unseen."""
        if self.spec.same_site and host_of(url) not in self._sites:
            return False
        return url not in self._seen

    # ---- decisions ---------------------------------------------------------------------------
    def next(self) -> Page | RobotsNeeded | Wait | Done:
        """What to do now: a `Page` to fetch (now in flight: settle it with `done`, `failed`
        or `redirected`), `RobotsNeeded(host)`, `Wait(seconds)` (politeness, or fetches in
        flight to wait for), or `Done`: `PAGE_LIMIT` once `max_pages` are recorded,
        `EXHAUSTED` once nothing is queued or in flight."""
        if self.recorded >= self.spec.max_pages:
            return Done(CrawlStop.PAGE_LIMIT)
        if self.recorded + len(self._in_flight) >= self.spec.max_pages:
            return Wait(_WAIT_FOR_FETCH)  # those in flight may still fail: then more are needed
        now = self._clock()
        soonest: float | None = None
        for host in sorted(self._queues, key=lambda h: self._queues[h][0][:2]):
            queue = self._queues[host]
            robots = self._robots.get(host)
            if robots is None:
                if host in self._robots_asked or host in self._busy:
                    continue
                self._robots_asked.add(host)
                self._busy.add(host)
                return RobotsNeeded(host)
            while queue and not robots.allowed(queue[0][2].url):
                heapq.heappop(queue)
                self.skipped_robots += 1
            if not queue:
                del self._queues[host]
                continue
            if host in self._busy:
                continue
            ready = self._ready_at.get(host, 0.0)
            if ready > now:
                soonest = ready if soonest is None else min(soonest, ready)
                continue
            page = heapq.heappop(queue)[2]
            if not queue:
                del self._queues[host]
            self._in_flight[page.url] = page
            self._busy.add(host)
            return page
        if not self._queues and not self._in_flight and not self._robots_asked:
            return Done(CrawlStop.EXHAUSTED)
        return Wait(_WAIT_FOR_FETCH if soonest is None else soonest - now)

    def set_robots(self, host: str, robots: Robots) -> None:
        """`host`'s robots.txt rules (fetched after a `RobotsNeeded`, or restored from the
        store). A fetch of it counts for the host's politeness like any other."""
        self._robots[host] = robots
        if host in self._robots_asked:
            self._robots_asked.discard(host)
            self._busy.discard(host)
            self._ready_at[host] = self._clock() + self._delay(host)

    def robots(self, host: str) -> Robots | None:
        """`host`'s rules, if known."""
        return self._robots.get(host)

    def done(
        self, page: Page, *, links: Iterable[str] = (), recorded: bool, duplicate: bool = False
    ) -> list[Page]:
        """The fetch of `page` ended with a response. `recorded`: it became a record (a 2xx
        whose body is new); False for a non-2xx status or a duplicate body (`duplicate`
        True: counted as one). Its `links` join the queue at `page.depth + 1` when that is
        within `max_depth`, normalized, same-site when asked and never seen before (robots.txt
        is checked when they come up). Returns the pages queued, in order: the caller
        persists them. A page already settled is ignored (returns [])."""
        if not self._release(page):
            return []
        self._hops.pop(page.url, None)
        self.recorded += recorded
        self.duplicates += duplicate
        depth = page.depth + 1
        if depth > self.spec.max_depth:
            return []
        new: list[Page] = []
        for link in links:
            url = normalize_url(link, page.url)
            if url is not None and self._admit(url):
                self._seen.add(url)
                child = Page(url, depth)
                self._push(child)
                new.append(child)
        return new

    def failed(self, page: Page) -> None:
        """`page` is given up (every node failed it, or the site did): counted, not retried.
        A page already settled is ignored."""
        if self._release(page):
            self._hops.pop(page.url, None)
            self.failures += 1

    def redirected(self, page: Page, location: str) -> Page | None:
        """`page` answered a 3xx to `location`: the target, at the same depth, replaces it in
        flight and is to be fetched now (a redirect is part of one page's fetch, as in any
        HTTP client; politeness counts from the end of the chain).

        None, and nothing more to fetch for `page`, when the target is not a URL this crawl
        fetches, is off-site, was seen before (a loop lands here), is disallowed by its
        host's robots.txt (counted in `skipped_robots`), or is past `MAX_REDIRECTS` from
        `page`'s original URL. Also None when the target's host (another host) cannot be
        fetched right now (its robots.txt is not known yet, a fetch is in flight there or it
        is resting for politeness): the target is then queued at `page`'s depth, to come up
        like any page (see `queued()`)."""
        hops = self._hops.pop(page.url, 0) + 1
        if not self._release(page):
            return None
        target = normalize_url(location, page.url)
        if target is None or hops > MAX_REDIRECTS or not self._admit(target):
            return None
        self._seen.add(target)
        nxt = Page(target, page.depth)
        host = host_of(target)
        robots = self._robots.get(host)
        if robots is not None and not robots.allowed(target):
            self.skipped_robots += 1
            return None
        same_host = host == host_of(page.url)
        resting = not same_host and self._ready_at.get(host, 0.0) > self._clock()
        if robots is None or host in self._busy or resting:
            self._push(nxt)
            return None
        self._in_flight[target] = nxt
        self._busy.add(host)
        if same_host:
            self._ready_at.pop(host, None)  # followed at once: the chain is one page's fetch
        self._hops[target] = hops
        return nxt

    def restore(
        self,
        *,
        queued: Iterable[Page],
        seen: Iterable[str],
        recorded: int,
        failed: int,
        skipped: int,
        duplicates: int = 0,
    ) -> None:
        """Resume after a restart from what the store holds: replaces the queue, what was
        seen and the counters (robots.txt rules already set are kept). Pages that were in
        flight at the kill are among `queued` (the store still has them so): handed out again."""
        self._reset(queued=queued, seen=seen)
        self.recorded, self.failures, self.skipped_robots, self.duplicates = recorded, failed, skipped, duplicates

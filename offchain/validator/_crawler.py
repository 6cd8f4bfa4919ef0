"""One crawl, run by a validator: pages fetched over TLS through data nodes, each turned into
a signed provenance record, persisted, then sent to the router.

    crawler = Crawler(task, spec, relay=relay, store=crawl_store, key=node_key,
                      tls=ssl_context, send=peer.send, nodes=node_book)
    await crawler.run()            # CrawlRecord frames as pages come, then one CrawlDone

The frontier (`_crawl.Frontier`) decides what to fetch and when (breadth first, same-site,
depth and page limits, robots.txt, per-host politeness); this module does the fetching:

- Every fetch is a fresh stream through a data node the router picks; this validator is the
  TLS client over it (SNI and certificate checked against `tls`), so a node cannot forge or
  alter a page: one flipped byte fails TLS (`ssl.SSLError`). Such a failure, a stream cut
  short or a fetch past `fetch_timeout` is the relay's fault: the stream is closed with
  `RELAY_FAULT` (the client pays nothing for it), the node's reputation drops, and the page
  is fetched again through another node (`avoid`), up to `attempts` nodes.
- A page's record is written to the crawl store before it is sent (a validator killed
  mid-crawl resumes from the store: recorded pages are not fetched again, and are sent again
  with their index so the client keeps one copy of each).
- Duplicate bodies (by SHA-256) are not recorded twice.
- A target the data node refuses by its policy (a private address, a port, a name that does
  not resolve) is not tried through another node: the page fails. When that target is a
  host's robots.txt, the host itself is refused: its pages fail without a fetch (counted in
  `CrawlDone.failed`, never fetched through another node without their rules). That refusal
  is not stored: a resumed crawl asks the host's robots.txt again.
- At the end the validator signs the manifest digest over exactly the records sent
  (`offchain.dataset.manifest_of`), which the client recomputes over what it received.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from urllib.parse import urlsplit

import h11
import msgspec
from nacl.signing import SigningKey
from websockets.exceptions import ConnectionClosed

from offchain.dataset._format import manifest_digest
from offchain.dataset._writer import manifest_of
from offchain.protocol.provenance import (
    ProvenanceRecord,
    SignedRecord,
    body_hash,
    certificate_hash,
    sign_record,
)
from offchain.protocol.tls_stream import HttpResponse, TlsClient, http_get
from offchain.protocol.wire import (
    RELAY_FAULT,
    CrawlDone,
    CrawlRecord,
    CrawlSpec,
    CrawlStop,
    Frame,
    StreamRefusal,
)
from offchain.validator._crawl import (
    MAX_REDIRECTS,
    Done,
    Frontier,
    Page,
    Robots,
    RobotsNeeded,
    Wait,
    extract,
    host_of,
    normalize_url,
)
from offchain.validator._crawl_store import CrawlStore
from offchain.validator._relay import RelayClient, RelayLost, StreamRefusedError

__all__ = ["Crawler", "CrawlerConfig", "NodeBook"]

log = logging.getLogger("cocoon.validator")

_TARGET_REFUSALS = (StreamRefusal.PORT, StreamRefusal.DESTINATION, StreamRefusal.UNRESOLVED)
# what the node refused because of the target: another node would refuse it too


@dataclass(frozen=True)
class CrawlerConfig:
    concurrency: int = 4  # fetches at once (on different hosts: the frontier keeps one per host)
    fetch_timeout: float = 30.0  # seconds for one fetch, TLS handshake to the body's last byte
    attempts: int = 3  # data nodes tried for one page before it is given up
    no_node_wait: float = 0.5  # seconds before asking again when no data node is connected
    no_node_retries: int = 20  # then the crawl ends (CrawlStop.NO_NODE)


class NodeBook:
    """Data nodes' reputation as this validator measures it (Grass-like: completeness and
    availability as an exponentially weighted success rate, latency folded in as a penalty
    for slow fetches). `on_change(provider, score, fetches, failures)` reports each update
    (the agent persists it and sends it to the router as `Reputation`)."""

    def __init__(
        self,
        *,
        alpha: float = 0.2,
        slow_seconds: float = 5.0,
        report_step: float = 0.02,
        on_change: Callable[[str, float, int, int], Awaitable[None]] | None = None,
    ) -> None:
        self.alpha = alpha
        self.slow_seconds = slow_seconds
        self.on_change = on_change
        self.scores: dict[str, float] = {}
        self.fetches: dict[str, int] = {}
        self.failures: dict[str, int] = {}
        self.report_step = report_step
        self._reported: dict[str, float] = {}
        self._tasks: set[asyncio.Future[None]] = set()

    def restore(self, provider: str, score: float, fetches: int, failures: int) -> None:
        self.scores[provider], self.fetches[provider], self.failures[provider] = score, fetches, failures
        self._reported[provider] = score

    def score(self, provider: str) -> float:
        return self.scores.get(provider, 1.0)

    async def observe(self, provider: str, *, ok: bool, seconds: float = 0.0) -> None:
        """Book one fetch. The report (`on_change`: a commit and a frame) runs in the background
        and only when it says something new: a failure, a first fetch, or the score moved by
        `report_step` since it was last reported; a fetch never waits for it."""
        if not provider:
            return
        value = 0.0 if not ok else (1.0 if seconds <= self.slow_seconds else 0.5)
        old = self.scores.get(provider, 1.0)
        score = self.scores[provider] = (1 - self.alpha) * old + self.alpha * value
        self.fetches[provider] = self.fetches.get(provider, 0) + 1
        if not ok:
            self.failures[provider] = self.failures.get(provider, 0) + 1
        last = self._reported.get(provider)
        if self.on_change is None or (ok and last is not None and abs(score - last) < self.report_step):
            return
        self._reported[provider] = score
        task = asyncio.ensure_future(
            self.on_change(provider, score, self.fetches[provider], self.failures.get(provider, 0))
        )
        self._tasks.add(task)
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Future[None]) -> None:
        self._tasks.discard(task)  # type: ignore[arg-type]
        if not task.cancelled() and task.exception() is not None:
            log.warning("reporting a data node's reputation failed: %s", task.exception())


class _TargetRefused(Exception):
    """The data node refused the target by its policy: any node would (`_TARGET_REFUSALS`)."""


class _SessionLost(Exception):
    """The router session is gone: the crawl stops here and resumes when the task comes again."""


class _Stop(Exception):
    def __init__(self, stop: CrawlStop) -> None:
        super().__init__(stop.name)
        self.stop = stop


@dataclass
class _Fetched:
    url: str
    response: HttpResponse
    cert: bytes
    node: str
    fetched_at: int


class Crawler:
    """One crawl task (see the module doc). `run()` once."""

    def __init__(
        self,
        task: int,
        spec: CrawlSpec,
        *,
        relay: RelayClient,
        store: CrawlStore,
        key: SigningKey,
        tls: ssl.SSLContext,
        send: Callable[[Frame], Awaitable[None]],
        nodes: NodeBook,
        config: CrawlerConfig | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.task = task
        self.spec = spec
        self.relay = relay
        self.store = store
        self.key = key
        self.validator_key = bytes(key.verify_key)
        self.tls = tls
        self.send = send
        self.nodes = nodes
        self.config = config or CrawlerConfig()
        self.clock = clock
        self.frontier = Frontier(spec)
        self.records: list[SignedRecord] = []
        self.bodies: set[bytes] = set()
        self.refused: dict[str, str] = {}  # host -> why: its robots.txt was refused by the node's policy
        self.refetched = 0
        self._stop: CrawlStop | None = None
        self._session_lost = False
        self._changed = asyncio.Event()

    # ---- the crawl -------------------------------------------------------------------------
    async def run(self) -> CrawlDone:
        """Crawl (or resume) to the end; returns the `CrawlDone` it sent."""
        await self._restore()
        for i, rec in enumerate(self.records):  # resumed: the client keeps the first copy of each
            await self.send(CrawlRecord(id=self.task, index=i, record=rec))
        stored = self.store.task(self.task)
        if stored is not None and stored[1] == "done":
            stop = CrawlStop(stored[2])
        else:
            stop = await self._crawl()
            await self.store.write([self.store.op_task_done(self.task, int(stop))])
        manifest = manifest_of(msgspec.to_builtins(self.spec), self.records)
        digest = manifest_digest(manifest)
        done = CrawlDone(
            id=self.task,
            stop=stop,
            records=len(self.records),
            failed=self.frontier.failures,
            duplicates=self.frontier.duplicates,
            refetched=self.refetched,
            manifest_digest=digest,
            validator=self.validator_key,
            signature=self.key.sign(digest).signature,
        )
        await self.send(done)
        log.info("crawl %d done (%s): %d records, %d failed, %d duplicates, %d refetched, %d robots-skipped",
                 self.task, stop.name, len(self.records), done.failed, done.duplicates, self.refetched,
                 self.frontier.skipped_robots)
        return done

    async def _restore(self) -> None:
        stored = self.store.task(self.task)
        if stored is None:
            await self.store.write([self.store.op_task(self.task, self.spec, int(self.clock())),
                                    *self.store.op_queue(self.task, self.frontier.queued())])
            return
        if stored[0] != self.spec:
            raise ValueError(f"crawl {self.task} is in this validator's store with another spec")
        state = self.store.resume(self.task)
        self.frontier.restore(queued=state["queued"], seen=state["seen"], recorded=state["recorded"],
                              failed=state["failed"], skipped=state["skipped"], duplicates=state["duplicates"])
        for host, robots in state["robots"].items():
            self.frontier.set_robots(host, robots)
        self.records = self.store.records(self.task)
        self.bodies = set(state["bodies"])
        log.info("crawl %d resumed: %d records, %d pages queued", self.task, len(self.records), len(state["queued"]))

    async def _crawl(self) -> CrawlStop:
        running: set[asyncio.Task[None]] = set()
        try:
            while True:
                if self._session_lost:
                    raise ConnectionClosed(None, None)
                if self._stop is not None:
                    if not running:
                        return self._stop
                    step: object = Wait(1.0)
                elif len(running) >= self.config.concurrency:
                    step = Wait(1.0)
                else:
                    step = self.frontier.next()
                if isinstance(step, Done):
                    if not running:
                        return step.stop
                    step = Wait(1.0)
                if isinstance(step, Page | RobotsNeeded):
                    t = asyncio.create_task(self._one(step))
                    running.add(t)
                    t.add_done_callback(running.discard)
                    t.add_done_callback(lambda _t: self._changed.set())
                    continue
                assert isinstance(step, Wait)
                self._changed.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._changed.wait(), max(0.005, step.seconds))
        finally:
            for t in list(running):
                t.cancel()
            await asyncio.gather(*running, return_exceptions=True)

    async def _one(self, step: Page | RobotsNeeded) -> None:
        try:
            if isinstance(step, RobotsNeeded):
                await self._robots(step.host)
            else:
                await self._page(step)
        except _SessionLost:
            self._session_lost = True
            self._changed.set()
        except _Stop as stop:
            if self._stop is None:
                self._stop = stop.stop
            if isinstance(step, Page):
                self.frontier.failed(step)  # given back on a resume: it is still queued on disk
        except Exception:
            log.exception("crawl %d: %s failed", self.task, getattr(step, "url", step))
            if isinstance(step, Page):
                self.frontier.failed(step)
                await self.store.write([self.store.op_page_state(self.task, step.url, "failed")])

    async def _robots(self, host: str) -> None:
        url = f"https://{host}/robots.txt"
        try:
            fetched = await self._fetch(url)
        except _TargetRefused as err:
            # the host itself is refused: its pages fail, with the rules unknown they are not
            # fetched through any node (allowed here only for the frontier to hand them out)
            self.refused[host] = f"its robots.txt was refused by the node's policy ({err})"
            self.frontier.set_robots(host, Robots.from_response(404, b""))
            return
        for _ in range(MAX_REDIRECTS):  # RFC 9309: follow at least five redirects
            location = _header(fetched.response, "location") if fetched is not None else ""
            if fetched is None or not (300 <= fetched.response.status < 400 and location):
                break
            target = normalize_url(location, url)
            if target is None:
                break
            url = target
            try:
                fetched = await self._fetch(url)
            except _TargetRefused:
                fetched = None  # the rules are elsewhere and out of reach: unreachable
        if fetched is None:
            robots, status, body = Robots.unreachable(), 0, b""
        else:
            status, body = fetched.response.status, fetched.response.body
            robots = Robots.from_response(status, body)
        await self.store.write([self.store.op_robots(self.task, host, status, body)])
        self.frontier.set_robots(host, robots)

    async def _page(self, page: Page) -> None:
        current = page
        for _ in range(MAX_REDIRECTS + 1):
            try:
                fetched = await self._fetch(current.url)
            except _TargetRefused:
                fetched = None
            if fetched is None:
                self.frontier.failed(current)
                await self.store.write([self.store.op_page_state(self.task, current.url, "failed")])
                return
            r = fetched.response
            location = _header(r, "location")
            if 300 <= r.status < 400 and location:
                target = normalize_url(location, current.url)
                fresh = target is not None and not self.frontier.seen(target)
                nxt = self.frontier.redirected(current, location)
                ops = [self.store.op_page_state(self.task, current.url, "done")]
                if fresh and target is not None and self.frontier.seen(target):  # followed now, or queued
                    ops += self.store.op_queue(self.task, [Page(target, current.depth)])
                await self.store.write(ops)
                if nxt is None:
                    return
                current = nxt
                continue
            await self._record(current, fetched)
            return
        self.frontier.done(current, recorded=False)

    async def _record(self, page: Page, f: _Fetched) -> None:
        r = f.response
        digest = body_hash(r.body)
        ctype = _header(r, "content-type")
        if not 200 <= r.status < 300:
            self.frontier.done(page, recorded=False)
            await self.store.write([self.store.op_page_state(self.task, page.url, "done")])
            return
        text, links = await asyncio.to_thread(extract, r.body, ctype, f.url)
        if digest in self.bodies:
            new = self.frontier.done(page, links=links, recorded=False, duplicate=True)
            await self.store.write([self.store.op_page_state(self.task, page.url, "duplicate"),
                                    *self.store.op_queue(self.task, new)])
            return
        self.bodies.add(digest)
        record = ProvenanceRecord(
            url=page.url,
            final_url=f.url,
            status=r.status,
            fetched_at=f.fetched_at,
            cert_sha256=f.cert,
            body_sha256=digest,
            content_type=ctype,
            byte_count=len(r.body),
            provider=f.node,
            main_text=text,
            validator_key=self.validator_key,
        )
        signed = sign_record(self.key, record)
        index = len(self.records)
        self.records.append(signed)
        new = self.frontier.done(page, links=links, recorded=True)
        # the record (and the frontier it grew) on disk before anyone sees it
        await self.store.write([self.store.op_record(self.task, index, page.url, signed),
                                *self.store.op_queue(self.task, new)])
        await self.send(CrawlRecord(id=self.task, index=index, record=signed))

    # ---- one fetch through the relay -----------------------------------------------------------
    async def _fetch(self, url: str) -> _Fetched | None:
        """GET `url` through a data node; None if the page cannot be had (every node tried
        failed). Raises `_TargetRefused` when the node refuses the target by its policy (or
        refused its host's robots.txt), `_Stop` for the crawl's end."""
        parts = urlsplit(url)
        host = parts.hostname or ""
        with contextlib.suppress(ValueError):  # robots.txt's authority (host_of), as `_robots` keys it
            why = self.refused.get(host_of(url))
            if why is not None:
                log.info("crawl %d: %s not fetched: %s", self.task, url, why)
                raise _TargetRefused(why)
        port = parts.port or 443
        path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        avoid: list[str] = []
        no_node = 0
        max_body = max(1024, self.spec.max_page_bytes * 9 // 10 - 64 * 1024)  # under the router's cap
        while len(avoid) < self.config.attempts:
            try:
                stream = await self.relay.open(host, port, task=self.task, avoid=avoid)
            except StreamRefusedError as err:
                if err.reason == StreamRefusal.BUDGET:
                    raise _Stop(CrawlStop.BUDGET) from err
                if err.reason in _TARGET_REFUSALS:
                    log.info("crawl %d: %s refused by the node's policy: %s", self.task, url, err)
                    raise _TargetRefused(str(err)) from err
                if err.reason == StreamRefusal.NO_NODE:
                    if avoid:
                        return None  # every node that could relay it failed it
                    no_node += 1
                    if no_node > self.config.no_node_retries:
                        raise _Stop(CrawlStop.NO_NODE) from err
                    await asyncio.sleep(self.config.no_node_wait)
                    continue
                await asyncio.sleep(self.config.no_node_wait)  # busy or failed to connect: again
                no_node += 1
                if no_node > self.config.no_node_retries:
                    return None
                continue
            except RelayLost as err:
                raise _SessionLost(str(err)) from err
            started = time.monotonic()
            tls = TlsClient(self.tls, host)
            try:
                async with asyncio.timeout(self.config.fetch_timeout):
                    response = await http_get(tls, stream.transport, path, max_body=max_body)
            except ValueError as err:  # the body passed the page cap: the site's doing, not the node's
                await stream.close(error=str(err))
                log.info("crawl %d: %s is over the page cap: %s", self.task, url, err)
                return None
            except (ssl.SSLError, RelayLost, h11.ProtocolError, TimeoutError, OSError) as err:
                why = f"{type(err).__name__}: {err}"
                await stream.close(error=RELAY_FAULT + why)
                await self.nodes.observe(stream.node, ok=False)
                log.warning("crawl %d: %s through node %s failed (%s); trying another node",
                            self.task, url, stream.node, why)
                if stream.node:
                    avoid.append(stream.node)
                else:
                    return None
                self.refetched += 1
                continue
            seconds = time.monotonic() - started
            await stream.close()
            cert = tls.peer_certificate_der()
            await self.nodes.observe(stream.node, ok=True, seconds=seconds)
            return _Fetched(
                url=url,
                response=response,
                cert=certificate_hash(cert) if cert else bytes(32),
                node=stream.node,
                fetched_at=int(self.clock()),
            )
        return None


def _header(r: HttpResponse, name: str) -> str:
    return next((v for k, v in r.headers if k.lower() == name), "")


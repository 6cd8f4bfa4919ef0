"""The validator's crawl store: tasks, frontier, records and robots.txt round trips, and a
crawl killed mid-way that resumes from the file exactly (nothing refetched, nothing lost)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import msgspec
import pytest
from nacl.signing import SigningKey

from offchain.errors import StorageError
from offchain.protocol.provenance import ProvenanceRecord, SignedRecord, body_hash, sign_record, verify_record
from offchain.protocol.wire import CrawlSpec, CrawlStop
from offchain.validator._crawl import Done, Frontier, Page, Robots, RobotsNeeded, Wait, extract
from offchain.validator._crawl_store import CrawlStore
from tests.agents.test_crawl_core import NEWS, Clock, FakeWeb, crawl

KEY = SigningKey(b"\x07" * 32)
PROVIDER = "0:" + "ab" * 32
SPEC = CrawlSpec(seeds=[f"https://{NEWS}/"], max_pages=20, politeness_ms=0)
TASK = 41


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "crawl.sqlite"


@pytest.fixture
def store(path: Path) -> Iterator[CrawlStore]:
    s = CrawlStore(path)
    yield s
    s.close()


def signed(url: str, body: bytes, *, text: str = "", at: int = 1_700_000_000) -> SignedRecord:
    record = ProvenanceRecord(
        url=url, final_url=url, status=200, fetched_at=at, cert_sha256=b"\x01" * 32, body_sha256=body_hash(body),
        content_type="text/html; charset=utf-8", byte_count=len(body), provider=PROVIDER, main_text=text,
        validator_key=bytes(KEY.verify_key),
    )
    return sign_record(KEY, record)


async def test_task_round_trip_and_a_different_spec_is_detectable(store: CrawlStore) -> None:
    assert store.task(TASK) is None
    await store.write([store.op_task(TASK, SPEC, 1_700_000_000)])
    assert store.task(TASK) == (SPEC, "running", None)
    other = msgspec.structs.replace(SPEC, max_pages=21)
    await store.write([store.op_task(TASK, other, 1_700_000_001)])  # the same id again: the first spec stays
    stored = store.task(TASK)
    assert stored is not None and stored[0] == SPEC and stored[0] != other
    await store.write([store.op_task_done(TASK, CrawlStop.PAGE_LIMIT)])
    assert store.task(TASK) == (SPEC, "done", CrawlStop.PAGE_LIMIT)
    await store.write([store.op_task(7, SPEC, 5)])
    assert store.tasks() == [(7, "running", None, 5), (TASK, "done", CrawlStop.PAGE_LIMIT, 1_700_000_000)]


async def test_frontier_records_and_robots_round_trip(store: CrawlStore) -> None:
    seeds = [Page("https://a.test/", 0), Page("https://a.test/2", 0)]
    await store.write([store.op_task(TASK, SPEC, 1), *store.op_queue(TASK, seeds)])
    first = signed("https://a.test/", b"<p>one</p>", text="one")
    children = [Page("https://a.test/c", 1), Page("https://a.test/b", 1), Page("https://a.test/2", 1)]
    await store.write([store.op_record(TASK, 0, "https://a.test/", first), *store.op_queue(TASK, children)])
    await store.write([
        store.op_page_state(TASK, "https://a.test/c", "failed"),
        store.op_page_state(TASK, "https://a.test/redirect-target", "done"),  # not queued before: now seen
        store.op_robots(TASK, "a.test", 200, b"User-agent: *\nDisallow: /private/\n"),
        store.op_robots(TASK, "b.test", 0, b""),
    ])
    second = signed("https://a.test/2", b"<p>two</p>", text="two")
    await store.write([store.op_record(TASK, 1, "https://a.test/2", second)])

    assert store.records(TASK) == [first, second]
    assert [verify_record(r) for r in store.records(TASK)] == [first.hash, second.hash]
    assert store.has_body(TASK, body_hash(b"<p>two</p>")) and not store.has_body(TASK, body_hash(b"x"))
    state = store.resume(TASK)
    assert state["queued"] == [Page("https://a.test/b", 1)]  # the recorded pages are done, c failed
    assert state["seen"] == ["https://a.test/", "https://a.test/2", "https://a.test/c", "https://a.test/b",
                             "https://a.test/redirect-target"]  # a.test/2 is queued once, at depth 0
    assert (state["recorded"], state["failed"], state["skipped"], state["duplicates"]) == (2, 1, 0, 0)
    assert state["bodies"] == {body_hash(b"<p>one</p>"), body_hash(b"<p>two</p>")}
    robots = state["robots"]
    assert set(robots) == {"a.test", "b.test"}
    assert not robots["a.test"].allowed("https://a.test/private/") and robots["a.test"].allowed("https://a.test/")
    assert not robots["b.test"].allowed("https://b.test/")  # status 0: unreachable, nothing allowed
    assert store.resume(999) == {"queued": [], "seen": [], "recorded": 0, "failed": 0, "skipped": 0,
                                 "duplicates": 0, "robots": {}, "bodies": set()}


async def test_a_record_is_written_with_its_page_done_or_not_at_all(store: CrawlStore) -> None:
    await store.write([store.op_task(TASK, SPEC, 1), *store.op_queue(TASK, [Page("https://a.test/", 0)])])
    rec = signed("https://a.test/", b"body")
    await store.write([store.op_record(TASK, 0, "https://a.test/", rec)])
    with pytest.raises(StorageError):  # an index is never reused: the whole batch fails
        await store.write([store.op_queue(TASK, [Page("https://a.test/x", 1)])[0],
                           store.op_record(TASK, 0, "https://a.test/x", signed("https://a.test/x", b"other"))])
    assert store.records(TASK) == [rec]
    assert store.resume(TASK)["queued"] == []  # a.test/x was not queued either
    with pytest.raises(ValueError, match="frontier state"):
        store.op_page_state(TASK, "https://a.test/", "fetched")


async def test_forget(store: CrawlStore) -> None:
    for task in (1, 2):
        await store.write([store.op_task(task, SPEC, 1), *store.op_queue(task, [Page("https://a.test/", 0)]),
                           store.op_record(task, 0, "https://a.test/", signed("https://a.test/", b"b")),
                           store.op_robots(task, "a.test", 404, b"")])
    await store.forget(1)
    assert store.task(1) is None and store.records(1) == [] and store.resume(1)["seen"] == []
    assert [t[0] for t in store.tasks()] == [2] and len(store.records(2)) == 1


class Validator:
    """The crawler's use of the frontier and the store, in miniature (persist, then send)."""

    def __init__(self, store: CrawlStore, web: FakeWeb, clock: Clock) -> None:
        self.store, self.web, self.clock = store, web, clock
        self.sent: list[tuple[int, SignedRecord]] = []
        self.frontier = Frontier(SPEC, clock=clock)
        self.records: list[SignedRecord] = []
        self.bodies: set[bytes] = set()

    async def start(self) -> None:
        stored = self.store.task(TASK)
        if stored is None:
            seeds = [Page(u, 0) for u in SPEC.seeds]
            await self.store.write([self.store.op_task(TASK, SPEC, 1), *self.store.op_queue(TASK, seeds)])
            return
        assert stored[0] == SPEC
        state = self.store.resume(TASK)
        self.frontier.restore(queued=state["queued"], seen=state["seen"], recorded=state["recorded"],
                              failed=state["failed"], skipped=state["skipped"], duplicates=state["duplicates"])
        for host, robots in state["robots"].items():
            self.frontier.set_robots(host, robots)
        self.records = self.store.records(TASK)
        self.bodies = state["bodies"]
        self.sent += list(enumerate(self.records))  # sent again: the client keeps the first copy

    async def step(self) -> Page | Done | None:
        """One decision carried out: the page fetched and settled, `Done`, or None (robots.txt
        fetched, or the clock moved on)."""
        step = self.frontier.next()
        if isinstance(step, Done):
            return step
        if isinstance(step, Wait):
            self.clock.advance(step.seconds)
        elif isinstance(step, RobotsNeeded):
            r = self.web.fetch(f"https://{step.host}/robots.txt")
            await self.store.write([self.store.op_robots(TASK, step.host, r.status, r.body)])
            self.frontier.set_robots(step.host, Robots.from_response(r.status, r.body))
        else:
            await self.settle(step)
            return step
        return None

    async def settle(self, page: Page) -> None:
        r = self.web.fetch(page.url)
        text, links = extract(r.body, r.content_type, page.url)
        digest = body_hash(r.body)
        if r.status != 200 or digest in self.bodies:
            duplicate = r.status == 200
            new = self.frontier.done(page, links=links, recorded=False, duplicate=duplicate)
            await self.store.write([self.store.op_page_state(TASK, page.url, "duplicate" if duplicate else "done"),
                                    *self.store.op_queue(TASK, new)])
            return
        self.bodies.add(digest)
        rec = signed(page.url, r.body, text=text, at=int(self.clock.now))
        new = self.frontier.done(page, links=links, recorded=True)
        idx = len(self.records)
        self.records.append(rec)
        await self.store.write([self.store.op_record(TASK, idx, page.url, rec), *self.store.op_queue(TASK, new)])
        self.sent.append((idx, rec))  # after the write returned: what was sent is on disk

    async def finish(self) -> CrawlStop:
        while not isinstance(step := await self.step(), Done):
            pass
        await self.store.write([self.store.op_task_done(TASK, step.stop)])
        return step.stop


async def test_a_killed_crawl_resumes_from_the_file(path: Path) -> None:
    # the crawl uninterrupted, for reference
    ref_web, ref_clock = FakeWeb(), Clock()
    ref_stop, ref_recorded = crawl(Frontier(SPEC, clock=ref_clock), ref_web, ref_clock)

    web, clock = FakeWeb(), Clock()
    store = CrawlStore(path)
    v = Validator(store, web, clock)
    await v.start()
    pages: list[Page] = []
    while len(pages) < 2:  # robots.txt, then two pages recorded
        page = await v.step()
        if isinstance(page, Page):
            pages.append(page)
    in_flight = v.frontier.next()  # handed out, fetched, but the validator dies before settling it
    assert isinstance(in_flight, Page)
    web.fetch(in_flight.url)
    before = store.resume(TASK)
    sent_before = list(v.sent)
    store.close()  # killed: nothing marked, nothing flushed beyond what write() returned from

    store = CrawlStore(path)
    try:
        assert store.resume(TASK) == before
        assert in_flight in before["queued"]  # still queued on disk
        assert store.records(TASK) == [rec for _, rec in sent_before]  # everything sent is on disk, in order
        v2 = Validator(store, web, clock)
        await v2.start()
        assert v2.frontier.recorded == 2 and v2.frontier.next() == in_flight  # handed out again first
        await v2.settle(in_flight)
        stop = await v2.finish()
        assert stop == ref_stop == CrawlStop.EXHAUSTED
        records = store.records(TASK)
        assert [r.record.url for r in records] == ref_recorded
        assert all(verify_record(r) for r in records)
        assert store.task(TASK) == (SPEC, "done", CrawlStop.EXHAUSTED)
        # robots.txt was not fetched again, nor any page settled before the kill
        assert web.fetched.count(f"https://{NEWS}/robots.txt") == 1
        assert sorted(web.fetched) == sorted([*ref_web.fetched, in_flight.url])
        # the client, keeping the first copy of each index, has every record once
        client: dict[int, SignedRecord] = {}
        for idx, rec in [*v.sent, *v2.sent]:
            client.setdefault(idx, rec)
        assert [client[i] for i in sorted(client)] == records
    finally:
        store.close()

"""Faults on the data path, as real processes (localnet, router, one validator, data nodes,
the local HTTPS web): a data node killed while it relays a slow page, a page larger than the
crawl's cap, a node whose policy refuses private targets, and a validator killed mid-crawl
and restarted. What each costs is read from the router's and the validator's own SQLite
books, as an operator would; which node holds an open stream is read from /proc (as `ss -tp`
would: the node's socket to the web), never guessed or waited for with a fixed sleep.

The tests share one devnet and run in file order: the last three change it (a node killed,
the validator restarted, the honest nodes stopped); each first puts back the data nodes it
needs (`honest_nodes`)."""

from __future__ import annotations

import asyncio
import concurrent.futures
import os
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow.dataset as pads
import pytest

from offchain.dataset import Dataset, verify_dataset
from offchain.devnet import Devnet, DevnetConfig
from offchain.devnet._supervisor import Proc
from offchain.protocol.wire import CrawlDone, CrawlSpec, CrawlStop

from ._helpers import fresh_client, read_db, router_db, wait_log, wait_until

NEWS, DOCS, SHOP = "news.cocoon.test", "docs.cocoon.test", "shop.cocoon.test"
PAGES = {  # the local web's three content pages per site (offchain/devnet/_web.py)
    NEWS: ["/world/harbour-reopens", "/science/deep-sea-survey", "/local/library-hours"],
    DOCS: ["/guide/install", "/guide/configuration", "/reference/api"],
    SHOP: ["/products/kettle", "/products/desk-lamp", "/products/backpack"],
}
SLOW_DELAY = 3.0  # seconds /slow holds its body back: long enough to act while its stream is open
HONEST = 2  # data nodes 0 and 1; 2 is the private-refusing one (the localnet funds two spare)
MiB = 1024 * 1024


@pytest.fixture(scope="module")
def net(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Devnet]:
    d = Devnet(
        tmp_path_factory.mktemp("datafaults"),
        DevnetConfig(
            workers=0,
            gateway=False,
            redeem_interval=600.0,
            redeem_threshold="1000",
            validators=1,
            datanodes=HONEST,
            validator_extra={"probe_interval": 3600, "deposit": "0.5", "fetch_timeout": 10},
        ),
    )
    try:  # `start()`, with the web's slow page slowed down
        d.start_localnet()
        d.deploy()
        d.start_router()
        d.start_web(slow_delay=SLOW_DELAY, huge_size=4 * MiB)
        d.start_validator(0)
        for i in range(HONEST):
            d.start_datanode(i)
        yield d
    finally:
        d.close()


# ---- helpers ------------------------------------------------------------------------------------
@dataclass
class Bought:
    dataset: Dataset
    done: CrawlDone
    charged: int  # what the client's books say it was charged for the crawl
    budget: int  # the crawl's max_cost


async def _buy(net: Devnet, spec: CrawlSpec, out: Path) -> Bought:
    """One crawl from a fresh client (its own channel) on the spare wallet."""
    async with fresh_client(net, out.with_suffix(".db")) as client:
        await client.open_channel(deposit=10**9)
        await client.connect()  # the router's prices: the budget is the client's default
        budget = client.crawl_budget(spec)
        ds = await client.crawl(spec, out, max_cost=budget, timeout=120, anchor=False)
        assert client.last_crawl is not None
        return Bought(ds, client.last_crawl, client.charged_data, budget)


def buy(net: Devnet, spec: CrawlSpec, out: Path) -> Bought:
    return asyncio.run(_buy(net, spec, out))


def buy_in_background(pool: concurrent.futures.Executor, net: Devnet, spec: CrawlSpec,
                      out: Path) -> concurrent.futures.Future[Bought]:
    """The same crawl in a thread: the client stays in its `crawl()` while the test acts."""
    return pool.submit(buy, net, spec, out)


def provider(p: Proc) -> str:
    return str(p.info["provider"])


def honest_nodes(net: Devnet, n: int) -> list[Proc]:
    """At least `n` honest data nodes running (dead ones started again), the refusing one
    stopped; returns those running."""
    if "datanode2" in net.sup.procs:
        net.sup.stop("datanode2")
    for i in range(HONEST):
        if sum(net.sup.procs[f"datanode{j}"].alive() for j in range(HONEST)) >= n:
            break
        if not net.sup.procs[f"datanode{i}"].alive():
            net.start_datanode(i)
    return [p for i in range(HONEST) if (p := net.sup.procs[f"datanode{i}"]).alive()]


def records_of(out: Path) -> list[dict[str, Any]]:
    table = pads.dataset(out, format="parquet", exclude_invalid_files=True).to_table()
    return table.to_pylist()


def relay_usage(net: Devnet) -> dict[str, tuple[int, int, int]]:
    """provider -> (requests, failures, earned) of model 'relay', over every epoch."""
    rows = router_db(net, "SELECT provider, sum(requests), sum(failures), sum(earned) FROM usage "
                          "WHERE model = 'relay' GROUP BY provider")
    return {p: (int(r), int(f), int(e)) for p, r, f, e in rows}


def usage_delta(before: dict[str, tuple[int, int, int]], after: dict[str, tuple[int, int, int]],
                who: str) -> tuple[int, int, int]:
    b, a = before.get(who, (0, 0, 0)), after.get(who, (0, 0, 0))
    return a[0] - b[0], a[1] - b[1], a[2] - b[2]


def node_book(net: Devnet) -> dict[str, tuple[float, int]]:
    """The validator's own book of data nodes: provider -> (reputation, fetches it failed)."""
    rows = read_db(net.workdir / "validator0" / "validator.db", "SELECT provider, score, failures FROM nodes")
    return {p: (float(s), int(f)) for p, s, f in rows}


def node_failures(net: Devnet) -> dict[str, int]:
    return {p: f for p, (_, f) in node_book(net).items()}


def crawl_db(net: Devnet, sql: str, *args: Any) -> list[tuple[Any, ...]]:
    path = net.workdir / "validator0" / "crawl.db"
    return read_db(path, sql, args) if path.exists() else []


def tasks(net: Devnet) -> set[int]:
    return {int(t) for (t,) in crawl_db(net, "SELECT id FROM tasks")}


def recording(net: Devnet, old: set[int]) -> int | None:
    """A crawl task not in `old` with a record on the validator's disk."""
    for t in tasks(net) - old:
        if crawl_db(net, "SELECT count(*) FROM records WHERE task = ?", t)[0][0]:
            return t
    return None


def web_sockets(pid: int, port: int) -> int:
    """How many TCP connections process `pid` has established to 127.0.0.1:`port` (its
    socket inodes, matched against the kernel's table: what `ss -tp` shows)."""
    inodes = set()
    try:
        for fd in os.listdir(f"/proc/{pid}/fd"):
            try:
                target = os.readlink(f"/proc/{pid}/fd/{fd}")
            except OSError:  # closed meanwhile
                continue
            if target.startswith("socket:["):
                inodes.add(target[8:-1])
        table = Path(f"/proc/{pid}/net/tcp").read_text().splitlines()[1:]
    except OSError:  # the process is gone
        return 0
    remote = f"0100007F:{port:04X}"
    n = 0
    for line in table:
        f = line.split()
        if f[2] == remote and f[3] == "01" and f[9] in inodes:  # 01: ESTABLISHED
            n += 1
    return n


def node_holding_a_stream(net: Devnet, nodes: list[Proc], *, hold: float = 0.3, timeout: float = 20.0) -> Proc:
    """The one node with a connection to the web held open for `hold` seconds (a slow page's
    stream: the others' fetches last milliseconds)."""
    port = int(net.web["port"])
    since: dict[str, float] = {}

    def check() -> Proc | None:
        now = time.monotonic()
        for p in nodes:
            if web_sockets(p.pid, port):
                since.setdefault(p.name, now)
                if now - since[p.name] >= hold:
                    return p
            else:
                since.pop(p.name, None)
        return None

    return wait_until("a data node holds the slow page's stream", net, check, timeout, interval=0.05)


# ---- the tests ----------------------------------------------------------------------------------
def test_a_page_over_the_cap_is_failed_without_blaming_a_node(net: Devnet, tmp_path: Path) -> None:
    """/huge (4 MiB) in a crawl capped at 1 MiB a page: the validator stops reading it at its
    cap; no record, counted as failed, no node loses reputation, the charge within budget."""
    nodes = honest_nodes(net, 1)
    book_before, usage_before = node_book(net), relay_usage(net)
    spec = CrawlSpec(seeds=[f"https://{NEWS}/huge", f"https://{NEWS}{PAGES[NEWS][0]}"], max_pages=2,
                     max_depth=0, politeness_ms=0, max_page_bytes=1 * MiB)
    got = buy(net, spec, tmp_path / "ds")
    assert got.done.stop == CrawlStop.EXHAUSTED, got.done
    assert (got.done.records, got.done.failed, got.done.refetched) == (1, 1, 0), got.done
    urls = [r["url"] for r in records_of(tmp_path / "ds")]
    assert urls == [f"https://{NEWS}{PAGES[NEWS][0]}"], "no record for the page over the cap"
    verify_dataset(tmp_path / "ds", trusted_validators={bytes.fromhex(net.validators[0].info["node_key"])})
    vlog = net.sup.procs["validator0"].output(2000)
    assert re.search(rf"https://{NEWS}/huge is over the page cap", vlog), vlog[-3000:]
    assert not re.search(rf"{NEWS}/huge through node", vlog), "the site's size is no node's fault"
    # no node is blamed: in the validator's book (what it reports to the router) no node lost
    # reputation or gained a failure, and the router counted no relay failure
    for p, (score, failures) in node_book(net).items():
        old_score, old_failures = book_before.get(p, (1.0, 0))
        assert score >= old_score and failures == old_failures, (p, score, failures)
    usage = relay_usage(net)
    assert all(usage_delta(usage_before, usage, provider(p))[1] == 0 for p in nodes)
    # charged what was relayed, never past the budget; the router's books agree with the client's
    assert 0 < got.done.cost == got.charged <= got.budget


@pytest.mark.skipif(not Path("/proc/self/net/tcp").exists(), reason="reads which node holds a stream from /proc")
def test_a_data_node_killed_mid_stream_is_not_paid_and_the_page_comes_through_another(
    net: Devnet, tmp_path: Path
) -> None:
    """kill -9 of the node relaying /slow while its body is held back: the router cuts the
    stream (a failure of that node, unpaid), the validator fetches the page again through
    the other node, and the crawl finishes with every page."""
    nodes = honest_nodes(net, 2)
    assert len(nodes) >= 2
    usage_before, fails_before = relay_usage(net), node_failures(net)
    # news only: one fetch at a time on a host, so the node relaying /slow relays nothing else
    # of this crawl (robots.txt went through another: a host's next fetch goes elsewhere)
    seeds = [f"https://{NEWS}/slow", *(f"https://{NEWS}{p}" for p in PAGES[NEWS][:2])]
    spec = CrawlSpec(seeds=seeds, max_pages=3, max_depth=0, politeness_ms=0, max_page_bytes=1 * MiB)
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        fut = buy_in_background(pool, net, spec, tmp_path / "ds")
        try:
            x = node_holding_a_stream(net, nodes)
            assert not fut.done()
            net.sup.kill(x.name)
            got = fut.result(timeout=90)
        except BaseException:
            if not fut.done():  # let the client end (its crawl fails) rather than hang the pool
                for p in nodes:
                    net.sup.kill(p.name)
            raise
    cut = provider(x)
    others = {provider(p) for p in nodes} - {cut}
    assert got.done.stop == CrawlStop.PAGE_LIMIT and got.done.records == 3, got.done
    assert got.done.refetched >= 1 and got.done.failed == 0, got.done
    recs = {r["url"]: r for r in records_of(tmp_path / "ds")}
    assert sorted(recs) == sorted(seeds)
    assert recs[f"https://{NEWS}/slow"]["provider"] in others, "fetched again through another node"
    assert cut not in {r["provider"] for r in recs.values()}
    verify_dataset(tmp_path / "ds", trusted_validators={bytes.fromhex(net.validators[0].info["node_key"])})
    vlog = net.sup.procs["validator0"].output(2000)
    assert re.search(rf"{NEWS}/slow through node {cut} failed \(RelayLost: the data node disconnected\)",
                     vlog), vlog[-3000:]
    assert node_failures(net).get(cut, 0) == fails_before.get(cut, 0) + 1
    # the cut stream: a failure of the node, never paid; the pages relayed by the other, paid
    usage = relay_usage(net)
    requests, failures, earned = usage_delta(usage_before, usage, cut)
    assert (requests, failures, earned) == (0, 1, 0), (requests, failures, earned)
    assert sum(usage_delta(usage_before, usage, p)[2] for p in others) > 0
    assert 0 < got.done.cost == got.charged <= got.budget


def test_a_validator_killed_mid_crawl_resumes_from_its_disk(net: Devnet, tmp_path: Path) -> None:
    """kill -9 of the validator once its first records are on disk, then the same validator
    (data dir, config) started again: the router sends the task again, the validator resumes
    from crawl.db, and the client, still in `crawl()`, gets every page exactly once; the
    pages recorded before the kill are the same records, not fetched again."""
    honest_nodes(net, 1)
    old = tasks(net)
    # three hosts in parallel, politeness between a host's pages; /slow (3 s) is still in
    # flight when the first pages are recorded, so the kill cuts it
    seeds = [f"https://{NEWS}/slow", *(f"https://{NEWS}{p}" for p in PAGES[NEWS][:2]),
             *(f"https://{h}{p}" for h in (DOCS, SHOP) for p in PAGES[h])]
    spec = CrawlSpec(seeds=seeds, max_pages=len(seeds), max_depth=0, politeness_ms=700, max_page_bytes=1 * MiB)
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        fut = buy_in_background(pool, net, spec, tmp_path / "ds")
        try:
            task = wait_until("the crawl's first record on the validator's disk", net,
                              lambda: recording(net, old), 30, interval=0.02)
            net.sup.kill("validator0")
            assert not fut.done()
            before = crawl_db(net, "SELECT idx, url, signed FROM records WHERE task = ? ORDER BY idx", task)
            assert 0 < len(before) < len(seeds)
            assert f"https://{NEWS}/slow" not in {url for _, url, _ in before}
            wait_log(net, "router", f"crawl {task} waits for a validator")  # the router holds the task
            net.start_validator(0)  # the same data dir and config
            got = fut.result(timeout=90)
        except BaseException:
            if not net.sup.procs["validator0"].alive():  # let the client's crawl end (bounded)
                net.start_validator(0)
            raise
    wait_log(net, "validator0", f"crawl {task} resumed: {len(before)} records, {len(seeds) - len(before)} pages queued")
    # every page exactly once, in a dataset that verifies
    assert got.done.stop == CrawlStop.PAGE_LIMIT, got.done
    assert (got.done.records, got.done.duplicates, got.done.failed) == (len(seeds), 0, 0), got.done
    report = verify_dataset(tmp_path / "ds", trusted_validators={bytes.fromhex(net.validators[0].info["node_key"])})
    assert report.records == len(seeds)
    recs = records_of(tmp_path / "ds")
    assert sorted(r["url"] for r in recs) == sorted(seeds)
    # the records from before the kill are those the client holds, under the same index (signed
    # once: not fetched again, or a new fetch would carry a new signature or count a duplicate)
    stored = crawl_db(net, "SELECT idx, url, signed FROM records WHERE task = ? ORDER BY idx", task)
    assert stored[: len(before)] == before
    for idx, url, _ in before:
        assert recs[idx]["url"] == url
    pages = dict(crawl_db(net, "SELECT url, state FROM frontier WHERE task = ?", task))
    assert all(pages[u] == "done" for u in seeds), pages
    assert 0 < got.done.cost == got.charged <= got.budget


def test_a_node_refusing_private_targets_fails_them_at_no_cost(net: Devnet, tmp_path: Path) -> None:
    """The only data node runs with `allow_private = false`: the local web's names resolve to
    127.0.0.1 and another name (its `resolve` table) to 10.0.0.1, so it refuses both
    (DESTINATION); the validator gives the pages up as failed, and nothing is charged."""
    for i in range(HONEST):
        net.sup.stop(f"datanode{i}")
    usage_before, fails_before = relay_usage(net), node_failures(net)
    web = net.web
    net.web = {**web, "resolve": {**web["resolve"], "intranet.cocoon.test": ["10.0.0.1", 443]}}
    try:
        strict = net.start_datanode(2, allow_private=False)
    finally:
        net.web = web
    seeds = [f"https://{NEWS}/", "https://intranet.cocoon.test/"]
    spec = CrawlSpec(seeds=seeds, max_pages=2, max_depth=0, politeness_ms=0, max_page_bytes=1 * MiB)
    got = buy(net, spec, tmp_path / "ds")
    assert got.done.stop == CrawlStop.EXHAUSTED, got.done
    assert (got.done.records, got.done.failed) == (0, len(seeds)), got.done
    vlog = net.sup.procs["validator0"].output(2000)
    for host in (NEWS, "intranet.cocoon.test"):
        assert re.search(rf"https://{re.escape(host)}/\S* refused by the node's policy: DESTINATION", vlog), \
            f"{host}\n{vlog[-3000:]}"
        assert re.search(rf"https://{re.escape(host)}/ not fetched: its robots.txt was refused", vlog), \
            "the page itself fails, with no stream"
    nlog = strict.output(200)
    assert re.search(r"to news\.cocoon\.test:443 refused: .*127\.0\.0\.1", nlog), nlog
    assert re.search(r"to intranet\.cocoon\.test:443 refused: .*10\.0\.0\.1", nlog), nlog
    # nothing charged, the node neither paid nor blamed (it kept its policy)
    assert got.done.cost == got.charged == 0
    usage = relay_usage(net)
    assert usage_delta(usage_before, usage, provider(strict)) == (0, 0, 0)
    assert node_failures(net).get(provider(strict), 0) == fails_before.get(provider(strict), 0)

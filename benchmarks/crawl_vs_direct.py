"""Pages per second crawled through data nodes (provenance mode) vs fetching the same pages directly with httpx.

Network side: a real devnet (`offchain.devnet`, as tests/e2e/test_data_path.py starts it):
localnet, Root, a router, one validator (`crawl_concurrency` = `--concurrency`) and
`--datanodes` (3) data nodes, all separate processes, and the local web
(`offchain.devnet._web`) serving `--pages / 4` sites (`site00.cocoon.test`, ...; each has
an index and three content pages, `/private/` being disallowed by its robots.txt). One
`CocoonClient` in this process buys `CrawlSpec(seeds = every site's /, max_depth 1,
max_pages = --pages, politeness_ms 0)`: the validator fetches each host's robots.txt and
each page as the TLS client over a fresh stream through a data node the router picks
(verification against the web's CA), extracts the text with trafilatura and the links with
lxml, signs a provenance record, persists it, sends it through the router; the client checks
each signature, writes the Parquet dataset and checks the manifest signature. The timed
part is `client.crawl(spec, dir, anchor=False)`; the anchor (`anchor_manifest`: the dataset
verified again, one AnchorDataset transaction on localnet), which `client.crawl` does by
default, is timed right after it, and `crawl_e2e` is the sum (what `client.crawl(spec, dir)`
costs).

Baseline, in this same process and devnet run (the devnet stays up, so both sides share the
machine the same way): the URLs the crawl recorded plus each host's robots.txt (the same
GETs the crawl makes), fetched with one `httpx.AsyncClient` through the web's
`ResolvingTransport` (HTTPS, SNI and certificate verification against the same CA), at
the same concurrency (a pool of `--concurrency` tasks over the list). Fairness:

- a new TCP + TLS connection per page, as the crawl makes one stream per fetch: keep-alive
  is off (`max_keepalive_connections=0`) and requests say `Connection: close`, as the
  validator's GET does. `direct_fetch` is the headline baseline.
- `direct_fetch_extract` also runs the crawler's own extraction (`_crawl.extract`:
  trafilatura main text + lxml links) per page in a thread, as the validator does, and
  applies robots.txt (`Robots`), i.e. a direct scraper that produces the same text.
- `direct_keepalive` (pooled connections, no extraction) is reported for information only.

Relay overhead: the router meters every byte it relays both ways (its log line
`crawl N ended (...): P page fee(s), B bytes relayed`); overhead per page =
(B - sum of the records' body bytes) / records: TLS handshakes and records, HTTP headers and
the robots.txt fetches, per page delivered.

CPU: each process's CPU seconds (/proc/<pid>/stat, all its threads) during every crawl and
direct run are recorded (ms per page); the machine may have 2 cores for ~8 processes.
`--profile` then runs two more crawls with the agents started through
`benchmarks/_profiled_agent.py` (switched on and off by signals around the crawl): one with
phase timers wrapped around the validator's steps (calls, wall time, the thread's CPU), one
with cProfile on in the validator, the router, the data nodes and this process; the tables
and the JSON (`profile`) hold both.

Both sides take the best of `--repeats` runs (alternating), after a full warm-up crawl
(untimed: it gives the URL list). Prints tables and writes
benchmarks/results/crawl_vs_direct.json (`ratios.crawl_vs_direct`: crawl end-to-end
pages/s over `direct_fetch` pages/s).

    .venv/bin/python benchmarks/crawl_vs_direct.py [--pages 200] [--concurrency 8] [--repeats 5] [--profile] [--quick]
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import io
import json
import math
import os
import pstats
import re
import resource
import signal
import ssl
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402
import pyarrow.dataset as pads  # noqa: E402

from benchmarks._common import devnet_client, devnet_network, machine, print_table, write_result  # noqa: E402
from offchain.client import CocoonClient  # noqa: E402
from offchain.dataset._anchor import anchor_manifest  # noqa: E402
from offchain.devnet import Devnet, DevnetConfig  # noqa: E402
from offchain.devnet._web import Resolver, ResolvingTransport  # noqa: E402
from offchain.protocol.wire import CrawlSpec  # noqa: E402
from offchain.validator._crawl import Robots, extract  # noqa: E402

GOAL = 0.5
PAGES_PER_HOST = 4  # "/" and three content pages (robots.txt disallows /private/; nothing else is linked)
MAX_HOSTS = 64  # CrawlSpec.seeds holds at most 64
USER_AGENT = "cocoon-validator/1"  # what the validator's GET sends
_ENDED = re.compile(r"crawl (\d+) ended \((\w+)\): (\d+) page fee\(s\), (\d+) bytes relayed, cost (\d+)")
_TICK = os.sysconf("SC_CLK_TCK")
_IDLE = {"<method 'poll' of 'select.epoll' objects>", "<method 'acquire' of '_thread.lock' objects>"}


def host_names(n: int) -> list[str]:
    return [f"site{i:02d}.cocoon.test" for i in range(n)]


class BenchDevnet(Devnet):
    """The devnet with a local web of `hosts`, and (with `profile_dir`) its agents started
    through `benchmarks._profiled_agent` (cProfile switched by SIGUSR1 / SIGUSR2)."""

    def __init__(self, workdir: Path, config: DevnetConfig, *, hosts: list[str], profile_dir: Path | None) -> None:
        super().__init__(workdir, config)
        self.hosts = hosts
        self.profile_dir = profile_dir

    def start_web(self, *, slow_delay: float = 1.0, huge_size: int | None = None) -> dict[str, Any]:
        ready = self.workdir / "web.ready.json"
        argv = [
            "-m",
            "offchain.devnet._web",
            "--ready-file",
            str(ready),
            "--dir",
            str(self.workdir / "web"),
            "--slow-delay",
            str(slow_delay),
            "--hosts",
            ",".join(self.hosts),
        ]
        if huge_size is not None:
            argv += ["--huge-size", str(huge_size)]
        p = self.sup.start("web", argv, ready_file=ready)
        self.web = self.sup.wait_ready(p, timeout=30)
        return self.web

    def _agent(
        self,
        name: str,
        command: list[str],
        values: dict[str, Any],
        wallet: int,
        timeout: float,
        *,
        module: str = "offchain.cli",
        env: dict[str, str] | None = None,
        tables: dict[str, dict[str, Any]] | None = None,
    ) -> Any:
        if self.profile_dir is not None and module == "offchain.cli":
            module = "benchmarks._profiled_agent"
            env = {**(env or {}), "COCOON_BENCH_PROFILE_DIR": str(self.profile_dir), "COCOON_BENCH_PROFILE_NAME": name}
        return super()._agent(name, command, values, wallet, timeout, module=module, env=env, tables=tables)

    def profiled(self) -> dict[str, int]:
        """name -> pid of the agents that take the profiling signals."""
        return {n: p.pid for n, p in self.sup.procs.items() if n == "router" or n.startswith(("validator", "datanode"))}


# ---- CPU accounting ---------------------------------------------------------------------------
def _proc_cpu(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (FileNotFoundError, IndexError):
        return 0.0
    return (int(fields[11]) + int(fields[12])) / _TICK  # utime, stime (all threads)


def cpu_snapshot(devnet: Devnet) -> dict[str, float]:
    snap = {name: _proc_cpu(p.pid) for name, p in devnet.sup.procs.items()}
    ru = resource.getrusage(resource.RUSAGE_SELF)
    snap["bench (client / httpx)"] = ru.ru_utime + ru.ru_stime
    return snap


def cpu_delta(a: dict[str, float], b: dict[str, float]) -> dict[str, float]:
    return {k: round(b[k] - a.get(k, 0.0), 3) for k in b}


# ---- the direct side -------------------------------------------------------------------------
async def direct_once(
    robots_urls: list[str],
    page_urls: list[str],
    *,
    resolver: Resolver,
    ca_file: str,
    concurrency: int,
    keepalive: bool,
    extract_text: bool,
    devnet: Devnet,
) -> dict[str, Any]:
    ctx = ssl.create_default_context(cafile=ca_file)  # verification on, hostname checked: like the validator's
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency if keepalive else 0)
    headers = {"User-Agent": USER_AGENT, **({} if keepalive else {"Connection": "close"})}
    todo = [*robots_urls, *page_urls]
    robots: dict[str, Robots] = {}
    counts = {"pages": 0, "bytes": 0, "robots_bytes": 0, "text_chars": 0, "links": 0, "disallowed": 0}
    it = iter(todo)
    async with httpx.AsyncClient(
        transport=ResolvingTransport(resolver, verify=ctx, limits=limits),
        headers=headers,
        timeout=30.0,
        follow_redirects=False,
    ) as http:

        async def worker() -> None:
            for url in it:
                host = url.split("/")[2]
                if extract_text and not url.endswith("/robots.txt"):
                    rules = robots.get(host)
                    if rules is not None and not rules.allowed(url):
                        counts["disallowed"] += 1
                        continue
                r = await http.get(url)
                body = r.content
                if r.status_code != 200:
                    raise RuntimeError(f"direct GET {url}: {r.status_code}")
                if url.endswith("/robots.txt"):
                    robots[host] = Robots.from_response(r.status_code, body)
                    counts["robots_bytes"] += len(body)
                    continue
                counts["pages"] += 1
                counts["bytes"] += len(body)
                if extract_text:
                    text, links = await asyncio.to_thread(extract, body, r.headers.get("content-type", ""), url)
                    counts["text_chars"] += len(text)
                    counts["links"] += len(links)

        cpu0 = cpu_snapshot(devnet)
        t0 = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        dt = time.perf_counter() - t0
        cpu1 = cpu_snapshot(devnet)
    cpu = cpu_delta(cpu0, cpu1)
    return {
        **counts,
        "fetches": len(todo),
        "seconds": dt,
        "pages_per_s": counts["pages"] / dt,
        "cpu_s": {k: v for k, v in cpu.items() if k in ("web", "bench (client / httpx)")},
    }


# ---- the crawl -------------------------------------------------------------------------------
def router_ended(devnet: Devnet, since: int) -> dict[str, int] | None:
    """The router's `crawl N ended` line logged after byte offset `since` of its log."""
    log = devnet.sup.procs["router"].log
    with open(log, "rb") as f:
        f.seek(since)
        text = f.read().decode(errors="replace")
    found = _ENDED.findall(text)
    if not found:
        return None
    task, stop, fees, relayed, cost = found[-1]
    return {"task": int(task), "stop": stop, "page_fees": int(fees), "bytes_relayed": int(relayed), "cost": int(cost)}


async def crawl_once(
    client: CocoonClient,
    spec: CrawlSpec,
    out: Path,
    *,
    concurrency: int,
    devnet: Devnet,
    profile: cProfile.Profile | None = None,
) -> dict[str, Any]:
    since = devnet.sup.procs["router"].log.stat().st_size
    await client.connect()  # the router's prices, which crawl_budget needs
    budget = client.crawl_budget(spec, concurrency)
    cpu0 = cpu_snapshot(devnet)
    if profile is not None:
        profile.enable()
    t0 = time.perf_counter()
    await client.crawl(spec, out, max_cost=budget, anchor=False)
    t1 = time.perf_counter()
    cpu1 = cpu_snapshot(devnet)
    await anchor_manifest(client.wallet, client.config.root, out)
    t2 = time.perf_counter()
    if profile is not None:
        profile.disable()
    done = client.last_crawl
    assert done is not None
    table = pads.dataset(out, format="parquet", exclude_invalid_files=True).to_table(
        columns=["url", "byte_count", "provider"]
    )
    urls = table.column("url").to_pylist()
    body_bytes = sum(table.column("byte_count").to_pylist())
    ended = router_ended(devnet, since)
    pages = done.records
    res: dict[str, Any] = {
        "records": pages,
        "stop": done.stop.name,
        "failed": done.failed,
        "duplicates": done.duplicates,
        "refetched": done.refetched,
        "cost_nanoton": done.cost,
        "seconds": t1 - t0,
        "anchor_seconds": t2 - t1,
        "pages_per_s": pages / (t1 - t0),
        "pages_per_s_e2e": pages / (t2 - t0),
        "body_bytes": body_bytes,
        "by_provider": dict(Counter(table.column("provider").to_pylist())),
        "cpu_s": cpu_delta(cpu0, cpu1),
        "urls": urls,
    }
    if ended is not None:
        res["router"] = ended
        res["bytes_relayed"] = ended["bytes_relayed"]
        res["relay_overhead_bytes_per_page"] = (ended["bytes_relayed"] - body_bytes) / max(1, pages)
    return res


def _signal_all(pids: dict[str, int], sig: int) -> None:
    for pid in pids.values():
        os.kill(pid, sig)


def top_functions(path: Path | pstats.Stats, n: int = 15, by: str = "tottime_s") -> list[dict[str, Any]]:
    st = path if isinstance(path, pstats.Stats) else pstats.Stats(str(path), stream=io.StringIO())
    rows = []
    for (file, line, func), (_cc, nc, tt, ct, _callers) in st.stats.items():  # type: ignore[attr-defined]
        if func in _IDLE:
            continue
        short = file.split("site-packages/")[-1].split(str(ROOT) + "/")[-1]
        rows.append(
            {"function": f"{short}:{line}({func})", "ncalls": nc, "tottime_s": round(tt, 4), "cumtime_s": round(ct, 4)}
        )
    rows.sort(key=lambda r: -r[by])
    return rows[:n]


def total_time(path: Path | pstats.Stats) -> float:
    """Seconds profiled, the idle waits (epoll, thread locks) left out."""
    st = path if isinstance(path, pstats.Stats) else pstats.Stats(str(path), stream=io.StringIO())
    idle = sum(v[2] for k, v in st.stats.items() if k[2] in _IDLE)  # type: ignore[attr-defined]
    return float(st.total_tt) - idle  # type: ignore[attr-defined]


async def instrumented_crawl(
    client: CocoonClient,
    spec: CrawlSpec,
    out: Path,
    *,
    args: argparse.Namespace,
    devnet: BenchDevnet,
    profile_dir: Path,
    cprofile: bool,
) -> dict[str, Any]:
    """One crawl with the agents' measuring window open (see `benchmarks/_profiled_agent.py`):
    phase timers in the validator, and with `cprofile` cProfile in every agent and here."""
    flag = profile_dir / "cprofile.on"
    profile_dir.mkdir(parents=True, exist_ok=True)
    for old in [*profile_dir.glob("*.prof"), *profile_dir.glob("*.timing.json")]:
        old.unlink()
    if cprofile:
        flag.touch()
    pids = devnet.profiled()
    _signal_all(pids, signal.SIGUSR1)
    await asyncio.sleep(0.5)  # the handlers run on the agents' next loop turn
    flag.unlink(missing_ok=True)
    prof = cProfile.Profile() if cprofile else None
    c = await crawl_once(client, spec, out, concurrency=args.concurrency, devnet=devnet, profile=prof)
    c.pop("urls")
    _signal_all(pids, signal.SIGUSR2)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and not all((profile_dir / f"{n}.timing.json").exists() for n in pids):
        await asyncio.sleep(0.1)
    res: dict[str, Any] = {"crawl": c, "processes": {}}
    for name in pids:
        entry: dict[str, Any] = {}
        timing = profile_dir / f"{name}.timing.json"
        if timing.exists():
            t = json.loads(timing.read_text())
            if t["timers"]:
                entry["timers"] = t["timers"]
        path = profile_dir / f"{name}.prof"
        if path.exists():
            entry.update(
                profiled_s=total_time(path),
                top_tottime=top_functions(path),
                top_cumtime=top_functions(path, 10, by="cumtime_s"),
            )
        if entry:
            res["processes"][name] = entry
    if prof is not None:
        st = pstats.Stats(prof, stream=io.StringIO())
        res["processes"]["bench (client)"] = {
            "profiled_s": total_time(st),
            "top_tottime": top_functions(st),
            "top_cumtime": top_functions(st, 10, by="cumtime_s"),
        }
        if args.keep_profiles:
            keep = Path(args.keep_profiles)
            keep.mkdir(parents=True, exist_ok=True)
            for p in profile_dir.glob("*.prof"):
                (keep / p.name).write_bytes(p.read_bytes())
            st.dump_stats(str(keep / "client.prof"))
    return res


# ---- the run ---------------------------------------------------------------------------------
def run(args: argparse.Namespace) -> dict[str, Any]:
    hosts = host_names(args.hosts)
    spec = CrawlSpec(
        seeds=[f"https://{h}/" for h in hosts],
        max_pages=args.pages,
        max_depth=1,
        politeness_ms=0,
        max_page_bytes=1024 * 1024,
    )
    warm_spec = CrawlSpec(
        seeds=[f"https://{hosts[0]}/"], max_pages=2, max_depth=1, politeness_ms=0, max_page_bytes=1024 * 1024
    )
    with tempfile.TemporaryDirectory(prefix="crawl-vs-direct-") as tmp:
        workdir = Path(tmp)
        profile_dir = workdir / "profiles" if args.profile else None
        devnet = BenchDevnet(
            workdir / "devnet",
            DevnetConfig(
                workers=0,
                models=["echo"],
                gateway=False,
                redeem_interval=600.0,
                redeem_threshold="1000",
                validators=1,
                datanodes=args.datanodes,
                validator_extra={
                    "probe_interval": 3600,
                    "deposit": "0.5",
                    "fetch_timeout": 30,
                    "crawl_concurrency": args.concurrency,
                },
            ),
            hosts=hosts,
            profile_dir=profile_dir,
        )
        try:
            print(f"devnet: 1 validator, {args.datanodes} data nodes, {len(hosts)} sites ...", file=sys.stderr)
            t = time.perf_counter()
            devnet.start()
            print(f"  up in {time.perf_counter() - t:.0f} s", file=sys.stderr)
            resolver = Resolver.from_dict(devnet.web["resolve"])
            ca_file = devnet.web["ca_file"]

            async def main() -> dict[str, Any]:
                net = await devnet_network(devnet)
                try:
                    async with devnet_client(devnet, net, workdir / "client.db") as client:
                        await client.open_channel(deposit=10**9)
                        n = iter(range(10**6))
                        await crawl_once(
                            client, warm_spec, workdir / f"ds{next(n)}", concurrency=args.concurrency, devnet=devnet
                        )
                        print("warm-up crawl (full spec, untimed) ...", file=sys.stderr)
                        warm = await crawl_once(
                            client, spec, workdir / f"ds{next(n)}", concurrency=args.concurrency, devnet=devnet
                        )
                        page_urls = warm["urls"]
                        robots_urls = [f"https://{h}/robots.txt" for h in hosts]
                        direct_kw = {
                            "resolver": resolver,
                            "ca_file": ca_file,
                            "concurrency": args.concurrency,
                            "devnet": devnet,
                        }
                        await direct_once(robots_urls, page_urls[:8], keepalive=False, extract_text=True, **direct_kw)
                        runs: dict[str, list[dict[str, Any]]] = {
                            "direct_fetch": [],
                            "direct_fetch_extract": [],
                            "direct_keepalive": [],
                            "crawl": [],
                        }
                        for r in range(args.repeats):
                            print(f"round {r + 1}/{args.repeats}: direct x3, crawl ...", file=sys.stderr)
                            runs["direct_fetch"].append(
                                await direct_once(
                                    robots_urls, page_urls, keepalive=False, extract_text=False, **direct_kw
                                )
                            )
                            runs["direct_fetch_extract"].append(
                                await direct_once(
                                    robots_urls, page_urls, keepalive=False, extract_text=True, **direct_kw
                                )
                            )
                            runs["direct_keepalive"].append(
                                await direct_once(
                                    robots_urls, page_urls, keepalive=True, extract_text=False, **direct_kw
                                )
                            )
                            c = await crawl_once(
                                client, spec, workdir / f"ds{next(n)}", concurrency=args.concurrency, devnet=devnet
                            )
                            c.pop("urls")
                            runs["crawl"].append(c)
                        profile: dict[str, Any] = {}
                        if profile_dir is not None:
                            print("timed crawl (phase timers in the validator) ...", file=sys.stderr)
                            profile["timers"] = await instrumented_crawl(
                                client,
                                spec,
                                workdir / f"ds{next(n)}",
                                args=args,
                                devnet=devnet,
                                profile_dir=profile_dir,
                                cprofile=False,
                            )
                            print(
                                "profiled crawl (cProfile in validator, router, data nodes, client) ...",
                                file=sys.stderr,
                            )
                            profile["cprofile"] = await instrumented_crawl(
                                client,
                                spec,
                                workdir / f"ds{next(n)}",
                                args=args,
                                devnet=devnet,
                                profile_dir=profile_dir,
                                cprofile=True,
                            )
                        return {
                            "runs": runs,
                            "profile": profile,
                            "warm_records": warm["records"],
                            "fetches_per_crawl": len(page_urls) + len(robots_urls),
                        }
                finally:
                    await net.close()

            return asyncio.run(main())
        finally:
            devnet.close()


def _best(runs: list[dict[str, Any]], key: str = "pages_per_s") -> dict[str, Any]:
    return max(runs, key=lambda r: r[key])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pages", type=int, default=200, help=f"pages per crawl ({PAGES_PER_HOST} per site, <= 256)")
    ap.add_argument("--concurrency", type=int, default=8, help="fetches at once, both sides (crawl_concurrency)")
    ap.add_argument("--datanodes", type=int, default=3)
    ap.add_argument("--repeats", type=int, default=5, help="runs per side (the best counts)")
    ap.add_argument("--profile", action="store_true", help="one more crawl under cProfile; top functions in the JSON")
    ap.add_argument("--keep-profiles", default="", help="with --profile: copy the .prof files into this folder")
    ap.add_argument("--quick", action="store_true", help="40 pages, 1 repeat")
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "crawl_vs_direct.json"))
    args = ap.parse_args()
    if args.quick:
        args.pages, args.repeats = min(args.pages, 40), 1
    args.hosts = math.ceil(args.pages / PAGES_PER_HOST)
    if args.hosts > MAX_HOSTS:
        ap.error(f"--pages at most {MAX_HOSTS * PAGES_PER_HOST} (a spec has at most {MAX_HOSTS} seeds)")
    args.pages = args.hosts * PAGES_PER_HOST  # every site crawled whole: the same page set every run

    load_before = os.getloadavg()
    if load_before[0] > 0.5:
        print(
            f"warning: load average {load_before[0]:.2f} before the run: other programs share the machine",
            file=sys.stderr,
        )
    res = run(args)
    runs = res["runs"]
    crawl = _best(runs["crawl"], "pages_per_s_e2e")
    crawl_noanchor = _best(runs["crawl"], "pages_per_s")
    direct = {k: _best(runs[k]) for k in ("direct_fetch", "direct_fetch_extract", "direct_keepalive")}
    ratios = {
        "crawl_vs_direct": crawl["pages_per_s_e2e"] / direct["direct_fetch"]["pages_per_s"],
        "crawl_vs_direct_extract": crawl["pages_per_s_e2e"] / direct["direct_fetch_extract"]["pages_per_s"],
        "crawl_no_anchor_vs_direct": crawl_noanchor["pages_per_s"] / direct["direct_fetch"]["pages_per_s"],
        "crawl_no_anchor_vs_direct_extract": crawl_noanchor["pages_per_s"]
        / direct["direct_fetch_extract"]["pages_per_s"],
        "crawl_vs_direct_keepalive": crawl["pages_per_s_e2e"] / direct["direct_keepalive"]["pages_per_s"],
    }
    pages = crawl["records"]

    def fmt_runs(rs: list[dict[str, Any]], key: str = "pages_per_s") -> str:
        return " ".join(f"{r[key]:,.1f}" for r in rs)

    c = args.concurrency
    rows = [
        ("run", "pages/s (best)", "runs", "crawl e2e / this"),
        (
            f"direct httpx, new TLS connection per page, {c} at once",
            f"{direct['direct_fetch']['pages_per_s']:,.1f}",
            fmt_runs(runs["direct_fetch"]),
            f"{ratios['crawl_vs_direct']:.2f}",
        ),
        (
            "direct httpx, new connection + trafilatura/lxml extract",
            f"{direct['direct_fetch_extract']['pages_per_s']:,.1f}",
            fmt_runs(runs["direct_fetch_extract"]),
            f"{ratios['crawl_vs_direct_extract']:.2f}",
        ),
        (
            "direct httpx, keep-alive pool (info)",
            f"{direct['direct_keepalive']['pages_per_s']:,.1f}",
            fmt_runs(runs["direct_keepalive"]),
            f"{ratios['crawl_vs_direct_keepalive']:.2f}",
        ),
        (
            f"crawl via {args.datanodes} data nodes, client.crawl(anchor=False)",
            f"{crawl_noanchor['pages_per_s']:,.1f}",
            fmt_runs(runs["crawl"]),
            f"{crawl['pages_per_s_e2e'] / crawl_noanchor['pages_per_s']:.2f}",
        ),
        (
            "crawl e2e: + anchor (verify + AnchorDataset tx)",
            f"{crawl['pages_per_s_e2e']:,.1f}",
            fmt_runs(runs["crawl"], "pages_per_s_e2e"),
            "1.00",
        ),
    ]
    print_table(
        rows,
        title=f"{pages} pages on {args.hosts} sites (+{args.hosts} robots.txt), concurrency {c}, "
        f"best of {args.repeats}",
        width=160,
    )

    overhead = [r.get("relay_overhead_bytes_per_page") for r in runs["crawl"] if "bytes_relayed" in r]
    relay = {}
    if overhead:
        fetches = res["fetches_per_crawl"]
        robots_bytes = direct["direct_fetch"]["robots_bytes"]  # the same bodies the crawl fetched
        relay = {
            "bytes_relayed": crawl["bytes_relayed"],
            "fetches": fetches,
            "overhead_bytes_per_fetch": (crawl["bytes_relayed"] - crawl["body_bytes"] - robots_bytes) / fetches,
            "bytes_relayed_per_page": crawl["bytes_relayed"] / pages,
            "body_bytes_per_page": crawl["body_bytes"] / pages,
            "overhead_bytes_per_page": crawl["relay_overhead_bytes_per_page"],
            "overhead_vs_body": crawl["relay_overhead_bytes_per_page"] / (crawl["body_bytes"] / pages),
            "overhead_bytes_per_page_runs": overhead,
            "cost_nanoton_per_page": crawl["cost_nanoton"] / pages,
        }
        print_table(
            [
                ("relay bytes per page (router-metered, both ways)", "bytes"),
                ("relayed", f"{relay['bytes_relayed_per_page']:,.0f}"),
                ("body (records' byte_count)", f"{relay['body_bytes_per_page']:,.0f}"),
                ("overhead (TLS, HTTP headers, robots.txt)", f"{relay['overhead_bytes_per_page']:,.0f}"),
                ("overhead / body", f"{relay['overhead_vs_body']:.2f}"),
                (
                    f"overhead per fetch ({fetches} fetches: pages + robots.txt, bodies out)",
                    f"{relay['overhead_bytes_per_fetch']:,.0f}",
                ),
            ],
            title="relay byte overhead",
            width=160,
        )

    cpu_rows = [("process", "crawl: CPU s", "ms / page", "of wall", "direct: CPU s", "ms / page")]
    dcpu = direct["direct_fetch"]["cpu_s"]
    for name, s in sorted(crawl["cpu_s"].items(), key=lambda kv: -kv[1]):
        d = dcpu.get(name)
        cpu_rows.append(
            (
                name,
                f"{s:.2f}",
                f"{1000 * s / pages:.1f}",
                f"{s / crawl['seconds']:.0%}",
                "" if d is None else f"{d:.2f}",
                "" if d is None else f"{1000 * d / pages:.1f}",
            )
        )
    tot = sum(crawl["cpu_s"].values())
    dtot = sum(dcpu.values())
    cpu_rows.append(
        (
            "all",
            f"{tot:.2f}",
            f"{1000 * tot / pages:.1f}",
            f"{tot / crawl['seconds']:.0%}",
            f"{dtot:.2f}",
            f"{1000 * dtot / pages:.1f}",
        )
    )
    print_table(
        cpu_rows,
        title=f"CPU per process (best crawl {crawl['seconds']:.2f} s; direct_fetch "
        f"{direct['direct_fetch']['seconds']:.2f} s; {os.cpu_count()} CPUs)",
        width=160,
    )

    prof = res["profile"]
    if prof:
        print(
            "\ncProfile figures are wall time with idle waits left out, in a crawl the profiler slows down "
            "(3.12's cProfile sees every thread): relative only; the phase timers ran in a crawl of their own."
        )
        tc = prof["timers"]["crawl"]
        for name, p in prof["timers"]["processes"].items():
            n_pages = tc["records"]
            trows = [("wrapped function", "calls", "wall s", "wall ms / call", "thread CPU s", "CPU ms / page")]
            for k, v in sorted(p["timers"].items(), key=lambda kv: -kv[1]["wall_s"]):
                cpu = v["cpu_s"]
                per_call = 1000 * v["wall_s"] / max(1, v["calls"])
                trows.append(
                    (
                        k,
                        f"{v['calls']:,}",
                        f"{v['wall_s']:.3f}",
                        f"{per_call:.2f}",
                        f"{cpu:.3f}" if cpu else "",
                        f"{1000 * cpu / n_pages:.2f}" if cpu else "",
                    )
                )
            print_table(
                trows,
                title=f"{name}: phase timers, {tc['seconds']:.2f} s crawl of {n_pages} pages, "
                f"{tc['cpu_s'].get(name, 0):.2f} s process CPU",
                width=200,
            )
            print(
                "  (coroutines: wall from call to return, waits included, concurrent calls overlap; "
                "plain functions: wall and the calling thread's CPU)"
            )
        pc = prof["cprofile"]["crawl"]
        for name, p in prof["cprofile"]["processes"].items():
            if "top_tottime" not in p:
                continue
            print_table(
                [
                    ("function", "ncalls", "tottime s", "cumtime s"),
                    *(
                        (t["function"][-90:], f"{t['ncalls']:,}", f"{t['tottime_s']:.3f}", f"{t['cumtime_s']:.3f}")
                        for t in p["top_tottime"][:12]
                    ),
                ],
                title=f"{name}: cProfile, top 12 by own time ({p['profiled_s']:.2f} s busy, "
                f"{pc['seconds']:.2f} s crawl)",
                width=200,
            )

    r = ratios["crawl_vs_direct"]
    print(
        f"\ncrawl_vs_direct = {r:.2f} (goal >= {GOAL:.2f}: {'met' if r >= GOAL else 'MISSED'}); "
        f"with extraction on the direct side {ratios['crawl_vs_direct_extract']:.2f}"
    )

    doc = {
        "benchmark": "crawl_vs_direct",
        "workload": (
            f"CrawlSpec(seeds = {args.hosts} local sites' /, max_depth 1, max_pages {args.pages}, politeness_ms 0, "
            f"max_page_bytes 1 MiB): {pages} pages + {args.hosts} robots.txt; concurrency {c} "
            f"(validator crawl_concurrency); 1 validator, {args.datanodes} data nodes; best of {args.repeats} runs "
            "per side, alternating, after a full untimed warm-up crawl"
        ),
        "fairness": (
            "both sides in one devnet run on the same machine; direct: the same URLs (robots.txt per host + the "
            "recorded pages) with one httpx.AsyncClient through the local web's ResolvingTransport, HTTPS verified "
            "against the same CA, a pool of the same concurrency, a new TCP+TLS connection per page "
            "(max_keepalive_connections=0, Connection: close, as the validator's GET); direct_fetch_extract also "
            "runs the crawler's extract() (trafilatura + lxml) per page in a thread and applies robots.txt; crawl: "
            "client.crawl end to end (relay through data nodes, TLS in the validator, extraction, signing, "
            "persistence, records through the router, client-side signature checks and the Parquet dataset), the "
            "anchor (verify + AnchorDataset on localnet) timed separately and added for the e2e figure"
        ),
        "pages": pages,
        "hosts": args.hosts,
        "concurrency": c,
        "datanodes": args.datanodes,
        "fetches_per_crawl": res["fetches_per_crawl"],
        "machine": machine(),
        "loadavg_before": load_before,
        "loadavg_after": os.getloadavg(),
        "runs": runs,
        "relay": relay,
        "cpu_ms_per_page": {
            "crawl_validator": 1000 * crawl["cpu_s"].get("validator0", 0.0) / pages,
            "crawl_all_processes": 1000 * tot / pages,
            "direct_fetch_all_processes": 1000 * dtot / pages,
        },
        "profile": prof,
        "goal": {"crawl_vs_direct": GOAL},
        "ratios": ratios,
    }
    write_result(args.out, doc)
    return 0


if __name__ == "__main__":
    sys.exit(main())

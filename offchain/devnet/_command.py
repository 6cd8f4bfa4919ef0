"""`cocoon devnet`: the whole loop on this machine, as real processes, with a person watching.

    public web data -> verified dataset -> confidential compute -> TON payment -> reward split

One line per stage (a spinner while it runs, its time when done), the tables at the end, the
logs of every process in `<dir>/logs/`. Ctrl-C (or SIGTERM) at any point stops every child
process before the command exits. `--serve` keeps the network up afterwards with the
OpenAI-compatible gateway; `--keep` continues the previous run's chain and agents' state.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import signal
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from offchain.devnet._demo import (
    Bought,
    DemoConfig,
    MoneyCheck,
    buy_package,
    demo_devnet_config,
    mark_chain,
    money_check,
    wait_settled,
    write_client_profile,
)
from offchain.devnet._network import Devnet

__all__ = ["add_devnet_command"]

TON = 10**9
QUERY = "corals on the sea floor"


def ton(n: int) -> str:
    return f"{n / TON:,.9f}".rstrip("0").rstrip(".") if n else "0"


class Stages:
    """One line per stage: a spinner with the stage's latest news while it runs, then a tick
    and its duration (or a cross). `update(text)` is the news callback handed to the stage."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self.started = time.monotonic()
        self.update: Callable[[str], None] = lambda _: None

    @contextlib.contextmanager
    def stage(self, title: str) -> Iterator[None]:
        t0 = time.monotonic()
        with self.console.status(title) as status:
            self.update = lambda news: status.update(f"{title} [dim]· {news}[/]")
            try:
                yield
            except BaseException:
                self.console.print(f"[red]✗[/] {title} [dim]({time.monotonic() - t0:.1f}s)[/]")
                raise
            finally:
                self.update = lambda _: None
        self.console.print(f"[green]✓[/] {title} [dim]({time.monotonic() - t0:.1f}s)[/]")


def _interrupt_on_sigterm() -> None:
    """SIGTERM ends the command the way Ctrl-C does: through `finally`, which stops the children."""

    def raise_interrupt(*_: Any) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, raise_interrupt)


def run_demo(args: argparse.Namespace, console: Console) -> int:
    workdir = Path(args.dir)
    if workdir.exists() and not args.keep:
        shutil.rmtree(workdir)
    demo = DemoConfig(workers=args.workers, datanodes=args.datanodes, validators=args.validators,
                      threshold=min(args.threshold, args.validators), max_pages=args.pages)
    home = Path(args.home) if args.home else workdir.parent
    config = demo_devnet_config(demo, api_key=args.api_key, home=str(home),
                                localnet_state=str(workdir / "localnet.state") if args.keep else None)
    stages = Stages(console)
    net = Devnet(workdir, config, progress=lambda s: stages.update(s))
    try:
        n_agents = 1 + demo.workers + demo.validators + demo.datanodes
        with stages.stage(f"network: localnet, web, Root + RewardPool, {n_agents} agents"):
            net.start()
        with stages.stage(f"package: crawl {len(demo.hosts)} sites through {demo.datanodes} data nodes, "
                          f"embed on {demo.workers} workers, index, anchor"):
            marks = mark_chain(net)
            package = _package(net, demo, workdir, stages)
        with stages.stage(f"epochs: {demo.validators} validators settle (quorum {demo.threshold}), "
                          "providers claim"):
            wait_settled(net, demo, progress=stages.update)
        check = money_check(net, package, marks)
        _print_summary(Console(), net, package, check, time.monotonic() - stages.started)
        if args.summary_json:
            _write_summary(Path(args.summary_json), package, check)
        if not check.balanced:
            console.print("[red]error: the books do not balance (see the table above)[/]")
            return 1
        write_client_profile(net, workdir / "client.json")
        if args.serve:
            return _serve(net, console, args)
        return 0
    finally:
        with console.status("stopping every process"):
            net.close()


def _package(net: Devnet, demo: DemoConfig, workdir: Path, stages: Stages) -> Bought:
    import asyncio

    out = workdir / "package"
    if out.exists():  # --keep: the last run's package stays
        out = workdir / time.strftime("package-%Y%m%d-%H%M%S")
    return asyncio.run(buy_package(net, demo, out, query=QUERY, progress=stages.update))


def _print_summary(out: Console, net: Devnet, pkg: Bought, m: MoneyCheck, elapsed: float) -> None:
    paid = Table(title="what the client paid (one channel)", title_justify="left")
    for c in ("", "units", "TON"):
        paid.add_column(c, justify="right" if c else "left")
    paid.add_row("data: crawl + relay", f"{pkg.pages} pages", ton(pkg.charged_data))
    paid.add_row(f"compute: MiniLM embeddings (sealed) on {pkg.workers} workers", f"{pkg.embedded} pages",
                 ton(pkg.charged_compute))
    paid.add_row("[b]total[/]", "", f"[b]{ton(pkg.charged_compute + pkg.charged_data)}[/]")
    out.print(paid)

    earned = Table(title=f"what each provider earned ({m.epochs} epoch(s), split tables in basis points)",
                   title_justify="left")
    for c in ("role", "split (compute / data)", "provider", "process", "earned TON", "claimed TON"):
        earned.add_column(c, justify="right" if "TON" in c else "left")
    for e in m.earners:
        cs, ds = m.splits["compute"].get(e.role, 0), m.splits["data"].get(e.role, 0)
        earned.add_row(e.role, f"{cs} / {ds}", e.provider[:14] + "…", e.name, ton(e.earned), ton(e.claimed))
    earned.add_row("protocol", f"{m.splits['compute']['protocol']} / {m.splits['data']['protocol']}", "treasury",
                   "", ton(m.protocol), ton(m.protocol))
    out.print(earned)

    books = Table(title="the books, to the nanoTON", title_justify="left")
    books.add_column("")
    books.add_column("nanoTON", justify="right")
    carries = sum(m.carries.values())
    rows = [
        ("client charged (compute + data)", m.charged_compute + m.charged_data),
        ("its channel redeemed into the pool", m.redeemed),
        ("deposited into the pool (every channel)", m.deposited),
        ("= claimed by providers", m.claimed),
        ("+ earned, not yet claimed (below the claim threshold)", m.unclaimed),
        ("+ protocol fee (treasury)", m.protocol),
        ("+ carried per role (dust; a share while the role had no work)", carries),
        ("+ left in the pots", m.pots),
    ]
    for label, v in rows:
        books.add_row(label, f"{v:,}")
    right = m.claimed + m.unclaimed + m.protocol + carries + m.pots
    books.add_row("[b]balanced[/]" if m.balanced else "[red b]NOT balanced[/]", f"{m.deposited:,} = {right:,}")
    out.print(books)
    if m.flows:
        flows = Table(title="every nanoTON that moved during the run (balances and fees, from the chain)",
                      title_justify="left")
        flows.add_column("")
        flows.add_column("nanoTON", justify="right")
        for label, v in m.flows.items():
            flows.add_row(label, f"{v:+,}")
        flows.add_row("[b]sum[/] (0: nothing created, nothing lost)", f"[b]{m.flows_residue:+,}[/]")
        out.print(flows)
    if pkg.search:
        url, score = pkg.search[0]
        out.print(f'search "{QUERY}" through the network: {url} (score {score:.3f})')
    out.print(f"\n[b]done in {elapsed:.0f}s[/]. Dataset + semantic index: {pkg.directory}")
    out.print(f"anchored on chain: {pkg.anchor}")
    out.print(f"logs: {net.sup.workdir}   epochs: {net.epochs_dir}\n")
    c = _cmd()
    out.print("next:\n"
              f"  {c} dataset verify {pkg.directory}\n"
              f"  {c} index verify {pkg.directory}\n"
              f"  {c} epoch show --dir {net.epochs_dir}\n"
              f"  {c} devnet --serve      (keeps the network up; then: {c} search \"...\", {c} status)")


def _cmd() -> str:
    """How the person ran us (`./run` sets COCOON_CMD), so the hints can be pasted as printed."""
    return os.environ.get("COCOON_CMD") or "cocoon"


def _write_summary(path: Path, pkg: Bought, m: MoneyCheck) -> None:
    """The books as JSON for scripts (nanoTON as integers)."""
    import dataclasses
    import json

    doc = {**dataclasses.asdict(m), "unclaimed": m.unclaimed, "balanced": m.balanced,
           "index": str(pkg.directory), "channel": pkg.channel, "pages": pkg.pages, "anchor": pkg.anchor}
    path.write_text(json.dumps(doc, indent=2) + "\n")


def _serve(net: Devnet, console: Console, args: argparse.Namespace) -> int:
    with console.status("starting the gateway (OpenAI-compatible API)"):
        net.start_gateway()
    key = args.api_key or "any"
    console.print(f"\nOpenAI-compatible base URL: [b]{net.gateway_url}[/]")
    console.print(f'  from openai import OpenAI\n  OpenAI(base_url="{net.gateway_url}", api_key="{key}")'
                  '.embeddings.create(model="all-MiniLM-L6-v2", input=["hello TON"])')
    console.print(f"  {_cmd()} search \"{QUERY}\"    {_cmd()} status --network localnet\n[dim]Ctrl-C stops[/]")
    stop = threading.Event()
    while not stop.is_set():
        dead = [n for n, p in net.sup.procs.items() if not p.alive()]
        if dead:
            console.print(f"error: {', '.join(dead)} exited; see {net.sup.workdir}")
            return 1
        stop.wait(1.0)
    return 0


def _run(args: argparse.Namespace) -> int:
    console = Console(stderr=True)
    _interrupt_on_sigterm()
    try:
        return run_demo(args, console)
    except KeyboardInterrupt:
        console.print("interrupted: every process stopped")
        return 130


def add_devnet_command(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> object:
    p = sub.add_parser("devnet", help="the whole loop as processes: web data -> dataset -> compute -> TON -> split")
    p.add_argument("--dir", default=".cocoon/devnet", help="work folder: logs, datasets, epochs (default %(default)s)")
    p.add_argument("--home", help="where deployments are recorded (default: the work folder's parent)")
    p.add_argument("--keep", action="store_true", help="continue the previous run's chain and state (else fresh)")
    p.add_argument("--serve", action="store_true", help="afterwards keep the network up with the gateway")
    p.add_argument("--workers", type=int, default=3, help="GPU workers (default %(default)s)")
    p.add_argument("--validators", type=int, default=2, help="validators (default %(default)s)")
    p.add_argument("--threshold", type=int, default=2, help="validator quorum (default %(default)s)")
    p.add_argument("--datanodes", type=int, default=5, help="bandwidth data nodes (default %(default)s)")
    p.add_argument("--pages", type=int, default=15, help="pages to crawl (default %(default)s)")
    p.add_argument("--api-key", help="bearer key the gateway requires (--serve)")
    p.add_argument("--summary-json", help="also write the books as JSON to this file")
    return _run

"""`cocoon devnet`: a whole network on this machine for a person to try (Ctrl-C stops it)."""

from __future__ import annotations

import argparse
import shutil
import signal
import threading
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

from offchain.devnet._network import Devnet, DevnetConfig

__all__ = ["add_devnet_command"]


def _run(args: argparse.Namespace) -> int:
    console = Console(stderr=True)
    workdir = Path(args.dir)
    if workdir.exists():
        shutil.rmtree(workdir)
    started = time.monotonic()
    config = DevnetConfig(workers=args.workers, api_key=args.api_key, redeem_interval=args.redeem_interval)
    with console.status("starting the devnet") as status:
        net = Devnet(workdir, config, progress=lambda s: status.update(f"[{time.monotonic() - started:5.1f}s] {s}"))
        net.start()
    try:
        t = Table(title=f"devnet up in {time.monotonic() - started:.1f}s (logs in {workdir / 'logs'})")
        t.add_column("part")
        t.add_column("where")
        t.add_row("localnet (Toncenter v2 API)", net.api_url)
        t.add_row("Root", net.root)
        t.add_row("router", f"{net.router['url']}  wallet {net.router['address']}  ops {net.router.get('ops_url')}")
        for p in net.workers:
            models = ", ".join(p.info.get("models", []))
            t.add_row(p.name, f"Provider {p.info.get('provider')}  models {models}  ops {p.info.get('ops_url')}")
        t.add_row("gateway (OpenAI API)", net.gateway_url)
        Console().print(t)
        key = args.api_key or "any"
        Console().print(f'\nfrom openai import OpenAI\nOpenAI(base_url="{net.gateway_url}", api_key="{key}")'
                        '.embeddings.create(model="all-MiniLM-L6-v2", input=["hello TON"])\n')
        stop = threading.Event()
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
        while not stop.is_set():
            dead = [n for n, p in net.sup.procs.items() if not p.alive()]
            if dead:
                console.print(f"error: {', '.join(dead)} exited; see {workdir / 'logs'}")
                return 1
            stop.wait(1.0)
    except KeyboardInterrupt:
        pass
    finally:
        net.close()
    return 0


def add_devnet_command(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> object:
    p = sub.add_parser("devnet", help="run localnet + Root + router + workers + gateway as processes (Ctrl-C stops)")
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--dir", default=".cocoon/devnet", help="work folder (wiped at start)")
    p.add_argument("--api-key", help="bearer key the gateway requires")
    p.add_argument("--redeem-interval", type=float, default=10.0, help="seconds between the router's timer redeems")
    return _run

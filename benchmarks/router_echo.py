"""Requests per second through the router (echo model) vs a bare websockets echo server.

Network side: a real devnet (`offchain.devnet`): localnet, Root, a router process and one
worker process serving only the `echo` model (numpy, microseconds a batch), so what is
measured is the path itself: client SDK (units, voucher, its SQLite books) -> websocket ->
router (admission, voucher persisted, worker choice, forward, receipt check, charge
persisted) -> websocket -> worker (batcher, echo model, signed receipt) and back. One
`CocoonClient` in this process, `--tasks` (16) concurrent tasks each sending one short text
per request in a loop.

Baseline: a bare `websockets` echo server in its own process on the same machine (the
router is a process of its own too), with the mesh's websocket options (no compression),
and a client in this process with the same concurrency over one connection (as the SDK
uses one): each task sends a binary message of the size of the SDK's `Embed` frame for
the same request and awaits its echo (matched by an id in the first 8 bytes, as the SDK
matches request ids).

Both sides take the best of `--windows` timed windows of `--seconds` after a warm-up
(other programs on the machine can only slow a window down). Prints a table and writes
benchmarks/results/router_echo.json (`ratios.router_vs_echo`: router req/s over bare echo req/s).

    .venv/bin/python benchmarks/router_echo.py [--tasks 16] [--seconds 3] [--windows 3]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks._common import devnet_client, devnet_network, machine, print_table, write_result  # noqa: E402
from offchain.client import CocoonClient  # noqa: E402
from offchain.devnet import Devnet, DevnetConfig  # noqa: E402
from offchain.mesh import Limits  # noqa: E402
from offchain.protocol import wire  # noqa: E402

TEXT = "The router relays this request."
GOAL = 0.5


def embed_frame_size(text: str) -> int:
    """Bytes of the SDK's Embed frame for one `text` (a voucher of realistic size)."""
    frame = wire.Embed(
        id=2**40 + 12345,
        model="echo",
        units=7,
        max_coefficient=1000,
        voucher=wire.VoucherFrame(compute=123_456_789, data=0, signature=b"\x01" * 64),
        texts=[text],
    )
    return len(wire.encode(frame))


# ---- the baseline: a bare websockets echo server and a client with the same concurrency ----------
async def _echo_server() -> None:
    from websockets.asyncio.server import serve

    async def echo(ws: Any) -> None:
        async for message in ws:
            await ws.send(message)

    async with serve(echo, "127.0.0.1", 0, **Limits().ws_options()) as server:  # type: ignore[arg-type]
        port = next(iter(server.sockets)).getsockname()[1]
        print(port, flush=True)
        await server.serve_forever()


async def _drive_echo(url: str, *, tasks: int, size: int, seconds: float) -> dict[str, float]:
    from websockets.asyncio.client import connect

    async with connect(url, proxy=None, **Limits().ws_options()) as ws:  # type: ignore[arg-type]
        waiting: dict[int, asyncio.Future[bytes]] = {}

        async def reader() -> None:
            async for message in ws:
                fut = waiting.pop(int.from_bytes(message[:8], "big"), None)
                if fut is not None and not fut.done():
                    fut.set_result(message)

        read = asyncio.create_task(reader())
        ids = iter(range(1, 1 << 62))
        pad = b"\x00" * (size - 8)
        stop_at = 0.0
        counts = [0] * tasks

        async def loop(k: int) -> None:
            loop_ = asyncio.get_running_loop()
            while time.perf_counter() < stop_at:
                rid = next(ids)
                fut: asyncio.Future[bytes] = loop_.create_future()
                waiting[rid] = fut
                await ws.send(rid.to_bytes(8, "big") + pad)
                if len(await fut) != size:
                    raise RuntimeError("short echo")
                counts[k] += 1

        t0 = time.perf_counter()
        stop_at = t0 + seconds
        await asyncio.gather(*(loop(k) for k in range(tasks)))
        dt = time.perf_counter() - t0
        read.cancel()
    return {"requests": sum(counts), "seconds": dt, "requests_per_s": sum(counts) / dt}


def bare_echo(args: argparse.Namespace, size: int) -> dict[str, Any]:
    proc = subprocess.Popen([sys.executable, __file__, "--echo-server"], cwd=ROOT, stdout=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline() if proc.stdout else ""
        if not line.strip():
            raise RuntimeError("the echo server did not start")
        url = f"ws://127.0.0.1:{int(line)}"

        async def run() -> list[dict[str, float]]:
            await _drive_echo(url, tasks=args.tasks, size=size, seconds=args.warmup)
            return [
                await _drive_echo(url, tasks=args.tasks, size=size, seconds=args.seconds) for _ in range(args.windows)
            ]

        windows = asyncio.run(run())
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    best = max(windows, key=lambda w: w["requests_per_s"])
    return {**best, "windows_requests_per_s": [w["requests_per_s"] for w in windows], "message_bytes": size}


# ---- the network: client -> router -> worker (echo) ------------------------------------------------
async def _drive_router(client: CocoonClient, *, tasks: int, seconds: float) -> dict[str, float]:
    counts = [0] * tasks
    stop_at = 0.0

    async def loop(k: int) -> None:
        while time.perf_counter() < stop_at:
            r = await client.embed([TEXT], model="echo")
            if r.vectors.shape[0] != 1:
                raise RuntimeError("no vector")
            counts[k] += 1

    t0 = time.perf_counter()
    stop_at = t0 + seconds
    await asyncio.gather(*(loop(k) for k in range(tasks)))
    dt = time.perf_counter() - t0
    return {"requests": sum(counts), "seconds": dt, "requests_per_s": sum(counts) / dt}


def through_router(args: argparse.Namespace) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="router-echo-") as tmp:
        workdir = Path(tmp)
        devnet = Devnet(workdir / "devnet", DevnetConfig(workers=1, models=["echo"], gateway=False))
        try:
            devnet.start()

            async def run() -> list[dict[str, float]]:
                net = await devnet_network(devnet)
                try:
                    async with devnet_client(devnet, net, workdir / "client.db") as client:
                        await client.open_channel(deposit=100 * 10**9)
                        await _drive_router(client, tasks=args.tasks, seconds=args.warmup)
                        return [
                            await _drive_router(client, tasks=args.tasks, seconds=args.seconds)
                            for _ in range(args.windows)
                        ]
                finally:
                    await net.close()

            windows = asyncio.run(run())
        finally:
            devnet.close()
    best = max(windows, key=lambda w: w["requests_per_s"])
    return {**best, "windows_requests_per_s": [w["requests_per_s"] for w in windows]}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tasks", type=int, default=16, help="concurrent requests in flight")
    ap.add_argument("--seconds", type=float, default=3.0, help="one timed window")
    ap.add_argument("--windows", type=int, default=3, help="timed windows per side (the best counts)")
    ap.add_argument("--warmup", type=float, default=1.0)
    ap.add_argument("--echo-server", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "router_echo.json"))
    args = ap.parse_args()
    if args.echo_server:
        asyncio.run(_echo_server())
        return 0

    size = embed_frame_size(TEXT)
    print(f"bare websockets echo ({args.tasks} tasks, {size}-byte messages) ...", file=sys.stderr)
    bare = bare_echo(args, size)
    print(f"through the router (echo model, {args.tasks} tasks) ...", file=sys.stderr)
    routed = through_router(args)
    ratio = routed["requests_per_s"] / bare["requests_per_s"]

    rows = [
        ("run", "req/s (best window)", "windows", "vs bare echo"),
        (
            f"bare websockets echo, {size}-byte message",
            f"{bare['requests_per_s']:,.0f}",
            " ".join(f"{w:,.0f}" for w in bare["windows_requests_per_s"]),
            "1.00",
        ),
        (
            "client -> router -> worker (echo model), 1 text",
            f"{routed['requests_per_s']:,.0f}",
            " ".join(f"{w:,.0f}" for w in routed["windows_requests_per_s"]),
            f"{ratio:.2f}",
        ),
    ]
    print_table(rows, title=f"{args.tasks} concurrent requests in flight, one connection", width=160)
    print(f"\nrouter_vs_echo = {ratio:.2f} (goal >= {GOAL:.2f}: {'met' if ratio >= GOAL else 'MISSED'})")

    doc = {
        "benchmark": "router_echo",
        "workload": (
            f"{args.tasks} concurrent tasks on one connection, one short text per request ({TEXT!r}); "
            f"best of {args.windows} windows of {args.seconds:g} s after a {args.warmup:g} s warm-up"
        ),
        "fairness": (
            "bare: a websockets echo server in its own process with the mesh's websocket options; the client "
            f"sends {size}-byte binary messages (the SDK's Embed frame for this request) with the same "
            "concurrency over one connection and matches echoes by id; network: one devnet router and one worker "
            "serving only the echo model, one CocoonClient paying a voucher per request"
        ),
        "embed_frame_bytes": size,
        "machine": machine(),
        "loadavg_after": os.getloadavg(),
        "runs": {"bare_websockets_echo": bare, "router_echo_model": routed},
        "goal": {"router_vs_echo": GOAL},
        "ratios": {"router_vs_echo": ratio},
    }
    write_result(args.out, doc)
    return 0


if __name__ == "__main__":
    sys.exit(main())

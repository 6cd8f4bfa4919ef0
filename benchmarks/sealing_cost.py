"""What end-to-end sealing costs: sealed vs plain embeddings per second, same devnet, same run.

The network side is a real devnet (`offchain.devnet`): a localnet process, Root deployed, a
router process and one worker process serving all-MiniLM-L6-v2 (int8 ONNX, CPU here, as in
`embed_throughput.py`: `intra_op_threads = 1`, `max_batch = 32`) and the `echo` model. Two
`CocoonClient`s in this process, each from its own funded localnet wallet
(`devnet.client_wallet` and the next one: with `gateway=False` nobody else uses them) with
its own channel, differ in one setting only: `ClientConfig.seal` (the SDK's default, True,
against False, the plain baseline the setting is kept for). Same model, same `--tasks`
concurrent tasks (16), same `--per-request` sentences (2) per request.

Fairness: sealed and plain windows alternate (ABBA: sealed, plain, plain, sealed, ...), one
client at a time while the other sits idle, `--windows` timed windows of `--seconds` each
per side after a warm-up of both; each side keeps its best window, since other load on the
machine can only slow a window down; the load average (and the CPU's busy and steal share
from /proc/stat during the network part) is recorded. As a cross-check that does not lean on
the best window, the median over adjacent (sealed, plain) window pairs is reported too.

- `sealed_vs_plain`: MiniLM embeddings/s sealed over plain (goal >= 0.95).
- `sealed_vs_plain_echo`: the same with the echo model (microseconds of model), where the
  path itself is all there is, so sealing's share is as visible as it can be.

In-process, no network: CPU per call of the sealing primitives (`offchain.protocol.sealing`)
on a request of `--per-request` sentences sealed to one worker (the devnet has one) and a
2 x 384 float32 answer (MiniLM's), against raw PyNaCl doing the same cryptography on bytes of
the same sizes (`PrivateKey.generate` + `SecretBox.encrypt` + `Box.encrypt` of the 32-byte
key; `Box.decrypt` + `SecretBox.decrypt`; `Box.encrypt` / `Box.decrypt` of the answer). Each
ratio is the primitive's calls/s over raw PyNaCl's (best of `--repeat` alternating passes).

Prints tables and writes benchmarks/results/sealing_cost.json (`ratios`).

    .venv/bin/python benchmarks/sealing_cost.py [--seconds 2] [--windows 8] [--tasks 16] [--per-request 2]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import msgspec
import nacl.utils
import numpy as np
from nacl.public import Box, PrivateKey, PublicKey
from nacl.secret import SecretBox

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks._bare_onnx import sample_texts  # noqa: E402
from benchmarks._common import devnet_client, devnet_network, embed_load, machine, print_table, write_result  # noqa: E402
from offchain.client import CocoonClient  # noqa: E402
from offchain.devnet import Devnet, DevnetConfig  # noqa: E402
from offchain.models import MINILM_NAME  # noqa: E402
from offchain.protocol.sealing import open_answer, open_request, seal_answer, seal_request  # noqa: E402
from offchain.protocol.wire import SealedInput  # noqa: E402

MODELS = (MINILM_NAME, "echo")
GOAL = 0.95
THREADS = 1
MAX_BATCH = 32
DIM = 384  # MiniLM's embedding size: the in-process answer is per_request x DIM float32


# ---- the network: two clients, one sealed, one plain ------------------------------------------------
async def drive(client: CocoonClient, texts: list[str], *, model: str, tasks: int, per: int, seconds: float) -> dict:
    """`tasks` concurrent loops of `embed(per sentences)` for `seconds`; embeddings/s."""
    n, dt = await embed_load(client, texts, model=model, tasks=tasks, per=per, seconds=seconds)
    return {"embeddings": n, "requests": n // per, "seconds": dt, "embeddings_per_s": n / dt}


async def network_runs(devnet: Devnet, workdir: Path, args: argparse.Namespace) -> dict[str, dict[str, Any]]:
    texts = sample_texts(args.texts)
    nets = []
    clients: dict[str, CocoonClient] = {}
    out: dict[str, dict[str, Any]] = {}
    try:
        for side, wallet, seal in (("sealed", devnet.client_wallet, True), ("plain", devnet.client_wallet + 1, False)):
            net = await devnet_network(devnet, wallet)
            nets.append(net)
            clients[side] = devnet_client(devnet, net, workdir / f"client-{side}.db", seal=seal)
        await asyncio.gather(*(c.open_channel(deposit=100 * 10**9) for c in clients.values()))
        for model in MODELS:
            for side in ("sealed", "plain"):
                await drive(
                    clients[side], texts, model=model, tasks=args.tasks, per=args.per_request, seconds=args.warmup
                )
            windows: dict[str, list[dict]] = {"sealed": [], "plain": []}
            order: list[str] = []
            for i in range(args.windows):
                for side in ("sealed", "plain") if i % 2 == 0 else ("plain", "sealed"):
                    r = await drive(
                        clients[side], texts, model=model, tasks=args.tasks, per=args.per_request, seconds=args.seconds
                    )
                    windows[side].append(r)
                    order.append(side)
            res: dict[str, Any] = {"window_order": order}
            for side, ws in windows.items():
                best = max(ws, key=lambda w: w["embeddings_per_s"])
                res[side] = {**best, "windows_embeddings_per_s": [w["embeddings_per_s"] for w in ws]}
            res["ratio"] = res["sealed"]["embeddings_per_s"] / res["plain"]["embeddings_per_s"]
            # a drift-robust cross-check: sealed over plain within each adjacent pair of windows
            paired = [
                s["embeddings_per_s"] / p["embeddings_per_s"]
                for s, p in zip(windows["sealed"], windows["plain"], strict=True)
            ]
            res["paired_ratios"] = paired
            res["paired_ratio_median"] = float(np.median(paired))
            out[model] = res
            print(
                f"  {model}: sealed {res['sealed']['embeddings_per_s']:.1f} "
                f"{[round(x, 1) for x in res['sealed']['windows_embeddings_per_s']]}, plain "
                f"{res['plain']['embeddings_per_s']:.1f} "
                f"{[round(x, 1) for x in res['plain']['windows_embeddings_per_s']]}"
                f" embeddings/s: {res['ratio']:.3f} (paired median {res['paired_ratio_median']:.3f})",
                file=sys.stderr,
            )
    finally:
        for c in clients.values():
            await c.close()
        for net in nets:
            await net.close()
    return out


def cpu_ticks() -> list[int]:
    """/proc/stat's aggregate cpu line (user nice system idle iowait irq softirq steal ...)."""
    try:
        return [int(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    except (OSError, ValueError, IndexError):
        return []


def through_devnet(args: argparse.Namespace) -> dict[str, dict[str, Any]]:
    print("starting the devnet ...", file=sys.stderr)
    with tempfile.TemporaryDirectory(prefix="sealing-bench-") as tmp:
        workdir = Path(tmp)
        devnet = Devnet(
            workdir / "devnet",
            DevnetConfig(
                workers=1,
                models=list(MODELS),
                gateway=False,
                worker_extra={"intra_op_threads": THREADS, "max_batch": MAX_BATCH},
            ),
        )
        try:
            devnet.start()
            return asyncio.run(network_runs(devnet, workdir, args))
        finally:
            devnet.close()


# ---- in process: the sealing primitives vs raw PyNaCl ----------------------------------------------
def best_rate(fn: Callable[[], object], n: int) -> float:
    """Calls per second of one pass of `n` calls."""
    t0 = time.perf_counter()
    for _ in range(n):
        fn()
    return n / (time.perf_counter() - t0)


def primitives(args: argparse.Namespace) -> dict[str, dict[str, Any]]:
    texts = sample_texts(args.per_request, seed=2)
    inputs = SealedInput(texts=texts)
    worker = PrivateKey.generate()
    wpub = bytes(worker.public_key)
    answer = np.random.default_rng(0).standard_normal((args.per_request, DIM)).astype("<f4").tobytes()

    sealed, ephemeral = seal_request(inputs, [wpub])
    sealed_answer = seal_answer(answer, worker, sealed.client_key)
    plain_payload = msgspec.msgpack.encode(inputs)  # the same bytes seal_request encrypts
    raw_key = nacl.utils.random(SecretBox.KEY_SIZE)
    raw_eph = PrivateKey.generate()
    raw_payload = bytes(SecretBox(raw_key).encrypt(plain_payload))
    raw_key_box = bytes(Box(raw_eph, PublicKey(wpub)).encrypt(raw_key))
    raw_answer = bytes(Box(worker, raw_eph.public_key).encrypt(answer))
    assert len(raw_payload) == len(sealed.payload) and len(raw_key_box) == len(sealed.recipients[0].key_box)
    assert len(raw_answer) == len(sealed_answer)

    def raw_seal_request() -> None:
        eph = PrivateKey.generate()
        key = nacl.utils.random(SecretBox.KEY_SIZE)
        bytes(SecretBox(key).encrypt(plain_payload))
        bytes(Box(eph, PublicKey(wpub)).encrypt(key))

    def raw_open_request() -> None:
        key = Box(worker, PublicKey(bytes(raw_eph.public_key))).decrypt(raw_key_box)
        SecretBox(key).decrypt(raw_payload)

    pairs: dict[str, tuple[Callable[[], object], Callable[[], object]]] = {
        "seal_request": (lambda: seal_request(inputs, [wpub]), raw_seal_request),
        "open_request": (lambda: open_request(sealed, worker), raw_open_request),
        "seal_answer": (
            lambda: seal_answer(answer, worker, sealed.client_key),
            lambda: bytes(Box(worker, PublicKey(sealed.client_key)).encrypt(answer)),
        ),
        "open_answer": (
            lambda: open_answer(sealed_answer, ephemeral, wpub),
            lambda: bytes(Box(raw_eph, PublicKey(wpub)).decrypt(raw_answer)),
        ),
    }
    sizes = {
        "seal_request": f"{len(plain_payload)} B payload ({args.per_request} sentences), 1 recipient",
        "open_request": f"{len(sealed.payload)} B sealed payload + {len(sealed.recipients[0].key_box)} B key box",
        "seal_answer": f"{len(answer)} B answer ({args.per_request} x {DIM} float32)",
        "open_answer": f"{len(sealed_answer)} B sealed answer",
    }
    out: dict[str, dict[str, Any]] = {}
    for name, (mine, raw) in pairs.items():
        mine(), raw()  # warm
        m_passes, r_passes = [], []
        for _ in range(args.repeat):
            m_passes.append(best_rate(mine, args.n))
            r_passes.append(best_rate(raw, args.n))
        m, r = max(m_passes), max(r_passes)
        out[name] = {
            "bytes": sizes[name],
            "us_per_call": 1e6 / m,
            "raw_us_per_call": 1e6 / r,
            "calls_per_s_passes": m_passes,
            "raw_calls_per_s_passes": r_passes,
            "ratio": m / r,
        }
    return out


# ---- report ------------------------------------------------------------------------------------------
def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=2.0, help="one timed window")
    ap.add_argument("--windows", type=int, default=8, help="timed windows per side and model (the best counts)")
    ap.add_argument("--warmup", type=float, default=1.5, help="untimed window per side before a model's windows")
    ap.add_argument("--tasks", type=int, default=16, help="concurrent tasks on the client being measured")
    ap.add_argument("--per-request", type=int, default=2, help="sentences in each request")
    ap.add_argument("--texts", type=int, default=512, help="distinct sentences the clients cycle through")
    ap.add_argument("--n", type=int, default=2000, help="calls per in-process pass")
    ap.add_argument("--repeat", type=int, default=5, help="in-process passes per side (the best counts)")
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "sealing_cost.json"))
    args = ap.parse_args()

    load_before = os.getloadavg()
    t_start = time.perf_counter()
    ticks0 = cpu_ticks()
    net = through_devnet(args)  # the devnet is closed before the in-process part runs
    ticks1 = cpu_ticks()
    load_network = os.getloadavg()
    cpu_during_network: dict[str, float] | None = None
    if len(ticks0) >= 8 and len(ticks1) >= 8:
        d = [b - a for a, b in zip(ticks0, ticks1, strict=False)]
        total = sum(d[:8]) or 1
        cpu_during_network = {"busy_pct": 100 * (total - d[3] - d[4]) / total, "steal_pct": 100 * d[7] / total}
    print("in-process sealing primitives vs raw PyNaCl ...", file=sys.stderr)
    prim = primitives(args)
    load_after = os.getloadavg()

    rows = [
        ("model", "sealed emb/s", "plain emb/s", "sealed / plain", "paired median", "sealed windows", "plain windows")
    ]
    for model, r in net.items():
        rows.append(
            (
                model,
                f"{r['sealed']['embeddings_per_s']:.1f}",
                f"{r['plain']['embeddings_per_s']:.1f}",
                f"{r['ratio']:.3f}",
                f"{r['paired_ratio_median']:.3f}",
                " ".join(f"{x:.0f}" for x in r["sealed"]["windows_embeddings_per_s"]),
                " ".join(f"{x:.0f}" for x in r["plain"]["windows_embeddings_per_s"]),
            )
        )
    print_table(
        rows,
        title=f"sealed vs plain: {args.tasks} tasks x {args.per_request} sentences/request, best of "
        f"{args.windows} x {args.seconds:g} s windows each (alternating)",
    )
    rows = [("primitive", "sizes", "us/call", "raw PyNaCl us/call", "ratio (rate / raw rate)")]
    for name, p in prim.items():
        rows.append((name, p["bytes"], f"{p['us_per_call']:.1f}", f"{p['raw_us_per_call']:.1f}", f"{p['ratio']:.3f}"))
    print_table(rows, title="sealing primitives in process vs raw PyNaCl (best of passes)")

    ratios: dict[str, float] = {
        "sealed_vs_plain": net[MINILM_NAME]["ratio"],
        "sealed_vs_plain_echo": net["echo"]["ratio"],
    }
    for name, p in prim.items():
        ratios[f"{name}_vs_raw_pynacl"] = p["ratio"]
    client_us = prim["seal_request"]["us_per_call"] + prim["open_answer"]["us_per_call"]
    worker_us = prim["open_request"]["us_per_call"] + prim["seal_answer"]["us_per_call"]
    print(
        f"\nsealing CPU per request: client {client_us:.0f} us (seal_request + open_answer), "
        f"worker {worker_us:.0f} us (open_request + seal_answer)"
    )
    print(
        f"sealed_vs_plain = {ratios['sealed_vs_plain']:.3f} (goal >= {GOAL:.2f}: "
        f"{'met' if ratios['sealed_vs_plain'] >= GOAL else 'MISSED'}); "
        f"sealed_vs_plain_echo = {ratios['sealed_vs_plain_echo']:.3f}"
    )

    doc = {
        "benchmark": "sealing_cost",
        "models": list(MODELS),
        "workload": (
            f"each request embeds {args.per_request} sentences (8-20 words, benchmarks/_bare_onnx.sample_texts); "
            f"{args.tasks} concurrent tasks on one CocoonClient at a time; two clients (seal=True, seal=False), "
            "each with its own localnet wallet and channel (a voucher per request); one devnet worker serving "
            f"{MINILM_NAME} and echo, intra_op_threads {THREADS}, max_batch {MAX_BATCH}, max_wait_ms default; "
            "the sealed request is sealed to the one worker there is"
        ),
        "fairness": (
            "same devnet, same run, same model, concurrency and request size for both clients; sealed and plain "
            "windows alternate ABBA (window_order), one client at a time; each side keeps its best window, since "
            "other load on the machine can only slow a window down; the in-process part runs after the devnet is "
            "closed, the primitive and raw PyNaCl passes alternating"
        ),
        "settings": {
            "tasks": args.tasks,
            "per_request": args.per_request,
            "seconds": args.seconds,
            "windows": args.windows,
            "warmup": args.warmup,
            "texts": args.texts,
            "intra_op_threads": THREADS,
            "max_batch": MAX_BATCH,
            "in_process_calls_per_pass": args.n,
            "in_process_repeat": args.repeat,
            "answer_dim": DIM,
        },
        "machine": {
            **machine(),
            "loadavg_before": load_before,
            "loadavg_after_network": load_network,
            "loadavg_after": load_after,
            "cpu_during_network": cpu_during_network,
        },
        "network": net,
        "primitives": prim,
        "sealing_cpu_us_per_request": {"client": client_us, "worker": worker_us},
        "wall_seconds": time.perf_counter() - t_start,
        "goal": {"sealed_vs_plain": GOAL},
        "ratios": ratios,
    }
    write_result(args.out, doc)
    return 0


if __name__ == "__main__":
    sys.exit(main())

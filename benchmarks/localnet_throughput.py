"""Localnet throughput: transfers per second accepted and settled through its HTTP API vs the sandbox.

The workload is wallet v5r1 transfers between the localnet's funded wallets: each message
is one signed external (checked, run, and its internal transfer delivered: 2 transactions).
All externals are signed before the clock starts.

- sandbox: the same messages on an in-process `Blockchain` (`send_message`), the ceiling;
- localnet: a real `cocoon localnet` process on loopback, one block per message
  (`--block-time 0`, so `sendBoc` returns once the trace is settled), driven over HTTP by
  1 or 4 keep-alive clients (4 clients use 4 wallets), without and with a state file.
  Every run is checked afterwards: each wallet's seqno must equal the messages it sent.

Prints a table with the ratio to the sandbox rate and writes
benchmarks/results/localnet_throughput.json.

    .venv/bin/python benchmarks/localnet_throughput.py [--messages 1000]
"""

from __future__ import annotations

import argparse
import base64
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks._common import machine, write_result  # noqa: E402
from offchain.ton._localnet_chain import LocalChain  # noqa: E402
from offchain.ton._wallet import WalletKey, localnet_mnemonic  # noqa: E402
from offchain.ton.messages import message_relaxed  # noqa: E402

VALUE = 10**7  # 0.01 TON per transfer


def sign_transfers(n: int, wallets: int) -> list[list[str]]:
    """`n` externals split over `wallets` senders (wallet i pays wallet i+1), base64 BOCs."""
    keys = [WalletKey.from_mnemonic(localnet_mnemonic(i)) for i in range(wallets + 1)]
    per = [n // wallets + (1 if i < n % wallets else 0) for i in range(wallets)]
    until = int(time.time()) + 3600
    out: list[list[str]] = []
    for w in range(wallets):
        dest = keys[w + 1].address
        out.append([
            base64.b64encode(
                keys[w].transfer(s, [(message_relaxed(dest=dest, value=VALUE, bounce=False), 3)], valid_until=until)
                .to_boc()
            ).decode()
            for s in range(per[w])
        ])
    return out


def sandbox_rate(batches: list[list[str]]) -> dict:
    chain = LocalChain.genesis(wallets=len(batches) + 1)
    msgs = [m for b in batches for m in b]
    txs = 0
    t0 = time.perf_counter()
    for m in msgs:
        txs += len(chain.bc.send_message(m).transactions)
    dt = time.perf_counter() - t0
    return {"messages": len(msgs), "transactions": txs, "seconds": dt}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(port: int, state: Path | None, wallets: int) -> subprocess.Popen[bytes]:
    args = [sys.executable, "-m", "offchain.ton.localnet", "--port", str(port), "--quiet", "--block-time", "0",
            "--wallets", str(wallets)]
    args += ["--state", str(state)] if state else ["--memory"]
    proc = subprocess.Popen(args, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    url = f"http://127.0.0.1:{port}/api/v2"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/getMasterchainInfo", timeout=1).status_code == 200:
                return proc
        except httpx.HTTPError:
            time.sleep(0.1)
    proc.kill()
    raise RuntimeError("localnet did not start")


def localnet_rate(batches: list[list[str]], clients: int, state: Path | None) -> dict:
    port = free_port()
    proc = start_server(port, state, wallets=len(batches) + 1)
    url = f"http://127.0.0.1:{port}/api/v2"
    errors: list[str] = []
    try:
        lanes = [batches[i::clients] for i in range(clients)]  # each client drives its own wallets

        def drive(lane: list[list[str]]) -> None:
            with httpx.Client(base_url=url, timeout=30) as c:
                for batch in lane:
                    for boc in batch:
                        r = c.post("/sendBoc", json={"boc": boc})
                        if r.status_code != 200:
                            errors.append(r.text)
                            return

        threads = [threading.Thread(target=drive, args=(lane,)) for lane in lanes]
        t0 = time.perf_counter()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        dt = time.perf_counter() - t0
        if errors:
            raise RuntimeError(f"sendBoc failed: {errors[0]}")
        txs = 0
        with httpx.Client(base_url=url, timeout=30) as c:  # settled: every seqno moved
            for i, batch in enumerate(batches):
                addr = WalletKey.localnet(i, with_secret=False).address.to_str(False)
                seqno = c.get("/getWalletInformation", params={"address": addr}).json()["result"]["seqno"]
                if seqno != len(batch):
                    raise RuntimeError(f"wallet {i}: seqno {seqno}, expected {len(batch)}")
                txs += 2 * len(batch)
    finally:
        proc.terminate()
        proc.wait(30)
    return {"messages": sum(len(b) for b in batches), "transactions": txs, "seconds": dt}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--messages", type=int, default=1000)
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "localnet_throughput.json"))
    args = ap.parse_args()

    print(f"signing {args.messages} transfers ...", file=sys.stderr)
    one = sign_transfers(args.messages, 1)
    four = sign_transfers(args.messages, 4)

    print("sandbox (in process) ...", file=sys.stderr)
    base = min((sandbox_rate(one) for _ in range(2)), key=lambda r: r["seconds"])
    runs = {"sandbox in process": base}
    with tempfile.TemporaryDirectory() as tmp:
        for name, batches, clients, state in [
            ("localnet HTTP, 1 client", one, 1, None),
            ("localnet HTTP, 4 clients", four, 4, None),
            ("localnet HTTP, 4 clients, state file", four, 4, Path(tmp) / "state.json"),
        ]:
            print(f"{name} ...", file=sys.stderr)
            runs[name] = localnet_rate(batches, clients, state)

    rows = [("run", "messages/s", "transactions/s", "vs sandbox")]
    base_rate = base["messages"] / base["seconds"]
    result_runs = {}
    for name, r in runs.items():
        rate = r["messages"] / r["seconds"]
        rows.append((name, f"{rate:,.0f}", f"{r['transactions'] / r['seconds']:,.0f}", f"{rate / base_rate:.2f}x"))
        result_runs[name] = {**r, "messages_per_s": rate, "transactions_per_s": r["transactions"] / r["seconds"],
                             "ratio_to_sandbox": rate / base_rate}
    w = [max(len(r[i]) for r in rows) for i in range(4)]
    for n, r in enumerate(rows):
        print("  ".join(c.ljust(w[i]) if i == 0 else c.rjust(w[i]) for i, c in enumerate(r)))
        if n == 0:
            print("  ".join("-" * x for x in w))
    best = max((v for k, v in result_runs.items() if k != "sandbox in process"), key=lambda v: v["messages_per_s"])
    print(f"\nlocalnet/sandbox ratio (best HTTP run): {best['ratio_to_sandbox']:.2f}")

    doc = {
        "benchmark": "localnet_throughput",
        "workload": "wallet v5r1 transfer: 1 external + 1 internal = 2 transactions per message",
        "messages": args.messages,
        "machine": machine(),
        "runs": result_runs,
        "best_ratio_to_sandbox": best["ratio_to_sandbox"],
        "ratios": {name: run["ratio_to_sandbox"] for name, run in result_runs.items() if name != "sandbox in process"},
    }
    write_result(args.out, doc)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Sandbox throughput against @ton/sandbox, and transaction-by-transaction agreement.

The same flow runs on both, in one invocation: deploy the counter test contract, send it
1,000 internal messages from a treasury, then run 100 get-method calls. Prints messages
and get-methods per second for each and the ratios, then compares every transaction the
counter executed (exit code, gas used, total fees, account state hash after it): the two
emulations must agree exactly. Writes benchmarks/results/sandbox_throughput.json.

    .venv/bin/python benchmarks/sandbox_throughput.py [--messages 1000] [--gets 100]
"""

from __future__ import annotations

import argparse
import base64
import sys
import time
from pathlib import Path

from pytoniq_core import Address, StateInit, begin_cell

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks._common import write_result  # noqa: E402
from benchmarks._node import NodeRunError, run_node  # noqa: E402
from offchain.ton.blockchain import Blockchain, ton  # noqa: E402
from offchain.ton.build import code_cell  # noqa: E402

NOW = 1_800_000_000
VALUE = ton("0.05")
OWNER = Address("0:" + "11" * 32)


def body(i: int):
    return begin_cell().store_uint(0x7E8764EF, 32).store_uint(i, 64).store_uint(1, 32).end_cell()


def python_pass(init: StateInit, messages: int, gets: int, records: list | None) -> dict:
    addr = Address((0, init.serialize().hash))
    raw_addr = f"0:{addr.hash_part.hex()}"
    t0 = time.perf_counter()
    bc = Blockchain.create(now=NOW)
    treasury = bc.treasury("bench")

    def record(res) -> None:
        if records is None:
            return
        for tx in res.transactions:
            if tx.dst == raw_addr and not tx.external:
                records.append(
                    {
                        "exit": tx.exit_code,
                        "gas": tx.gas_used,
                        "fees": str(tx.total_fees),
                        "state": bc.account(addr).state_hash.hex(),
                    }
                )

    t_deploy = time.perf_counter()
    record(treasury.send(addr, VALUE, body(0), init=init))
    t_msgs = time.perf_counter()
    for i in range(1, messages + 1):
        record(treasury.send(addr, VALUE, body(i)))
    t_gets = time.perf_counter()
    last = 0
    for i in range(gets):
        last = bc.run_get_method(addr, "add_to_counter", [i]).int()
    t_end = time.perf_counter()
    return {
        "setup_s": t_deploy - t0,
        "deploy_s": t_msgs - t_deploy,
        "messages_s": t_gets - t_msgs,
        "gets_s": t_end - t_gets,
        "last_get": str(last),
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--messages", type=int, default=1000)
    ap.add_argument("--gets", type=int, default=100)
    ap.add_argument("--repeat", type=int, default=3, help="timed passes per side; the best one counts")
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "sandbox_throughput.json"))
    args = ap.parse_args()

    code = code_cell("tests/sandbox/contracts/counter.tolk")
    data = begin_cell().store_address(OWNER).store_uint(0, 32).store_uint(0, 32).store_uint(0, 32).end_cell()
    init = StateInit(code=code, data=data)

    print(f"running the flow on this sandbox ({args.messages} messages, {args.gets} get-methods) ...", file=sys.stderr)
    py = python_pass(init, args.messages, args.gets, None)
    py["first"] = dict(py)
    for _ in range(args.repeat - 1):
        again = python_pass(init, args.messages, args.gets, None)
        py = {k: min(v, again[k]) if k.endswith("_s") else v for k, v in py.items()}
    py_records: list = []
    python_pass(init, args.messages, args.gets, py_records)

    print("running the same flow on @ton/sandbox (Node) ...", file=sys.stderr)
    request = {
        "code": base64.b64encode(code.to_boc()).decode(),
        "data": base64.b64encode(data.to_boc()).decode(),
        "now": NOW,
        "messages": args.messages,
        "gets": args.gets,
        "value": str(VALUE),
        "repeat": args.repeat,
    }
    try:
        js = run_node("sandbox_throughput.js", request)
    except NodeRunError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    js_records = js.pop("records")

    def rates(r: dict) -> tuple[float, float]:
        return args.messages / r["messages_s"], args.gets / r["gets_s"]

    py_msg, py_get = rates(py)
    js_msg, js_get = rates(js)
    py_msg1, py_get1 = rates(py["first"])
    js_msg1, js_get1 = rates(js["first"])
    rows = [
        ("measure", "this sandbox", "@ton/sandbox", "ratio"),
        ("message round trips / s (best of N)", f"{py_msg:,.0f}", f"{js_msg:,.0f}", f"{py_msg / js_msg:.1f}x"),
        ("transactions / s (best of N)", f"{2 * py_msg:,.0f}", f"{2 * js_msg:,.0f}", f"{py_msg / js_msg:.1f}x"),
        ("get-method calls / s (best of N)", f"{py_get:,.0f}", f"{js_get:,.0f}", f"{py_get / js_get:.1f}x"),
        ("message round trips / s (first pass)", f"{py_msg1:,.0f}", f"{js_msg1:,.0f}", f"{py_msg1 / js_msg1:.1f}x"),
        ("get-method calls / s (first pass)", f"{py_get1:,.0f}", f"{js_get1:,.0f}", f"{py_get1 / js_get1:.1f}x"),
        ("setup (create + treasury) s", f"{py['setup_s']:.3f}", f"{js['setup_s']:.3f}", ""),
    ]
    w = [max(len(r[i]) for r in rows) for i in range(4)]
    for n, r in enumerate(rows):
        print("  ".join(c.ljust(w[i]) if i == 0 else c.rjust(w[i]) for i, c in enumerate(r)))
        if n == 0:
            print("  ".join("-" * x for x in w))

    diffs = []
    if len(py_records) != len(js_records):
        diffs.append(f"transaction count differs: {len(py_records)} vs {len(js_records)}")
    for i, (a, b) in enumerate(zip(py_records, js_records, strict=False)):
        for key in ("exit", "gas", "fees", "state"):
            if a[key] != b[key]:
                diffs.append(f"tx {i}: {key} {a[key]} != {b[key]}")
    if py["last_get"] != js["last_get"]:
        diffs.append(f"last get-method result {py['last_get']} != {js['last_get']}")
    compared = min(len(py_records), len(js_records))
    if diffs:
        print(f"DISAGREEMENT in {len(diffs)} field(s) over {compared} transactions:")
        for d in diffs[:20]:
            print("  " + d)
    else:
        print(f"agreement: {compared} transactions identical (exit code, gas, total fees, state hash)")

    out = {
        "messages": args.messages,
        "gets": args.gets,
        "repeat": args.repeat,
        "this_sandbox": py,
        "ton_sandbox": js,
        "ratio_messages": py_msg / js_msg,
        "ratio_gets": py_get / js_get,
        "ratio_messages_first_pass": py_msg1 / js_msg1,
        "ratio_gets_first_pass": py_get1 / js_get1,
        "transactions_compared": compared,
        "differences": diffs,
        "ratios": {"messages": py_msg / js_msg, "gets": py_get / js_get,
                   "messages_first_pass": py_msg1 / js_msg1, "gets_first_pass": py_get1 / js_get1},
    }
    write_result(args.out, out, announce=False)
    return 1 if diffs else 0


if __name__ == "__main__":
    sys.exit(main())

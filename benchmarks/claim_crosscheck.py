"""A reward claim on a Merkle sum tree, in this sandbox and in @ton/sandbox: do they agree?

Runs benchmarks/claim_gas.py's `measure()` (deploy Root and RewardPool, fund the pool,
register the claimer's Provider, post the epoch report of a full 2^N-leaf tree, claim),
capturing the chain just before the claim: every account's ShardAccount BOC, the logical
time, the clock, the random seed, the config, and the claim's external message exactly as
sent. @ton/sandbox (benchmarks/claim_crosscheck.js) loads that state and sends the same
message BOC; a fresh Python sandbox loaded from the same export replays it too. Every
transaction is compared (account, lt, exit code, gas used, total fees, the account state
hash after it, the transaction hash), then every account's final state hash. One known
difference is checked and reported, not failed: @ton/sandbox delivers each internal message
re-serialized by @ton/core (body inline where it fits) instead of the cell the sender's
transaction emitted, which changes the receiving transaction's hash (in_msg) and nothing
else. Writes benchmarks/results/claim_crosscheck.json; exits 1 on any other difference.

    .venv/bin/python benchmarks/claim_crosscheck.py [--log2-leaves 10]
"""

from __future__ import annotations

import argparse
import base64
import sys
import time
from pathlib import Path
from unittest import mock

from pytoniq_core import Cell
from pytoniq_core.tlb.transaction import MessageAny

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks._common import write_result  # noqa: E402
from benchmarks._node import NodeRunError, run_node  # noqa: E402
from benchmarks.claim_gas import measure  # noqa: E402
from offchain.ton.blockchain import Blockchain, Snapshot  # noqa: E402
from offchain.ton.transaction import SendResult, Transaction, raw  # noqa: E402
from tests.contracts.payments import PayEnv  # noqa: E402

FIELDS = ("account", "lt", "exit", "gas", "fees", "state")  # must agree; the transaction hash is checked apart


def tx_record(tx: Transaction) -> dict:
    # Transaction refs: ^[in_msg out_msgs], (extra currencies), ^HASH_UPDATE, ^description
    update = tx.cell.refs[-2].begin_parse()
    update.skip_bits(8 + 256)  # update_hashes#72 old_hash
    return {
        "account": tx.address,
        "lt": str(tx.lt),
        "exit": tx.exit_code,
        "gas": tx.gas_used,
        "fees": str(tx.total_fees),
        "state": update.load_bytes(32).hex(),
        "hash": tx.hash.hex(),
        "boc": tx.boc,
        "in_msg": tx.cell.refs[0].refs[0].hash.hex() if tx.cell.refs[0].bits[0] else None,
        "in_is_parent_out": tx.parent is not None
        and tx.in_message is not None
        and _boc_hash(tx.in_message.boc) in {_boc_hash(m.boc) for m in tx.parent.out_messages},
    }


def _boc_hash(boc: str) -> bytes:
    return Cell.one_from_boc(base64.b64decode(boc)).hash


def run_python_claim(log2_leaves: int) -> tuple[dict, dict, SendResult, Blockchain, float]:
    """claim_gas.measure() with PayEnv.claim wrapped: (measured, export, claim result, chain, claim ms)."""
    seen: dict = {}
    original = PayEnv.claim

    def claim(self: PayEnv, who, provider, proof, **kw) -> SendResult:
        bc = self.bc
        snap = bc.snapshot()
        seen["names"] = {
            raw(who.address): "claimer wallet",
            raw(provider.address): "Provider",
            raw(self.pool.address): "RewardPool",
            raw(self.root.address): "Root",
            raw(self.owner.address): "owner wallet",
            raw(self.treasury.address): "protocol treasury",
        }
        t0 = time.perf_counter()
        res = original(self, who, provider, proof, **kw)
        seen["ms"] = (time.perf_counter() - t0) * 1000
        seen["snap"], seen["result"], seen["bc"] = snap, res, bc
        return res

    with mock.patch.object(PayEnv, "claim", claim):
        measured = measure(log2_leaves)
    snap: Snapshot = seen["snap"]
    bc: Blockchain = seen["bc"]
    res: SendResult = seen["result"]
    first = res.transactions[0]
    assert first.external and first.in_message is not None
    export = {
        "config": bc.executor.config_boc,
        "now": snap.now,
        "lt": str(snap.lt),
        "rand_seed": bc.rand_seed.hex(),
        "accounts": dict(snap.accounts),
        "message": first.in_message.boc,
        "names": seen["names"],
    }
    return measured, export, res, bc, seen["ms"]


def replay_python(export: dict) -> list[dict]:
    """The claim on a fresh Python sandbox built from nothing but the export (what Node gets)."""
    bc = Blockchain.create(config_boc=export["config"])
    bc.load_from(Snapshot(accounts=dict(export["accounts"]), lt=int(export["lt"]), now=export["now"], transactions={}))
    bc.rand_seed = bytes.fromhex(export["rand_seed"])
    res = bc.send_message(Cell.one_from_boc(base64.b64decode(export["message"])))
    return [tx_record(t) for t in res.transactions]


def compare(a: list[dict], b: list[dict], what: str) -> list[str]:
    diffs = []
    if len(a) != len(b):
        diffs.append(f"{what}: transaction count {len(a)} != {len(b)}")
    for i, (x, y) in enumerate(zip(a, b, strict=False)):
        for k in (*FIELDS, "hash"):
            if x[k] != y[k] and not (k == "hash" and x.get("hash_note") == y.get("hash_note") == "in-msg layout"):
                diffs.append(f"{what}: tx {i} {k}: {x[k]} != {y[k]}")
    return diffs


def in_msg_layout_only(py_tx: Cell, js_tx: Cell) -> bool:
    """Do two transaction cells differ only in how their inbound message is serialized?

    True when everything but the in_msg cell is bit-identical and both in_msg cells are the
    same message (equal once re-serialized canonically, body inline where it fits): what
    happens when @ton/sandbox delivers an out-message re-serialized by @ton/core rather
    than the cell the sender's transaction emitted.
    """
    ma, mb = py_tx.refs[0], js_tx.refs[0]  # ^[in_msg:(Maybe ^Message) out_msgs:(HashmapE 15 ^Message)]
    if py_tx.bits != js_tx.bits or [c.hash for c in py_tx.refs[1:]] != [c.hash for c in js_tx.refs[1:]]:
        return False
    if ma.bits != mb.bits or not ma.bits[0] or [c.hash for c in ma.refs[1:]] != [c.hash for c in mb.refs[1:]]:
        return False
    ia, ib = ma.refs[0], mb.refs[0]
    canon_a = MessageAny.deserialize(ia.begin_parse()).serialize()
    canon_b = MessageAny.deserialize(ib.begin_parse()).serialize()
    return ia.hash != ib.hash and canon_a.hash == canon_b.hash


def annotate_hashes(py: list[dict], js: list[dict]) -> list[str]:
    """Mark each transaction's hash as same / in-msg layout / different; notes on the layout cases."""
    notes = []
    for i, (p, j) in enumerate(zip(py, js, strict=False)):
        if p["hash"] == j["hash"]:
            p["hash_note"] = j["hash_note"] = "same"
            continue
        py_tx, js_tx = (Cell.one_from_boc(base64.b64decode(t["boc"])) for t in (p, j))
        if in_msg_layout_only(py_tx, js_tx):
            p["hash_note"] = j["hash_note"] = "in-msg layout"
            notes.append(
                f"tx {i}: transaction hash differs only in its in_msg cell: this sandbox delivers the cell the "
                f"sender emitted (in_msg {p['in_msg'][:12]}, = the parent's out_msg: {p['in_is_parent_out']}); "
                f"@ton/sandbox delivers it re-serialized by @ton/core, body inline (in_msg {j['in_msg'][:12]}); "
                "same message, same gas/fees/state, but that account's ShardAccount.last_trans_hash differs too"
            )
        else:
            p["hash_note"] = j["hash_note"] = "DIFFERENT"
    return notes


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--log2-leaves", type=int, default=10, help="tree of 2^N leaves (default 10: 4^5 = 1024)")
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "claim_crosscheck.json"))
    args = ap.parse_args()

    print(f"building a full tree of 2^{args.log2_leaves} leaves and claiming on this sandbox ...", file=sys.stderr)
    measured, export, res, bc, py_ms = run_python_claim(args.log2_leaves)
    py = [tx_record(t) for t in res.transactions]
    touched = sorted(set(export["accounts"]) | {t["account"] for t in py})
    py_final = {a: bc.account(a).state_hash.hex() for a in touched}
    replay = replay_python(export)

    print("sending the same external message on @ton/sandbox (Node) ...", file=sys.stderr)
    request = {k: v for k, v in export.items() if k != "names"}
    try:
        js = run_node("claim_crosscheck.js", request)
    except NodeRunError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1

    names = export["names"]
    notes = annotate_hashes(py, js["transactions"])
    header = (
        "#",
        "account",
        "lt",
        "exit py/js",
        "gas py",
        "gas js",
        "fees py",
        "fees js",
        "state py",
        "state js",
        "tx hash",
    )
    rows = [header]
    for i in range(max(len(py), len(js["transactions"]))):
        p = py[i] if i < len(py) else dict.fromkeys(FIELDS, "-")
        j = js["transactions"][i] if i < len(js["transactions"]) else dict.fromkeys(FIELDS, "-")
        rows.append(
            (
                str(i),
                names.get(p["account"], p["account"][:10]),
                str(p["lt"]),
                f"{p['exit']}/{j['exit']}",
                f"{p['gas']:,}" if isinstance(p["gas"], int) else "-",
                f"{j['gas']:,}" if isinstance(j["gas"], int) else "-",
                f"{int(p['fees']):,}" if p["fees"] != "-" else "-",
                f"{int(j['fees']):,}" if j["fees"] != "-" else "-",
                p["state"][:12],
                j["state"][:12],
                p.get("hash_note", "-"),
            )
        )
    sum_py = (sum(t["gas"] for t in py), sum(int(t["fees"]) for t in py))
    sum_js = (sum(t["gas"] for t in js["transactions"]), sum(int(t["fees"]) for t in js["transactions"]))
    rows.append(
        ("", "total", "", "", f"{sum_py[0]:,}", f"{sum_js[0]:,}", f"{sum_py[1]:,}", f"{sum_js[1]:,}", "", "", "")
    )
    w = [max(len(r[i]) for r in rows) for i in range(len(header))]
    print(
        f"claim on a full tree of {measured['leaves']:,} leaves (depth {measured['depth']}, proof "
        f"{measured['proof_bytes']} bytes / {measured['proof_cells']} cells)"
    )
    for n, r in enumerate(rows):
        print("  ".join(c.ljust(w[i]) if i == 1 else c.rjust(w[i]) for i, c in enumerate(r)))
        if n == 0 or n == len(rows) - 2:
            print("  ".join("-" * x for x in w))

    diffs = compare(py, js["transactions"], "@ton/sandbox")
    diffs += compare(py, replay, "python replay from export")
    for a in touched:
        if py_final[a] != js["final"].get(a):
            diffs.append(f"final state of {names.get(a, a)}: {py_final[a]} != {js['final'].get(a)}")
    diffs += [
        f"@ton/core re-serialized the exported account {names.get(a, a)} differently"
        for a, ok in js["loaded_exact"].items()
        if not ok
    ]
    if not all(t["exit"] == 0 for t in py):
        diffs.append("the claim did not succeed in every transaction")
    print(
        f"config: our config.boc {'is' if js['config_is_default'] else 'is NOT'} @ton/sandbox's default config; "
        f"now={export['now']} lt={export['lt']} rand_seed=0x{export['rand_seed'][:8]}..."
    )
    for n in notes:
        print("note: " + n)
    print(
        f"claim time: this sandbox {py_ms:.1f} ms, @ton/sandbox {js['claim_ms']:.1f} ms "
        "(its first emulation in the Node process: includes the WASM emulator's warm-up)"
    )
    if diffs:
        print(f"DISAGREEMENT in {len(diffs)} field(s):")
        for d in diffs[:30]:
            print("  " + d)
    else:
        same = sum(t.get("hash_note") == "same" for t in py)
        print(
            f"agree: {len(py)} transactions identical in exit code, gas, total fees and state hash "
            f"({same} of them bit-identical, the rest see the note); final state of {len(touched)} accounts "
            "identical; a replay from the export matches this sandbox bit for bit"
        )

    out = {
        "log2_leaves": args.log2_leaves,
        "measured": measured,
        "now": export["now"],
        "lt": export["lt"],
        "rand_seed": export["rand_seed"],
        "config_is_ton_sandbox_default": js["config_is_default"],
        "accounts": {a: names.get(a, "") for a in touched},
        "this_sandbox": {"transactions": py, "final": py_final, "claim_ms": py_ms},
        "python_replay": {"transactions": replay},
        "ton_sandbox": js,
        "totals": {
            "this_sandbox": {"gas": sum_py[0], "fees": sum_py[1]},
            "ton_sandbox": {"gas": sum_js[0], "fees": sum_js[1]},
        },
        "differences": diffs,
        "notes": notes,
        # 1.0 each: this sandbox must charge exactly what @ton/sandbox charges
        "ratios": {"gas_vs_ton_sandbox": sum_py[0] / sum_js[0], "fees_vs_ton_sandbox": sum_py[1] / sum_js[1]},
    }
    write_result(args.out, out, announce=False)
    if diffs:
        print(f"error: the emulators disagree on the claim ({len(diffs)} difference(s)); see above", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

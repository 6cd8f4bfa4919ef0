"""Claim gas against the number of providers: a full 2^20-leaf Merkle sum tree vs 2^4.

Builds a tree with every one of its 2^N leaves a distinct provider (synthetic addresses;
the claiming provider is a real gpu Provider contract registered through Root), posts the
epoch report with a 3-of-5 validator quorum on the sandbox, claims, and prints the proof
size and the claim's gas (summed over its transactions except the owner wallet's) and
fees. Writes benchmarks/results/claim_gas.json.

The tree's root has the four role subtrees as children, so a path is 1 + ceil(log4(n))
levels for a role of n leaves: each size is measured with the leaves spread over the four
roles (2^(N-2) a role, the path as long as a plain 4-ary tree of 2^N) and with all of
them in the gpu role (one level more: the worst case for N leaves).

    .venv/bin/python benchmarks/claim_gas.py [--log2-leaves 4 20]
"""

from __future__ import annotations

import argparse
import hashlib
import sys
import time
from pathlib import Path

from pytoniq_core import Address, Cell

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks._common import write_result  # noqa: E402
from offchain.protocol.epoch import split_revenue  # noqa: E402
from offchain.protocol.merkle import Leaf, MerkleSumTree  # noqa: E402
from offchain.ton.blockchain import Blockchain, ton  # noqa: E402
from offchain.ton.build import code_cell  # noqa: E402
from offchain.ton.pytest_plugin import SANDBOX_NOW  # noqa: E402
from tests.contracts.conftest import deploy_payments, pay_env  # noqa: E402
from tests.contracts.payments import PayEnv, fund_pool, register_provider  # noqa: E402
from wrappers.messages import ComputeSplit, DataSplit  # noqa: E402
from wrappers.provider import Role  # noqa: E402


def deploy() -> PayEnv:
    """The payment stack the contract tests use (tests/contracts/conftest.py)."""
    bc = Blockchain.create(now=SANDBOX_NOW)
    provider_code = code_cell("Provider")
    root, pool, keys = deploy_payments(bc, code_cell("Root"), provider_code)
    return pay_env(bc, root, pool, keys, provider_code)


def measure(log2_leaves: int, spread: bool = True) -> dict:
    """`spread`: the leaves spread over the four roles (the default, as claim_crosscheck.py
    runs it); otherwise all gpu."""
    pay = deploy()
    fund_pool(pay, ton(100), ton(100))
    who = pay.bc.treasury("claimer")
    p = register_provider(pay, who, Role.GPU)
    allocated = split_revenue(ton(100), ton(100), ComputeSplit(7000, 1500, 1000, 500), DataSplit(7000, 1500, 1000, 500))
    n = 1 << log2_leaves
    roles = list(Role)
    t0 = time.perf_counter()
    leaves = [Leaf(p.address, Role.GPU, ton(1))]
    leaves += [
        Leaf(
            Address((0, hashlib.sha256(i.to_bytes(4, "big")).digest())),
            roles[i % 4] if spread else Role.GPU,
            1 + i % 100,
        )
        for i in range(1, n)
    ]
    tree = MerkleSumTree(leaves)
    build_s = time.perf_counter() - t0
    assert all(t <= allocated.of(r) for r, t in zip(roles, tree.role_totals, strict=True))
    pay.adopt(tree, compute=ton(100), data=ton(100))
    proof = tree.proof(0)
    res = pay.claim(who, p, proof)
    assert all(t.success for t in res.transactions), res.tree()
    return {
        "leaves": n,
        "roles": "4 roles" if spread else "gpu only",
        "depth": tree.depth,
        "proof_bytes": proof.size_bytes(),
        "proof_cells": count_cells(proof.cell),
        "claim_gas": res.gas(),
        "claim_fees": res.fees(),
        "claim_gas_per_tx": [t.gas_used for t in res.transactions[1:]],
        "tree_build_s": build_s,
    }


def count_cells(cell: Cell) -> int:
    """Distinct cells in a proof (what its forwarding fee is charged on)."""
    seen: set[bytes] = set()
    todo = [cell]
    while todo:
        c = todo.pop()
        if c.hash not in seen:
            seen.add(c.hash)
            todo.extend(c.refs)
    return len(seen)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--log2-leaves", type=int, nargs="+", default=[4, 20])
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "claim_gas.json"))
    args = ap.parse_args()
    rows = []
    for d in args.log2_leaves:
        for spread in (True, False):
            print(
                f"building a full tree of 2^{d} leaves ({'4 roles' if spread else 'gpu only'}) and claiming ...",
                file=sys.stderr,
                flush=True,
            )
            rows.append(measure(d, spread))
    header = (
        "leaves",
        "roles",
        "depth",
        "proof bytes",
        "proof cells",
        "claim gas",
        "claim fees (nanoTON)",
        "tree build s",
    )
    table = [header] + [
        (
            f"{r['leaves']:,}",
            r["roles"],
            str(r["depth"]),
            str(r["proof_bytes"]),
            str(r["proof_cells"]),
            f"{r['claim_gas']:,}",
            f"{r['claim_fees']:,}",
            f"{r['tree_build_s']:.1f}",
        )
        for r in rows
    ]
    w = [max(len(row[i]) for row in table) for i in range(len(header))]
    for i, row in enumerate(table):
        print("  ".join(c.rjust(w[j]) for j, c in enumerate(row)))
        if i == 0:
            print("  ".join("-" * x for x in w))
    if len(rows) >= 2:
        a, b = min(rows, key=lambda r: r["depth"]), max(rows, key=lambda r: r["depth"])
        per_level = (b["claim_gas"] - a["claim_gas"]) / (b["depth"] - a["depth"])
        print(f"gas per extra tree level: {per_level:,.0f} (the claim grows with log4(N) only)")
    ratios = {"claim_gas_largest_vs_smallest_tree": rows[-1]["claim_gas"] / rows[0]["claim_gas"]} if rows else {}
    if len(rows) >= 2:
        ratios["claim_gas_one_role_vs_four_at_largest"] = rows[-1]["claim_gas"] / rows[-2]["claim_gas"]
    write_result(args.out, {"ratios": ratios, "runs": rows}, announce=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())

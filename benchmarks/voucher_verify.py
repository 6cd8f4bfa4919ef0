"""The router's voucher check (`Account.admit`) vs a raw PyNaCl verify, and the cost of persisting.

- admit: the router's real code path for a request's voucher (`offchain.router._core.Account.admit`:
  staleness checks, `voucher_digest` (the Voucher cell's hash), `VerifyKey(...).verify`,
  deposit and coverage checks, the reservation), on a fresh, higher voucher every call, as
  under load where every request carries a new one. All vouchers are signed beforehand.
- raw verify: `nacl.signing.VerifyKey.verify` of the same number of 32-byte messages (the very
  same digests and signatures), the key built once: the floor the admit path stands on.
- persist (reported, no goal): `RouterStore.write([op_voucher(v)])` (SQLite, WAL,
  `synchronous=FULL`: on disk when it returns) in a temp dir, one voucher at a time, then
  16 concurrent writers (group commit: writes staged during a commit share the next one).

Each timed side takes the best of `--repeat` passes (other programs on the machine can only
slow a pass down); admit and raw passes alternate. Prints a table and writes
benchmarks/results/voucher_verify.json; `ratios`: each rate over the raw verify rate.

    .venv/bin/python benchmarks/voucher_verify.py [--n 4000] [--persist 400] [--repeat 5]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
from pathlib import Path

from nacl.signing import SigningKey, VerifyKey
from pytoniq_core import Address

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks._common import machine, write_result  # noqa: E402
from offchain.protocol.voucher import SignedVoucher, sign_voucher  # noqa: E402
from offchain.router._core import Account  # noqa: E402
from offchain.router._store import RouterStore  # noqa: E402

CHANNEL = Address("0:" + "5c" * 32)
PRICE = 38_000  # nanoTON: what a 2-sentence MiniLM request reserves at the devnet's prices
GOAL = 0.80
WRITERS = 16


def make_vouchers(key: SigningKey, n: int) -> list[SignedVoucher]:
    """`n` cumulative vouchers, each covering one more request of `PRICE`."""
    return [sign_voucher(key, CHANNEL, compute=(i + 1) * PRICE, data=0) for i in range(n)]


def admit_pass(client_key: bytes, vouchers: list[SignedVoucher]) -> float:
    """Seconds to admit every voucher on a fresh account (each one new and covering its request)."""
    acc = Account(channel=CHANNEL, client_key=client_key, deposit=10**18)
    admit = acc.admit
    t0 = time.perf_counter()
    for v in vouchers:
        _, new = admit(v, compute=PRICE)
        if not new:
            raise AssertionError("voucher not seen as new")
    return time.perf_counter() - t0


def raw_pass(client_key: bytes, messages: list[bytes], signatures: list[bytes]) -> float:
    vk = VerifyKey(client_key)
    verify = vk.verify
    t0 = time.perf_counter()
    for m, s in zip(messages, signatures, strict=True):
        verify(m, s)
    return time.perf_counter() - t0


async def persist_single(store: RouterStore, vouchers: list[SignedVoucher]) -> float:
    t0 = time.perf_counter()
    for v in vouchers:
        await store.write([store.op_voucher(v)])
    return time.perf_counter() - t0


async def persist_concurrent(store: RouterStore, vouchers: list[SignedVoucher], writers: int) -> float:
    async def writer(k: int) -> None:
        for v in vouchers[k::writers]:
            await store.write([store.op_voucher(v)])

    t0 = time.perf_counter()
    await asyncio.gather(*(writer(k) for k in range(writers)))
    return time.perf_counter() - t0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=4000, help="vouchers per admit / raw pass")
    ap.add_argument("--persist", type=int, default=400, help="vouchers per persist pass")
    ap.add_argument("--repeat", type=int, default=5, help="passes per side (the best counts)")
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "voucher_verify.json"))
    args = ap.parse_args()

    key = SigningKey.generate()
    client_key = bytes(key.verify_key)
    print(f"signing {args.n} vouchers ...", file=sys.stderr)
    vouchers = make_vouchers(key, args.n)
    messages = [v.message_hash() for v in vouchers]
    signatures = [v.signature for v in vouchers]
    assert all(len(m) == 32 for m in messages)

    admit_s: list[float] = []
    raw_s: list[float] = []
    for _ in range(args.repeat):  # alternate, so drifting load hits both sides alike
        raw_s.append(raw_pass(client_key, messages, signatures))
        admit_s.append(admit_pass(client_key, vouchers))
    raw_rate = args.n / min(raw_s)
    admit_rate = args.n / min(admit_s)

    print(f"persisting {args.persist} vouchers (single, then {WRITERS} writers) ...", file=sys.stderr)
    single_s: list[float] = []
    group_s: list[float] = []
    commits: list[int] = []
    batch = make_vouchers(key, args.persist)
    with tempfile.TemporaryDirectory(prefix="voucher-bench-") as tmp:
        for r in range(args.repeat):
            store = RouterStore(Path(tmp) / f"single{r}.db")
            try:
                single_s.append(asyncio.run(persist_single(store, batch)))
            finally:
                store.close()
            store = RouterStore(Path(tmp) / f"group{r}.db")
            try:
                group_s.append(asyncio.run(persist_concurrent(store, batch, WRITERS)))
                commits.append(store.commits)
            finally:
                store.close()
    single_rate = args.persist / min(single_s)
    group_rate = args.persist / min(group_s)
    best_group = group_s.index(min(group_s))

    ratios = {
        "voucher_verify": admit_rate / raw_rate,
        "voucher_persist_single": single_rate / raw_rate,
        f"voucher_persist_{WRITERS}_writers": group_rate / raw_rate,
    }
    rows = [
        ("measure", "per second", "us each", "vs raw verify"),
        ("raw PyNaCl VerifyKey.verify, 32-byte message", f"{raw_rate:,.0f}", f"{1e6 / raw_rate:.1f}", "1.00"),
        (
            "Account.admit (digest + verify + checks), fresh voucher",
            f"{admit_rate:,.0f}",
            f"{1e6 / admit_rate:.1f}",
            f"{ratios['voucher_verify']:.2f}",
        ),
        (
            "RouterStore.write([op_voucher]) one at a time",
            f"{single_rate:,.0f}",
            f"{1e6 / single_rate:.1f}",
            f"{ratios['voucher_persist_single']:.3f}",
        ),
        (
            f"RouterStore.write, {WRITERS} concurrent writers (group commit)",
            f"{group_rate:,.0f}",
            f"{1e6 / group_rate:.1f}",
            f"{ratios[f'voucher_persist_{WRITERS}_writers']:.3f}",
        ),
    ]
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    table = Table(
        title=f"voucher checks ({args.n} per pass) and persistence ({args.persist} per pass), best of {args.repeat}"
    )
    for i, h in enumerate(rows[0]):
        table.add_column(h, justify="left" if i == 0 else "right")
    for r in rows[1:]:
        table.add_row(*(escape(c) for c in r))
    Console(width=160).print(table)
    print(
        f"\nvoucher_verify = {ratios['voucher_verify']:.2f} (goal >= {GOAL:.2f}: "
        f"{'met' if ratios['voucher_verify'] >= GOAL else 'MISSED'}); group commit: "
        f"{args.persist} vouchers in {commits[best_group]} commits"
    )

    doc = {
        "benchmark": "voucher_verify",
        "workload": (
            f"{args.n} cumulative vouchers signed beforehand; admit: a fresh Account admits each (new, higher, "
            f"covering a {PRICE}-nanoTON request); raw: VerifyKey.verify of the same {args.n} 32-byte digests "
            f"and signatures, key built once; persist: {args.persist} vouchers via RouterStore.write in a temp dir"
        ),
        "n": args.n,
        "persist_n": args.persist,
        "repeat": args.repeat,
        "machine": machine(),
        "loadavg_after": os.getloadavg(),
        "rates_per_s": {
            "raw_verify": raw_rate,
            "admit": admit_rate,
            "persist_single": single_rate,
            f"persist_{WRITERS}_writers": group_rate,
        },
        "passes_s": {"raw_verify": raw_s, "admit": admit_s, "persist_single": single_s, "persist_group": group_s},
        "group_commits": commits,
        "goal": {"voucher_verify": GOAL},
        "ratios": ratios,
    }
    write_result(args.out, doc)
    return 0


if __name__ == "__main__":
    sys.exit(main())

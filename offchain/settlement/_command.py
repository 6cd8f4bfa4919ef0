"""`cocoon epoch show [N] [--dir epochs] [--json]` and
`cocoon epoch verify N [--dir epochs] [--network NAME --url URL --root ADDR]`.

show: what the published epochs paid: one line per epoch, then epoch N's (default: the
latest) split per role and every provider's amount and cumulative total, from
epochs/N/result.json (what the validators signed); `--json` prints that summary.

verify, offline: settles epochs/N/inputs.json again and compares the tree and every provider's
entry with result.json and tree.json. With `--network`, also with the root the pool
(inputs.json's `pool`) adopted for epoch N; with `--root`, the pool must be that Root's.
A table and exit 0 when everything matches; one line naming every difference and exit 1
otherwise.
"""

from __future__ import annotations

import argparse
import asyncio
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import msgspec
from rich.console import Console
from rich.table import Table

from offchain.errors import ConfigError, GetMethodError
from offchain.settlement._inputs import SettlementError, raw_address

__all__ = ["add_epoch_command"]


def _print(table: Table) -> None:
    console = Console()
    (console if console.is_terminal else Console(width=140)).print(table)


async def _adopted(args: argparse.Namespace, pool: str) -> Any:
    from pytoniq_core import Address

    from offchain.settlement._publish import adopted_root
    from offchain.ton.network import create_network_provider
    from wrappers.root import Root

    env = dict(os.environ)
    env.pop("WALLET_MNEMONIC", None)  # reading only
    async with await create_network_provider(args.network, env=env, base_url=args.url) as net:
        if args.root:
            try:
                root = raw_address(args.root)
            except ValueError as err:
                raise ConfigError(f"--root: {args.root!r} is not a TON address") from err
            try:
                params = await Root(Address(root)).get_params(net.provider(root))
            except GetMethodError as err:
                raise SettlementError(f"{root} is not a Root: get_params failed (exit code {err.exit_code})") from err
            theirs = None if params.reward_pool is None else raw_address(params.reward_pool.to_str())
            if theirs != pool:
                raise SettlementError(f"the epoch's pool {pool} is not Root {root}'s reward pool ({theirs})")
        return await adopted_root(net, pool, args.epoch)


def _verify(args: argparse.Namespace) -> int:
    from offchain.settlement._core import settle
    from offchain.settlement._publish import read_inputs, verify_published

    if args.network is None and (args.root or args.url):
        raise ConfigError("--root and --url need --network (the chain to read the adopted root from)")
    if args.network is not None:  # `cocoon deploy`'s record of that network, when there is one
        from offchain.deployments import default_root, default_url

        args.root = default_root(args.network, args.root, required=False)
        args.url = default_url(args.network, args.url)
    folder = Path(args.dir) / str(args.epoch)
    inputs = read_inputs(folder)
    adopted = asyncio.run(_adopted(args, raw_address(inputs.pool))) if args.network else None
    problems = verify_published(
        folder,
        adopted_root_hash=None if adopted is None else adopted.merkle_root,
        adopted_root_total=None if adopted is None else adopted.root_total,
    )
    if problems:
        raise SettlementError(f"epoch {args.epoch} ({folder}) does not verify: " + "; ".join(problems))
    result = settle(inputs)
    s = result.summary
    _print(_roles_table(f"epoch {s.epoch} ({folder}): valid", msgspec.to_builtins(s.roles), s.protocol))
    chain = "not checked (offline)"
    if adopted is not None:
        chain = f"{args.network}: adopted ({adopted.where}), root and total match"
    info = Table(show_header=False)
    info.add_column()
    info.add_column(overflow="fold")
    for name, value in (
        ("pool", s.pool), ("merkle root", s.merkle_root), ("root total", f"{s.root_total:,}"),
        ("consumed", f"compute {s.compute_consumed:,}, data {s.data_consumed:,}"),
        ("leaves", len(s.allocations)), ("refused ledgers", len(s.refused)), ("report hash", s.report_hash),
        ("on chain", chain),
    ):
        info.add_row(name, str(value))
    for r in s.refused:
        info.add_row(f"refused {r.router}", "; ".join(r.problems))
    _print(info)
    return 0


def _roles_table(title: str, roles: list[dict[str, Any]], protocol: int) -> Table:
    """An epoch's split per role (RoleLine fields, as result.json holds them) and the protocol's part."""
    t = Table(title=title, title_justify="left")
    for col in ("role", "share", "carry in", "allocated", "dust (carry out)", "work weight", "providers"):
        t.add_column(col, justify="left" if col == "role" else "right")
    for r in roles:
        t.add_row(r["name"], f"{r['share']:,}", f"{r['carry_in']:,}", f"{r['allocated']:,}", f"{r['dust']:,}",
                  f"{r['weight']:,}", str(r["providers"]))
    t.add_row("protocol", f"{protocol:,}", "", "", "", "", "")
    return t


def _published(directory: Path) -> list[int]:
    """The epochs published under `directory` (a whole epoch has its result.json), sorted."""
    if not directory.is_dir():
        raise SettlementError(f"{directory}: no such epochs folder (validators publish there; see --dir)")
    return sorted(int(p.name) for p in directory.iterdir()
                  if p.name.isdigit() and (p / "result.json").is_file())


def _read_result(folder: Path) -> dict[str, Any]:
    import json

    path = folder / "result.json"
    try:
        doc = json.loads(path.read_bytes())
    except OSError as err:
        raise SettlementError(f"{path}: cannot read it ({err.strerror or err})") from err
    except ValueError as err:
        raise SettlementError(f"{path}: not JSON ({err})") from err
    if not isinstance(doc, dict) or not {"epoch", "roles", "providers", "protocol"} <= doc.keys():
        raise SettlementError(f"{path}: not an epoch result (no epoch/roles/providers/protocol)")
    return doc


def _show(args: argparse.Namespace) -> int:
    import json
    import sys

    directory = Path(args.dir)
    epochs = _published(directory)
    if not epochs:
        raise SettlementError(f"{directory}: no epoch published yet")
    n = epochs[-1] if args.epoch is None else args.epoch
    if n not in epochs:
        raise SettlementError(f"epoch {n} is not published under {directory} (published: "
                              f"{epochs[0]}..{epochs[-1]})")
    doc = _read_result(directory / str(n))
    if args.json:
        for p in doc["providers"]:
            p.pop("proof", None)
        doc.pop("report", None)
        sys.stdout.write(json.dumps(doc, indent=2) + "\n")
        return 0
    if args.epoch is None and len(epochs) > 1:
        t = Table(title=f"published epochs ({directory})", title_justify="left")
        for col in ("epoch", "compute consumed", "data consumed", "protocol", "root total", "leaves", "refused"):
            t.add_column(col, justify="right")
        for e in epochs:
            d = _read_result(directory / str(e))
            t.add_row(str(e), f"{d['compute_consumed']:,}", f"{d['data_consumed']:,}", f"{d['protocol']:,}",
                      f"{d['root_total']:,}", str(len(d["providers"])), str(len(d["refused"])))
        _print(t)
    _print(_roles_table(f"epoch {n}: the split per role (nanoTON)", doc["roles"], doc["protocol"]))
    names = {r["role"]: r["name"] for r in doc["roles"]}
    allocated = {r["role"]: r["allocated"] for r in doc["roles"]}
    prov = Table(title=f"epoch {n}: providers (cumulative = what the tree lets each claim in all)",
                 title_justify="left")
    for col in ("provider", "role", "this epoch", "of the role", "cumulative"):
        prov.add_column(col, justify="left" if col in ("provider", "role") else "right", overflow="fold")
    for p in sorted(doc["providers"], key=lambda p: (p["role"], -p["amount"])):
        part = allocated.get(p["role"]) or 0
        prov.add_row(p["provider"], names.get(p["role"], str(p["role"])), f"{p['amount']:,}",
                     f"{100 * p['amount'] / part:.1f}%" if part else "-", f"{p['cumulative']:,}")
    _print(prov)
    for r in doc["refused"]:
        Console().print(f"[red]refused[/] ledger of router {r['router']} for {r['provider']}: "
                        + "; ".join(r["problems"]))
    Console().print(f"merkle root {doc['merkle_root']}, report {doc['report_hash']}; "
                    f"re-check: cocoon epoch verify {n} --dir {directory}")
    return 0


def add_epoch_command(
    sub: argparse._SubParsersAction[argparse.ArgumentParser],
) -> Callable[[argparse.Namespace], int]:
    from offchain.ton.network import NETWORKS

    e = sub.add_parser("epoch", help="epoch settlements: show or re-check published epochs (epochs/N/)")
    esub = e.add_subparsers(dest="epoch_command", required=True)
    s = esub.add_parser("show", help="what the published epochs paid, per role and per provider")
    s.add_argument("epoch", type=int, nargs="?", help="the epoch number N (default: the latest published)")
    s.add_argument("--dir", default="epochs", help="the epochs folder (default: epochs)")
    s.add_argument("--json", action="store_true", help="epoch N's summary as JSON (without proofs)")
    v = esub.add_parser("verify", help="settle epochs/N/inputs.json again; compare with result.json, tree.json "
                                       "and (--network) the root the pool adopted")
    v.add_argument("epoch", type=int, help="the epoch number N")
    v.add_argument("--dir", default="epochs", help="the epochs folder (default: epochs)")
    v.add_argument("--network", choices=NETWORKS, help="also compare with the root the pool adopted on this network")
    v.add_argument("--url", help="API base URL (localnet/testnet/mainnet)")
    v.add_argument("--root", help="the Root whose reward pool the epoch's pool must be")
    return lambda args: (_show if args.epoch_command == "show" else _verify)(args)

"""`cocoon epoch verify N [--dir epochs] [--network NAME --url URL --root ADDR]`.

Offline: settles epochs/N/inputs.json again and compares the tree and every provider's
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
    t = Table(title=f"epoch {s.epoch} ({folder}): valid")
    for col in ("role", "share", "carry in", "allocated", "dust (carry out)", "weight", "providers"):
        t.add_column(col, justify="left" if col == "role" else "right")
    for line in s.roles:
        t.add_row(line.name, f"{line.share:,}", f"{line.carry_in:,}", f"{line.allocated:,}", f"{line.dust:,}",
                  f"{line.weight:,}", str(line.providers))
    t.add_row("protocol", f"{s.protocol:,}", "", "", "", "", "")
    _print(t)
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


def add_epoch_command(
    sub: argparse._SubParsersAction[argparse.ArgumentParser],
) -> Callable[[argparse.Namespace], int]:
    from offchain.ton.network import NETWORKS

    e = sub.add_parser("epoch", help="epoch settlements: re-check a published epoch (epochs/N/)")
    esub = e.add_subparsers(dest="epoch_command", required=True)
    v = esub.add_parser("verify", help="settle epochs/N/inputs.json again; compare with result.json, tree.json "
                                       "and (--network) the root the pool adopted")
    v.add_argument("epoch", type=int, help="the epoch number N")
    v.add_argument("--dir", default="epochs", help="the epochs folder (default: epochs)")
    v.add_argument("--network", choices=NETWORKS, help="also compare with the root the pool adopted on this network")
    v.add_argument("--url", help="API base URL (localnet/testnet/mainnet)")
    v.add_argument("--root", help="the Root whose reward pool the epoch's pool must be")
    return _verify

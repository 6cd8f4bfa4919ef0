"""Pieces the benchmarks share: writing a result, the table, a devnet client, the embed load loop."""

from __future__ import annotations

import asyncio
import json
import os
import platform
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from offchain.client import CocoonClient
    from offchain.devnet import Devnet
    from offchain.ton.network import NetworkProvider

ROOT = Path(__file__).resolve().parents[1]


def machine() -> dict[str, Any]:
    """The `machine` record of a result: Python version, CPU count, platform."""
    return {"python": platform.python_version(), "cpus": os.cpu_count(), "platform": platform.platform()}


def write_result(out: str | Path, doc: dict[str, Any], *, announce: bool = True) -> Path:
    """Write `doc` (a result, with its `ratios`) as indented JSON to `out`, making its folder.

    With `announce`, says "wrote <path>" on stderr (relative to the repository where it is in it).
    """
    path = Path(out)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(doc, indent=2) + "\n")
    if announce:
        print(f"wrote {path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}", file=sys.stderr)
    return path


def print_table(rows: list[tuple[str, ...]], *, title: str, width: int = 200) -> None:
    """`rows[0]` is the header; a rich table where rich is installed, plain columns otherwise."""
    try:
        from rich.console import Console
        from rich.table import Table
    except ImportError:
        w = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
        print(title)
        for n, r in enumerate(rows):
            print("  ".join(c.ljust(w[i]) if i == 0 else c.rjust(w[i]) for i, c in enumerate(r)))
            if n == 0:
                print("  ".join("-" * x for x in w))
        return
    table = Table(title=title)
    for i, h in enumerate(rows[0]):
        table.add_column(h, justify="left" if i == 0 else "right")
    for r in rows[1:]:
        table.add_row(*r)
    Console(width=width).print(table)


async def devnet_network(devnet: Devnet, wallet: int | None = None) -> NetworkProvider:
    """A localnet network provider on the devnet, sending from localnet wallet `wallet`
    (default: the devnet's client wallet). The caller closes it."""
    from offchain.ton._wallet import localnet_mnemonic
    from offchain.ton.network import create_network_provider

    w = devnet.client_wallet if wallet is None else wallet
    env = {"WALLET_MNEMONIC": " ".join(localnet_mnemonic(w)), "WALLET_VERSION": "v5r1"}
    return await create_network_provider("localnet", base_url=devnet.api_url, env=env)


def devnet_client(devnet: Devnet, net: NetworkProvider, store: Path, **config: Any) -> CocoonClient:
    """A `CocoonClient` for the devnet's router, paying from `net`'s wallet with a fresh channel key;
    `config` adds `ClientConfig` settings (e.g. `seal`)."""
    import nacl.signing

    from offchain.client import CocoonClient
    from offchain.client._client import ClientConfig

    return CocoonClient(
        ClientConfig(
            devnet.router["url"],
            devnet.root,
            devnet.router["address"],
            router_key=bytes.fromhex(devnet.router["router_key"]),
            **config,
        ),
        chain=net.chain,
        wallet=net.sender(),
        channel_key=nacl.signing.SigningKey.generate(),
        store=store,
    )


async def embed_load(
    client: CocoonClient, texts: list[str], *, model: str, tasks: int, per: int, seconds: float
) -> tuple[int, float]:
    """`tasks` concurrent loops of `client.embed(per sentences)` over slices of `texts` for `seconds`.

    Returns (sentences embedded, seconds taken).
    """
    n_texts = len(texts)
    counts = [0] * tasks
    stop_at = 0.0

    async def loop(k: int) -> None:
        j = k * 7
        while time.perf_counter() < stop_at:
            start = (j * per) % (n_texts - per)
            r = await client.embed(texts[start : start + per], model=model)
            if r.vectors.shape[0] != per:
                raise RuntimeError(f"got {r.vectors.shape[0]} vectors for {per} inputs")
            counts[k] += per
            j += 1

    t0 = time.perf_counter()
    stop_at = t0 + seconds
    await asyncio.gather(*(loop(k) for k in range(tasks)))
    return sum(counts), time.perf_counter() - t0

"""`cocoon search "words"` and `cocoon index verify DIR`.

search: the query is embedded by a worker through the network (sealed, paid from the
profile's channel: `<dir>/client.json`, written by `cocoon devnet`), and the nearest pages
of the index are printed with their score and provenance (when, through which node, the
site's certificate hash). `--json` prints `{"query", "hits": [...]}`.

index verify: the index files against their manifest and the dataset, a sample of vectors
recomputed with the model here (onnxruntime), and with `--network` the index's anchor.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import datetime
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from offchain.errors import DatasetError

__all__ = ["add_index_commands"]


def _search(args: argparse.Namespace) -> int:
    from offchain.client._profile import open_profile_client
    from offchain.index._index import SemanticIndex
    from offchain.index._package import search

    where = Path(args.index) if args.index else Path(args.dir) / "package"
    SemanticIndex.open(where)  # a missing index fails here, before any channel is opened

    async def run() -> list[Any]:
        async with open_profile_client(Path(args.dir) / "client.json") as client:
            return await search(client, where, args.query, k=args.k)

    hits = asyncio.run(run())
    if args.json:
        print(json.dumps({"query": args.query, "hits": [dataclasses.asdict(h) for h in hits]}, indent=2))
        return 0
    t = Table(title=f'"{args.query}": {len(hits)} nearest pages ({where})', title_justify="left")
    for c in ("#", "score", "url", "provenance"):
        t.add_column(c, overflow="fold")
    for h in hits:
        when = datetime.datetime.fromtimestamp(h.fetched_at, datetime.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
        t.add_row(str(h.rank), f"{h.score:.3f}", h.url,
                  f"fetched {when} through node {h.node[:12]}…, certificate sha256 {h.cert_sha256[:16]}…")
    Console().print(t)
    return 0


def _verify(args: argparse.Namespace) -> int:
    from offchain.dataset import check_anchor_digest
    from offchain.index._index import index_digest, verify_index
    from offchain.models import builtin_models, load_model

    embed: Callable[[list[str]], Any] | None = None
    if args.sample:
        m = load_model(builtin_models()[json.loads((Path(args.dir) / "index" / "index.json").read_text())["model"]])
        embed = m.embed
    manifest = verify_index(args.dir, embed=embed, sample=args.sample)
    anchor = "not checked (offline)"
    if args.network:
        from offchain.deployments import default_root, default_url
        from offchain.ton.network import create_network_provider

        if manifest.anchor is None:
            raise DatasetError("the index has no anchor", where="index.json")

        async def check() -> str | None:
            async with await create_network_provider(args.network, env={},
                                                     base_url=default_url(args.network, args.url)) as net:
                root = args.root or default_root(args.network, None, required=False)
                return await check_anchor_digest(net, manifest.anchor, index_digest(manifest), root=root)

        why = asyncio.run(check())
        if why is not None:
            raise DatasetError(why, where="index anchor")
        anchor = f"checked: {manifest.anchor.network}, lt {manifest.anchor.lt}"
    t = Table(title=f"semantic index {args.dir}/index: valid", show_header=False)
    t.add_column()
    t.add_column(overflow="fold")
    for k, v in (("vectors", manifest.count), ("model", manifest.model), ("dim", manifest.dim),
                 ("dataset digest", manifest.dataset), ("requests (receipts)", len(manifest.receipts)),
                 ("workers", len({r.worker for r in manifest.receipts})),
                 ("recomputed here", f"{min(args.sample, manifest.count)} vectors, cosine >= 0.99"),
                 ("compute cost (nanoTON)", f"{manifest.compute_cost:,}"), ("anchor", anchor)):
        t.add_row(k, str(v))
    Console().print(t)
    return 0


def add_index_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> dict[str, Callable[..., int]]:
    from offchain.ton.network import NETWORKS

    s = sub.add_parser("search", help="the pages of a semantic index nearest to a query (embedded by a worker)")
    s.add_argument("query")
    s.add_argument("--dir", default=".cocoon/devnet",
                   help="folder with client.json and package/ (default %(default)s: `cocoon devnet`'s)")
    s.add_argument("--index", help="the indexed dataset's folder (default: DIR/package)")
    s.add_argument("-k", type=int, default=5, help="pages to show (default %(default)s)")
    s.add_argument("--json", action="store_true", help="print JSON")
    i = sub.add_parser("index", help="semantic indexes (a dataset + embeddings + a faiss index)")
    isub = i.add_subparsers(dest="index_command", required=True)
    v = isub.add_parser("verify", help="check an index against its manifest, its dataset and the model")
    v.add_argument("dir", help="the indexed dataset's folder (with index/)")
    v.add_argument("--sample", type=int, default=4, help="vectors to recompute here (default %(default)s; 0: none)")
    v.add_argument("--network", choices=NETWORKS, help="also check the index's anchor on this network")
    v.add_argument("--url", help="API base URL (default on localnet: the recorded deployment's)")
    v.add_argument("--root", help="the Root the anchor must be on (default: the recorded deployment's)")
    return {"search": _search, "index": _verify}

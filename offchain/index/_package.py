"""A data + compute package through one channel: crawl, embed every page, index, anchor;
and answering a query from the index through the network.

    index = await buy_package(client, spec, "DIR")       # DIR: the dataset + DIR/index/
    hits = await search(client, "DIR", "some words", k=5)  # the query embedded by a worker
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from offchain.dataset import Anchor, Dataset, anchor_digest
from offchain.index._index import (
    Hit,
    IndexManifest,
    ReceiptLine,
    SemanticIndex,
    index_digest,
    index_text,
    write_index,
    write_index_anchor,
)
from offchain.models import model_hash
from offchain.protocol.wire import CrawlSpec

__all__ = ["Package", "buy_package", "search"]

BATCH = 4  # texts per embedding request: small batches spread over the workers
CONCURRENCY = 6  # requests in flight at once


@dataclass(frozen=True)
class Package:
    directory: Path
    pages: int
    charged_data: int  # what the crawl cost (nanoTON)
    charged_compute: int  # what the embeddings cost
    manifest: IndexManifest
    dataset_anchor: Anchor | None
    workers: int  # distinct workers that embedded


async def buy_package(client: Any, spec: CrawlSpec, directory: str | os.PathLike[str], *,
                      model: str = "all-MiniLM-L6-v2", max_cost: int | None = None, anchor: bool = True,
                      progress: Callable[[str], None] = lambda _: None) -> Package:
    """Crawl `spec` into `directory` (a verified, anchored dataset), embed every page on the
    workers (sealed requests, batches of BATCH, CONCURRENCY at once), write the index
    (offchain/index/_index.py) and anchor its manifest's digest through Root.

    Raises:
        RequestFailed: the crawl or an embedding failed (nothing of the index is written).
    """
    path = Path(directory)
    data_before, compute_before = client.charged_data, client.charged_compute
    progress("crawling through the data nodes (validator-held TLS)")
    dataset: Dataset = await client.crawl(spec, path, max_cost=max_cost, anchor=anchor)
    rows = list(dataset.rows())
    texts = [index_text(r.signed.record.url, r.signed.record.main_text) for r in rows]
    vectors = np.zeros((len(texts), 0), dtype=np.float32)
    receipts: list[ReceiptLine] = []
    if texts:
        progress(f"embedding {len(texts)} pages on the workers (sealed)")
        gate = asyncio.Semaphore(CONCURRENCY)

        async def one(first: int) -> tuple[int, Any]:
            async with gate:
                return first, await client.embed(texts[first:first + BATCH], model=model)

        results = await asyncio.gather(*(one(i) for i in range(0, len(texts), BATCH)))
        vectors = np.concatenate([r.vectors for _, r in results])
        for first, r in results:
            rc = r.receipt
            receipts.append(ReceiptLine(
                first=first, count=len(r.vectors), worker=r.worker, worker_key=r.worker_key.hex(),
                request=rc.request if rc else 0, units=r.units, cost=r.cost,
                result_hash=rc.result_hash.hex() if rc else "", signature=rc.signature.hex() if rc else ""))
    compute = client.charged_compute - compute_before
    progress("writing the vector index (faiss)")
    manifest = await asyncio.to_thread(write_index, path, vectors, model=model, model_hash=model_hash(model),
                                       receipts=receipts, compute_cost=compute)
    if anchor:
        progress("anchoring the index manifest on chain")
        digest = index_digest(manifest)
        a = await anchor_digest(client.wallet, client.config.root, digest)
        manifest = write_index_anchor(path, a, digest)
    return Package(directory=path, pages=len(texts), charged_data=client.charged_data - data_before,
                   charged_compute=compute, manifest=manifest, dataset_anchor=Dataset.open(path).manifest.anchor,
                   workers=len({r.worker for r in receipts}))


async def search(client: Any, directory: str | os.PathLike[str], query: str, *, k: int = 5) -> list[Hit]:
    """The `k` pages of the index nearest to `query`, the query embedded through the network
    (sealed, paid from `client`'s channel) with the index's model."""
    index = SemanticIndex.open(directory)
    result = await client.embed([query], model=index.manifest.model)
    return index.search(result.vectors[0], k)

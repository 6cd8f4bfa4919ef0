"""Semantic indexes: a verified dataset, every page's embedding, and a vector index over them.

A package folder is a dataset (offchain/dataset: records-*.parquet, proofs.jsonl,
manifest.json signed by a validator) with an `index/` folder beside its shards:

    index/embeddings.parquet   record, url, record_hash, vector (fixed-size list of float32,
                               L2-normalised), one row per record in record order
    index/vectors.faiss        a faiss IndexFlatIP over the same vectors (exact cosine search)
    index/index.json           the index manifest: the dataset manifest's digest, the model and
                               its hash, both files' sha256, every embedding request's worker
                               receipt, the compute cost, and the anchor of its digest on chain

`buy_package` makes one through a client's channel (crawl, embed on the workers, index,
anchor), `search` answers a query through the network, `verify_index` re-checks a folder
(and recomputes a sample of vectors with the local model). `cocoon search` and `cocoon index
verify` are the commands.
"""

from __future__ import annotations

from offchain.index._index import (
    EMBEDDINGS_FILE,
    INDEX_DIR,
    INDEX_FILE,
    VECTORS_FILE,
    Hit,
    IndexManifest,
    ReceiptLine,
    SemanticIndex,
    index_digest,
    index_text,
    verify_index,
    write_index,
)
from offchain.index._package import Package, buy_package, search

__all__ = [
    "EMBEDDINGS_FILE",
    "INDEX_DIR",
    "INDEX_FILE",
    "VECTORS_FILE",
    "Hit",
    "IndexManifest",
    "Package",
    "ReceiptLine",
    "SemanticIndex",
    "buy_package",
    "index_digest",
    "index_text",
    "search",
    "verify_index",
    "write_index",
]

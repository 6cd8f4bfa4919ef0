"""Verified datasets: a scrape's result as Parquet shards plus a manifest validators sign.

A dataset is a directory:

    records-00000.parquet, ...   the signed provenance records, in order; one column per
                                 `ProvenanceRecord` field (hashes and keys as lowercase hex),
                                 then `record_hash` and `signature` (hex)
    proofs.jsonl                 line i: {"index": i, "proof": [hex, ...]}, record i's RFC 6962
                                 inclusion proof (audit path, leaf first); a separate file so
                                 shards are written as records arrive, before the tree exists
    manifest.json                written last: format, crawl spec, counts (records, bytes,
                                 hosts), the Merkle head (RFC 6962 over the records' hashes,
                                 in order), the shard list, an optional on-chain anchor and
                                 the validators' signatures over `manifest_digest`

The anchor is where the digest was put on chain: `anchor_manifest` sends it to Root in one
AnchorDataset message (Root logs it and keeps nothing) and records the transaction (Root,
lt, hash) in the manifest; `check_anchor` reads that transaction back and names what is
wrong with it, if anything. `cocoon dataset anchor DIR --root ADDR` and `cocoon dataset
verify DIR --network NAME` (the anchor, and the signers against Root's validator set).

The shards load as-is: `pyarrow.parquet.read_table(path)` per shard or
`pyarrow.dataset.dataset(DIR, format="parquet", exclude_invalid_files=True)`, DuckDB
`read_parquet('DIR/records-*.parquet')`, Spark `spark.read.parquet("DIR/records-*.parquet")`,
`datasets.load_dataset("parquet", data_files="DIR/records-*.parquet")`.
"""

from __future__ import annotations

from offchain.dataset._anchor import anchor_digest, anchor_manifest, check_anchor, check_anchor_digest, write_anchor
from offchain.dataset._dataset import Dataset, Report, Row, verify_dataset
from offchain.dataset._format import Anchor, Manifest, manifest_digest
from offchain.dataset._writer import DatasetWriter
from offchain.errors import (
    DatasetError,
    DatasetMalformed,
    InclusionProofInvalid,
    ManifestMismatch,
    ManifestSignatureInvalid,
    RecordHashMismatch,
    RecordSignatureInvalid,
    UntrustedValidator,
)

__all__ = [
    "Anchor",
    "Dataset",
    "DatasetError",
    "DatasetMalformed",
    "DatasetWriter",
    "InclusionProofInvalid",
    "Manifest",
    "ManifestMismatch",
    "ManifestSignatureInvalid",
    "RecordHashMismatch",
    "RecordSignatureInvalid",
    "Report",
    "Row",
    "UntrustedValidator",
    "anchor_digest",
    "anchor_manifest",
    "check_anchor",
    "check_anchor_digest",
    "manifest_digest",
    "verify_dataset",
    "write_anchor",
]

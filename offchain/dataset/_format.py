"""The on-disk layout of a dataset: file names, the Parquet schema, the manifest and its digest."""

from __future__ import annotations

import hashlib
from typing import Annotated, Any, Literal

import msgspec
import pyarrow as pa
from msgspec import Meta

from offchain.protocol.provenance import ProvenanceRecord, canonical_json

__all__ = [
    "FORMAT",
    "MANIFEST_DOMAIN",
    "MANIFEST_FILE",
    "PROOFS_FILE",
    "SCHEMA",
    "Anchor",
    "Counts",
    "Manifest",
    "MerkleHead",
    "ProofLine",
    "Shard",
    "ValidatorSignature",
    "manifest_digest",
    "shard_name",
]

FORMAT = "cocoon-dataset/1"
MANIFEST_FILE = "manifest.json"
PROOFS_FILE = "proofs.jsonl"
MANIFEST_DOMAIN = b"cocoon/dataset-manifest/v1\x00"

Hex32 = Annotated[str, Meta(pattern=r"^[0-9a-f]{64}$")]
Hex64 = Annotated[str, Meta(pattern=r"^[0-9a-f]{128}$")]
Count = Annotated[int, Meta(ge=0, lt=2**53)]

_TYPES = {"status": pa.int16(), "fetched_at": pa.int64(), "byte_count": pa.int64()}
# every record field in declared order, then the record's hash and its validator's signature;
# hashes, keys and signatures as lowercase hex, the form the canonical JSON and the manifest use
SCHEMA = pa.schema(
    [pa.field(n, _TYPES.get(n, pa.string()), nullable=False) for n in ProvenanceRecord.__struct_fields__]
    + [pa.field("record_hash", pa.string(), nullable=False), pa.field("signature", pa.string(), nullable=False)],
    metadata={b"cocoon.format": FORMAT.encode()},
)


def shard_name(i: int) -> str:
    return f"records-{i:05d}.parquet"


class _Strict(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    pass


class Counts(_Strict):
    """records; bytes = the sum of the records' byte_count; hosts = distinct final_url hosts."""

    records: Count
    bytes: Count
    hosts: Count


class MerkleHead(_Strict):
    """The RFC 6962 tree over the records' hashes (32 bytes each, the leaf data) in order."""

    size: Count
    root: Hex32
    tree: Literal["rfc6962-sha256"] = "rfc6962-sha256"
    leaf: Literal["record_hash"] = "record_hash"


class Shard(_Strict):
    file: Annotated[str, Meta(pattern=r"^records-[0-9]{5}\.parquet$")]
    rows: Count


class ValidatorSignature(_Strict):
    """ed25519 by `validator` over `manifest_digest` (hex)."""

    validator: Hex32
    signature: Hex64


class Anchor(_Strict):
    """Where the manifest digest was put on chain (carried only; checked elsewhere)."""

    network: str
    address: str
    lt: Count
    tx_hash: Hex32


class Manifest(_Strict):
    format: Literal["cocoon-dataset/1"]
    spec: dict[str, Any]
    counts: Counts
    merkle: MerkleHead
    shards: list[Shard]
    proofs: Literal["proofs.jsonl"] = PROOFS_FILE
    anchor: Anchor | None = None
    signatures: list[ValidatorSignature] = []


class ProofLine(_Strict):
    """One line of proofs.jsonl: record `index`'s audit path, leaf first, hex."""

    index: Count
    proof: list[Hex32]


def manifest_digest(manifest: Manifest) -> bytes:
    """What validators sign: SHA-256(domain || JCS(manifest without `signatures` and `anchor`)).

    `signatures` are left out because they are what is being made; `anchor` because it is
    written after the validators sign (the anchoring transaction carries this digest).

    Raises:
        ValueError: the crawl spec holds a value canonical JSON refuses (a float, ...).
    """
    body = msgspec.to_builtins(manifest)
    del body["signatures"], body["anchor"]
    return hashlib.sha256(MANIFEST_DOMAIN + canonical_json(body)).digest()

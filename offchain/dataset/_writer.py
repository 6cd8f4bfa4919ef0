"""`DatasetWriter`: signed records in, Parquet shards + proofs + a signed manifest out."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import msgspec
import pyarrow as pa
import pyarrow.parquet as pq
from nacl.exceptions import BadSignatureError
from nacl.signing import SigningKey, VerifyKey

from offchain.dataset._format import (
    FORMAT,
    MANIFEST_FILE,
    PROOFS_FILE,
    SCHEMA,
    Anchor,
    Counts,
    Manifest,
    MerkleHead,
    ProofLine,
    Shard,
    ValidatorSignature,
    manifest_digest,
    shard_name,
)
from offchain.fsutil import write_atomic
from offchain.protocol import rfc6962
from offchain.protocol.provenance import SignedRecord, canonical_json, record_fields, verify_record

__all__ = ["SHARD_SIZE", "DatasetWriter", "host_of", "manifest_of"]

SHARD_SIZE = 10_000
"""Records per Parquet shard, by default: a crawl's validator and its client both use it, so
that the manifest each computes over the same records is the same."""


def host_of(url: str) -> str:
    """The host a record counts for: its final URL's lowercase hostname ("" if none: not counted)."""
    try:
        return urlsplit(url).hostname or ""
    except ValueError:
        return ""


class DatasetWriter:
    """Writes one dataset directory; the manifest, written last by `finish`, marks it complete.

    Records are appended in order (their order is the Merkle leaf order) and written out
    `shard_size` at a time; only their 32-byte hashes stay in memory. Blocking file I/O:
    run it in a thread from async code. Not safe for concurrent use.

    Args:
        directory: created if missing; must hold no manifest or shards yet.
        spec: the crawl spec, carried in the manifest (JSON: str, int, bool, None, lists,
            dicts; no floats, see `canonical_json`).
        shard_size: records per Parquet shard.
        anchor: an on-chain anchor, if one is already known (usually added later).

    Raises:
        ValueError: `spec` is not canonical JSON, or `shard_size` < 1.
        FileExistsError: the directory already holds a dataset.
    """

    def __init__(
        self,
        directory: str | os.PathLike[str],
        spec: Mapping[str, Any],
        *,
        shard_size: int = SHARD_SIZE,
        anchor: Anchor | None = None,
    ) -> None:
        if shard_size < 1:
            raise ValueError("shard_size must be at least 1")
        canonical_json(spec)
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        taken = [p.name for p in self.directory.iterdir() if p.name in (MANIFEST_FILE, PROOFS_FILE)]
        taken += [p.name for p in self.directory.glob("records-*.parquet")]
        if taken:
            raise FileExistsError(f"{self.directory} already holds a dataset ({', '.join(sorted(taken))})")
        self.spec = dict(spec)
        self.shard_size = shard_size
        self.anchor = anchor
        self._rows: list[dict[str, str | int]] = []
        self._shards: list[Shard] = []
        self._hashes: list[bytes] = []
        self._bytes = 0
        self._hosts: set[str] = set()
        self._finished = False

    def __len__(self) -> int:
        return len(self._hashes)

    def add(self, signed: SignedRecord) -> int:
        """Append a signed record; return its index (its leaf in the Merkle tree).

        Raises:
            InvalidSignature: the record is not signed by its validator.
            RuntimeError: after `finish`.
        """
        if self._finished:
            raise RuntimeError("the dataset is finished")
        digest = verify_record(signed)
        row = record_fields(signed.record)
        row["record_hash"] = digest.hex()
        row["signature"] = signed.signature.hex()
        self._rows.append(row)
        self._hashes.append(digest)
        self._bytes += signed.record.byte_count
        if host := host_of(signed.record.final_url):
            self._hosts.add(host)
        if len(self._rows) >= self.shard_size:
            self._flush()
        return len(self._hashes) - 1

    def _flush(self) -> None:
        if not self._rows:
            return
        name = shard_name(len(self._shards))
        path = self.directory / name
        tmp = path.with_name(name + ".tmp")
        pq.write_table(pa.Table.from_pylist(self._rows, schema=SCHEMA), tmp)
        os.replace(tmp, path)
        self._shards.append(Shard(file=name, rows=len(self._rows)))
        self._rows = []

    def manifest(self) -> Manifest:
        """The manifest (unsigned, no proofs written) over the records added so far."""
        return _manifest(self.spec, self._hashes, self._bytes, self._hosts, self._shard_list(), self.anchor)

    def _shard_list(self) -> list[Shard]:
        pending = [Shard(file=shard_name(len(self._shards)), rows=len(self._rows))] if self._rows else []
        return list(self._shards) + pending

    def finish(
        self, signers: Sequence[SigningKey] = (), *, signatures: Sequence[ValidatorSignature] = ()
    ) -> Manifest:
        """Write the last shard, proofs.jsonl and the manifest signed by every key in `signers`
        and carrying `signatures` made elsewhere (a crawl's validator signs the manifest it
        computed over the records it sent; each must verify over this manifest's digest).

        Raises:
            ValueError: no signer at all, the same signer twice, or a given signature that does
                not verify over this manifest (the records differ from the signer's).
            RuntimeError: called twice.
        """
        if self._finished:
            raise RuntimeError("the dataset is finished")
        keys = [k.verify_key.encode() for k in signers] + [bytes.fromhex(s.validator) for s in signatures]
        if not keys or len(set(keys)) != len(keys):
            raise ValueError("a dataset needs one or more distinct validators to sign its manifest")
        manifest = self.manifest()
        digest = manifest_digest(manifest)
        for given in signatures:
            try:
                VerifyKey(bytes.fromhex(given.validator)).verify(digest, bytes.fromhex(given.signature))
            except (BadSignatureError, ValueError) as err:
                raise ValueError(
                    f"validator {given.validator[:16]}'s manifest signature does not verify over these records"
                ) from err
        self._flush()
        leaves = [rfc6962.leaf_hash(h) for h in self._hashes]
        lines = (
            msgspec.json.encode(ProofLine(index=i, proof=[p.hex() for p in proof]))
            for i, proof in enumerate(rfc6962.inclusion_proofs(leaves))
        )
        write_atomic(self.directory / PROOFS_FILE, b"".join(line + b"\n" for line in lines))
        sigs = [ValidatorSignature(validator=k.verify_key.encode().hex(), signature=k.sign(digest).signature.hex())
                for k in signers] + list(signatures)
        manifest = msgspec.structs.replace(manifest, signatures=sigs)
        write_atomic(self.directory / MANIFEST_FILE, msgspec.json.format(msgspec.json.encode(manifest)) + b"\n")
        self._finished = True
        return manifest


def _manifest(
    spec: dict[str, Any], hashes: Sequence[bytes], nbytes: int, hosts: set[str], shards: list[Shard],
    anchor: Anchor | None,
) -> Manifest:
    leaves = [rfc6962.leaf_hash(h) for h in hashes]
    return Manifest(
        format=FORMAT,
        spec=spec,
        counts=Counts(records=len(hashes), bytes=nbytes, hosts=len(hosts)),
        merkle=MerkleHead(size=len(hashes), root=rfc6962.root_from_hashes(leaves).hex()),
        shards=shards,
        anchor=anchor,
    )


def manifest_of(spec: Mapping[str, Any], records: Sequence[SignedRecord], *, shard_size: int = SHARD_SIZE) -> Manifest:
    """The unsigned manifest `DatasetWriter` would write for `records` (in order) and `spec`,
    without writing anything: what a crawl's validator signs."""
    canonical_json(spec)
    hashes = [r.hash for r in records]
    hosts = {h for r in records if (h := host_of(r.record.final_url))}
    shards = [
        Shard(file=shard_name(i), rows=min(shard_size, len(records) - start))
        for i, start in enumerate(range(0, len(records), shard_size))
    ]
    return _manifest(dict(spec), hashes, sum(r.record.byte_count for r in records), hosts, shards, None)

"""`Dataset` (read a dataset directory) and `verify_dataset` (check all of it)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import msgspec
import pyarrow.parquet as pq
from nacl.exceptions import BadSignatureError
from nacl.signing import VerifyKey

from offchain.dataset._format import (
    MANIFEST_FILE,
    PROOFS_FILE,
    SCHEMA,
    Anchor,
    Manifest,
    ProofLine,
    manifest_digest,
    shard_name,
)
from offchain.dataset._writer import host_of
from offchain.errors import (
    DatasetMalformed,
    InclusionProofInvalid,
    InvalidMessage,
    ManifestMismatch,
    ManifestSignatureInvalid,
    RecordHashMismatch,
    RecordSignatureInvalid,
    UntrustedValidator,
)
from offchain.protocol import rfc6962
from offchain.protocol.provenance import RECORD_DOMAIN, SignedRecord, record_from_fields, record_hash

__all__ = ["Dataset", "Report", "Row", "verify_dataset"]

_BATCH = 4096


@dataclass(frozen=True)
class Row:
    """One stored record, where it is, and the hash stored beside it (not yet checked)."""

    index: int
    shard: str
    row: int
    signed: SignedRecord
    stored_hash: str

    def where(self) -> dict[str, Any]:
        return {"index": self.index, "shard": self.shard, "row": self.row, "url": self.signed.record.url}


@dataclass(frozen=True)
class Report:
    """What `verify_dataset` checked: the dataset's size, its root, who vouches for it."""

    directory: Path
    records: int
    bytes: int
    hosts: int
    shards: int
    root: bytes
    signers: tuple[bytes, ...]
    record_validators: frozenset[bytes]
    spec: dict[str, Any]
    anchor: Anchor | None


class Dataset:
    """A dataset directory: the manifest, and its records read shard by shard (lazily).

    Reading checks the layout and each value's type and range, not signatures, hashes or
    proofs: call `verify_dataset` for those. The shards are plain Parquet, so pyarrow,
    DuckDB (`read_parquet('DIR/records-*.parquet')`), Spark or `datasets` read them as well.
    """

    def __init__(self, directory: Path, manifest: Manifest) -> None:
        self.directory = directory
        self.manifest = manifest

    @classmethod
    def open(cls, directory: str | os.PathLike[str]) -> Dataset:
        """Read `directory`'s manifest.

        Raises:
            DatasetMalformed: no manifest, or one that is not a cocoon-dataset/1 manifest.
        """
        path = Path(directory)
        try:
            raw = (path / MANIFEST_FILE).read_bytes()
        except OSError as err:
            raise DatasetMalformed(f"cannot read it: {err.strerror}", where=MANIFEST_FILE) from err
        try:
            manifest = msgspec.json.decode(raw, type=Manifest)
        except msgspec.DecodeError as err:
            raise DatasetMalformed(f"not a dataset manifest: {err}", where=MANIFEST_FILE) from err
        for i, s in enumerate(manifest.shards):
            if s.file != shard_name(i):
                raise DatasetMalformed(f"shard {i} is named {s.file}, not {shard_name(i)}", where=MANIFEST_FILE)
        return cls(path, manifest)

    def __len__(self) -> int:
        return self.manifest.counts.records

    def __iter__(self) -> Iterator[SignedRecord]:
        return self.records()

    def records(self) -> Iterator[SignedRecord]:
        """The signed records in order (the Merkle leaf order)."""
        for r in self.rows():
            yield r.signed

    def rows(self) -> Iterator[Row]:
        """The records in order, each with its shard, row and stored `record_hash`.

        Raises:
            DatasetMalformed: a shard is missing or unreadable, lacks a column, or a value is
                not a valid record field (the error names the record).
        """
        index = 0
        for shard in self.manifest.shards:
            path = self.directory / shard.file
            try:
                pf = pq.ParquetFile(path)
            except (OSError, ValueError) as err:
                raise DatasetMalformed(f"cannot read it as Parquet: {err}", shard=shard.file) from err
            missing = [n for n in SCHEMA.names if n not in pf.schema_arrow.names]
            if missing:
                raise DatasetMalformed(f"columns {missing} are missing", shard=shard.file)
            row = 0
            try:
                for batch in pf.iter_batches(batch_size=_BATCH, columns=SCHEMA.names):
                    for raw in batch.to_pylist():
                        yield _row(raw, index, shard.file, row)
                        index += 1
                        row += 1
            except (OSError, ValueError) as err:  # pyarrow's errors are both (ArrowInvalid, ArrowIOError)
                raise DatasetMalformed(f"cannot read row {row}: {err}", shard=shard.file) from err

    def proofs(self) -> Iterator[ProofLine]:
        """proofs.jsonl, line by line (line i is record i's inclusion proof).

        Raises:
            DatasetMalformed: the file is missing, or a line is not a proof line.
        """
        try:
            f = (self.directory / PROOFS_FILE).open("rb")
        except OSError as err:
            raise DatasetMalformed(f"cannot read it: {err.strerror}", where=PROOFS_FILE) from err
        decoder = msgspec.json.Decoder(ProofLine)
        with f:
            for n, line in enumerate(f):
                try:
                    yield decoder.decode(line)
                except msgspec.DecodeError as err:
                    raise DatasetMalformed(f"line {n} is not a proof line: {err}", where=PROOFS_FILE) from err


def _row(raw: dict[str, Any], index: int, shard: str, row: int) -> Row:
    stored_hash = raw.pop("record_hash")
    signature = raw.pop("signature")
    try:
        record = record_from_fields(raw)
        if not isinstance(signature, str) or len(signature) != 128 or signature != signature.lower():
            raise InvalidMessage("signature is not 128 lowercase hex digits")
        signed = SignedRecord(record, bytes.fromhex(signature))
    except (InvalidMessage, ValueError) as err:
        url = raw.get("url")
        where = {"index": index, "shard": shard, "row": row, "url": url if isinstance(url, str) else None}
        raise DatasetMalformed(str(err), **where) from err
    return Row(index, shard, row, signed, stored_hash if isinstance(stored_hash, str) else "")


def verify_dataset(directory: str | os.PathLike[str], *, trusted_validators: set[bytes] | None = None) -> Report:
    """Check a whole dataset: manifest signatures, then every record, then the manifest's claims.

    In this order, stopping at the first failure:
      1. the manifest parses; it has one or more signatures, each valid over
         `manifest_digest`, by distinct validators, each in `trusted_validators` if given;
      2. record by record, in order: its fields are valid, hash to its `record_hash` cell,
         and its signature is its validator's (trusted, if a set is given); raised at the
         first bad record;
      3. shard row counts, record count and Merkle size match the records; the root
         recomputed from the records' hashes is the manifest's root;
      4. every record's inclusion proof leads to that root (checked during 2, judged after 3,
         so a wrong root is one `ManifestMismatch`, not every proof failing); the first bad
         proof is named;
      5. the byte and host counts match.

    Blocking file I/O; safe to run concurrently on the same directory (it only reads).

    Args:
        directory: the dataset directory.
        trusted_validators: ed25519 public keys (32 bytes) allowed to sign the manifest and
            the records; None accepts any signer.

    Returns:
        A `Report` of what was verified.

    Raises:
        DatasetMalformed, ManifestSignatureInvalid, UntrustedValidator, RecordHashMismatch,
        RecordSignatureInvalid, ManifestMismatch, InclusionProofInvalid: see above.
    """
    ds = Dataset.open(directory)
    m = ds.manifest
    signers = _check_manifest_signatures(m, trusted_validators)
    listed = {s.file for s in m.shards}
    for p in sorted(ds.directory.glob("records-*.parquet")):
        if p.name not in listed:
            raise DatasetMalformed("this shard is not listed in the manifest", shard=p.name)
    root = bytes.fromhex(m.merkle.root)
    size = m.merkle.size

    leaves: list[bytes] = []
    total_bytes = 0
    hosts: set[str] = set()
    validators: set[bytes] = set()
    per_shard: dict[str, int] = dict.fromkeys(listed, 0)
    bad_proof: InclusionProofInvalid | None = None
    proofs = ds.proofs()
    for r in ds.rows():
        rec = r.signed.record
        digest = record_hash(rec)
        if digest.hex() != r.stored_hash:
            raise RecordHashMismatch(f"its fields hash to {digest.hex()}, not to its record_hash", **r.where())
        try:
            VerifyKey(rec.validator_key).verify(RECORD_DOMAIN + digest, r.signed.signature)
        except (BadSignatureError, ValueError) as err:
            why = f"signature is not validator {rec.validator_key.hex()}'s over its hash"
            raise RecordSignatureInvalid(why, **r.where()) from err
        if trusted_validators is not None and rec.validator_key not in trusted_validators:
            raise UntrustedValidator(rec.validator_key.hex(), **r.where())
        leaf = rfc6962.leaf_hash(digest)
        line = next(proofs, None)
        if line is None:
            raise DatasetMalformed(f"{PROOFS_FILE} has no line for this record", **r.where())
        if bad_proof is None:
            if line.index != r.index:
                bad_proof = InclusionProofInvalid(f"{PROOFS_FILE} line {r.index} is for record {line.index}",
                                                  **r.where())
            elif not rfc6962.verify_inclusion(leaf, r.index, size, [bytes.fromhex(p) for p in line.proof], root):
                bad_proof = InclusionProofInvalid("its inclusion proof does not lead to the manifest's Merkle root",
                                                  **r.where())
        leaves.append(leaf)
        total_bytes += rec.byte_count
        if host := host_of(rec.final_url):
            hosts.add(host)
        validators.add(rec.validator_key)
        per_shard[r.shard] += 1

    n = len(leaves)
    for i, s in enumerate(m.shards):
        if per_shard[s.file] != s.rows:
            raise ManifestMismatch(f"shards[{i}].rows", s.rows, per_shard[s.file])
    if m.counts.records != n:
        raise ManifestMismatch("counts.records", m.counts.records, n)
    if size != n:
        raise ManifestMismatch("merkle.size", size, n)
    actual_root = rfc6962.root_from_hashes(leaves)
    if actual_root != root:
        raise ManifestMismatch("merkle.root", m.merkle.root, actual_root.hex())
    if bad_proof is not None:
        raise bad_proof
    if next(proofs, None) is not None:
        raise DatasetMalformed(f"more lines than the {n} records", where=PROOFS_FILE)
    if m.counts.bytes != total_bytes:
        raise ManifestMismatch("counts.bytes", m.counts.bytes, total_bytes)
    if m.counts.hosts != len(hosts):
        raise ManifestMismatch("counts.hosts", m.counts.hosts, len(hosts))
    return Report(
        directory=ds.directory,
        records=n,
        bytes=total_bytes,
        hosts=len(hosts),
        shards=len(m.shards),
        root=actual_root,
        signers=signers,
        record_validators=frozenset(validators),
        spec=m.spec,
        anchor=m.anchor,
    )


def _check_manifest_signatures(m: Manifest, trusted: set[bytes] | None) -> tuple[bytes, ...]:
    if not m.signatures:
        raise ManifestSignatureInvalid("no validator signed the manifest")
    try:
        digest = manifest_digest(m)
    except ValueError as err:
        raise DatasetMalformed(f"spec is not canonical JSON: {err}", where=MANIFEST_FILE) from err
    keys: list[bytes] = []
    for s in m.signatures:
        key = bytes.fromhex(s.validator)
        if key in keys:
            raise DatasetMalformed(f"validator {s.validator} signed it twice", where=MANIFEST_FILE)
        try:
            VerifyKey(key).verify(digest, bytes.fromhex(s.signature))
        except (BadSignatureError, ValueError) as err:
            raise ManifestSignatureInvalid(f"validator {s.validator}'s signature over the manifest is invalid",
                                           validator=s.validator) from err
        keys.append(key)
    if trusted is not None:
        for key in keys:
            if key not in trusted:
                raise UntrustedValidator(key.hex())
    return tuple(keys)

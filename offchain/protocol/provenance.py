"""Provenance records: what a validator saw when it fetched one page, signed by it. No I/O.

The validator is the TLS client over a stream its data node relays (DESIGN.md, "Agent
layer decisions", Provenance), so it knows the server's leaf certificate and the exact
body; a `ProvenanceRecord` keeps their SHA-256 hashes, the extracted main text and who
relayed the bytes (the data node's Provider address).

Encoding. `record_hash(r)` = SHA-256 of `canonical_json(r)`: the record as a JSON object
(byte fields as lowercase hex, integers as integers) in the canonical form of RFC 8785
(JCS): keys sorted by UTF-16 code units, no whitespace, strings escaped minimally, UTF-8.
Canonical JSON rather than msgpack because msgpack has no canonical form (the same value
has several valid encodings: an int as fixint or uint16, a str as fixstr or str8), so a
hash over msgspec's output would be a hash over one library's choices; JCS is a published
standard with implementations in every language, and every record field (strings, hex,
integers well below 2**53) is in the subset where `json.dumps(sort_keys=True,
separators=(",", ":"), ensure_ascii=False)` already is JCS. A dataset's reader recomputes
the hash from the Parquet columns alone.

Signature: ed25519 by `validator_key` over `b"cocoon/provenance/v1\\x00" || record_hash`,
so a record signature can never be replayed as a voucher, a hello or a manifest signature.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Annotated, Any

import msgspec
from msgspec import Meta
from nacl.exceptions import BadSignatureError
from nacl.signing import SigningKey, VerifyKey

from offchain.errors import InvalidMessage, InvalidSignature

__all__ = [
    "RECORD_DOMAIN",
    "BodyIndex",
    "ProvenanceRecord",
    "SignedRecord",
    "body_hash",
    "canonical_json",
    "canonical_record",
    "certificate_hash",
    "record_fields",
    "record_from_fields",
    "record_hash",
    "sign_record",
    "validate_record",
    "verify_record",
]

RECORD_DOMAIN = b"cocoon/provenance/v1\x00"

Hash32 = Annotated[bytes, Meta(min_length=32, max_length=32)]
Sig64 = Annotated[bytes, Meta(min_length=64, max_length=64)]
RawAddress = Annotated[str, Meta(pattern=r"^-?[0-9]+:[0-9a-f]{64}$")]
UInt = Annotated[int, Meta(ge=0, lt=2**53)]


class ProvenanceRecord(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """One fetched page, as the validator saw it (field order is the Parquet column order).

    Attributes:
        url: the URL the crawl asked for.
        final_url: the URL after redirects (the one the body came from).
        status: the final response's HTTP status.
        fetched_at: when the response ended, unix seconds.
        cert_sha256: SHA-256 of the server's leaf certificate (DER).
        body_sha256: SHA-256 of the body as received (after transfer/content decoding).
        content_type: the response's Content-Type, as sent.
        byte_count: the body's length in bytes.
        provider: the relaying data node's Provider contract, raw form "0:<64 hex>".
        main_text: the page's main text (extracted by the validator).
        validator_key: the ed25519 node key of the validator that fetched and signs it.
    """

    url: str
    final_url: str
    status: Annotated[int, Meta(ge=100, le=599)]
    fetched_at: UInt
    cert_sha256: Hash32
    body_sha256: Hash32
    content_type: str
    byte_count: UInt
    provider: RawAddress
    main_text: str
    validator_key: Hash32


_BYTE_FIELDS = frozenset({"cert_sha256", "body_sha256", "validator_key"})


class SignedRecord(msgspec.Struct, frozen=True):
    """A record and its validator's signature (ed25519, 64 bytes; see the module docstring)."""

    record: ProvenanceRecord
    signature: Sig64

    @property
    def hash(self) -> bytes:
        return record_hash(self.record)


def canonical_json(value: Any) -> bytes:
    """RFC 8785 (JCS) bytes for JSON-able `value`: dicts with str keys, lists, str, int, bool, None.

    Raises:
        ValueError: a float (its JCS form is ECMAScript's, not Python's repr), an integer
            outside ±2**53 (not exact in I-JSON), a non-str key, a lone surrogate, or any
            other type.
    """
    return json.dumps(_jcs_ready(value), separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def _jcs_ready(value: Any) -> Any:
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, int):
        if not -(2**53) < value < 2**53:
            raise ValueError(f"integer {value} is outside the exact range of canonical JSON (±2**53)")
        return value
    if isinstance(value, Mapping):
        if not all(isinstance(k, str) for k in value):
            raise ValueError("canonical JSON objects have string keys only")
        # JCS sorts keys by UTF-16 code units; big-endian UTF-16 bytes compare the same way
        keys = sorted(value, key=lambda k: k.encode("utf-16-be", "surrogatepass"))
        return {k: _jcs_ready(value[k]) for k in keys}
    if isinstance(value, list | tuple):
        return [_jcs_ready(v) for v in value]
    if isinstance(value, float):
        raise ValueError(f"float {value!r} has no portable canonical form; use an int or a str")
    raise ValueError(f"{type(value).__name__} is not canonical JSON")


def record_fields(record: ProvenanceRecord) -> dict[str, str | int]:
    """The record as JSON values in field order (bytes as lowercase hex): its Parquet row."""
    out: dict[str, str | int] = {}
    for name in record.__struct_fields__:
        v = getattr(record, name)
        out[name] = v.hex() if name in _BYTE_FIELDS else v
    return out


def record_from_fields(fields: Mapping[str, Any]) -> ProvenanceRecord:
    """The inverse of `record_fields`: validates every field (types, lengths, ranges).

    Raises:
        InvalidMessage: a field is missing, extra, of the wrong type or out of range.
    """
    try:
        values = dict(fields)
        for name in _BYTE_FIELDS & values.keys():
            v = values[name]
            if not isinstance(v, str) or v != v.lower():
                raise ValueError(f"{name} must be lowercase hex")
            values[name] = bytes.fromhex(v)
        return msgspec.convert(values, ProvenanceRecord)
    except (ValueError, TypeError, msgspec.ValidationError) as err:
        raise InvalidMessage(f"invalid provenance record: {err}") from err


def validate_record(record: ProvenanceRecord) -> ProvenanceRecord:
    """`record` if every field holds (msgspec checks constraints on decode, not on __init__)."""
    return record_from_fields(record_fields(record))


def canonical_record(record: ProvenanceRecord) -> bytes:
    """The bytes `record_hash` hashes: `canonical_json(record_fields(record))`."""
    return canonical_json(record_fields(record))


def record_hash(record: ProvenanceRecord) -> bytes:
    """SHA-256 of the record's canonical JSON (the Merkle leaf data of a dataset)."""
    return hashlib.sha256(canonical_record(record)).digest()


def sign_record(key: SigningKey, record: ProvenanceRecord) -> SignedRecord:
    """Sign `record` as its validator.

    Raises:
        InvalidMessage: a field is out of range.
        ValueError: `record.validator_key` is not `key`'s public key.
    """
    validate_record(record)
    if key.verify_key.encode() != record.validator_key:
        raise ValueError("record.validator_key is not this signing key's public key")
    return SignedRecord(record, key.sign(RECORD_DOMAIN + record_hash(record)).signature)


def verify_record(signed: SignedRecord) -> bytes:
    """Check the record's signature by its own `validator_key`; return the record hash.

    Raises:
        InvalidSignature: the signature is not the validator's over this record.
    """
    digest = record_hash(signed.record)
    try:
        VerifyKey(signed.record.validator_key).verify(RECORD_DOMAIN + digest, signed.signature)
    except (BadSignatureError, ValueError) as err:
        raise InvalidSignature(f"record for {signed.record.url} is not signed by its validator") from err
    return digest


def body_hash(body: bytes) -> bytes:
    """SHA-256 of a response body (a record's `body_sha256`)."""
    return hashlib.sha256(body).digest()


def certificate_hash(der: bytes) -> bytes:
    """SHA-256 of a DER certificate (a record's `cert_sha256`)."""
    return hashlib.sha256(der).digest()


class BodyIndex:
    """Which bodies a crawl already holds, by body hash: the validator's duplicate check.

    Mirrors and syndicated copies serve the same bytes under many URLs; the validator
    keeps the first and skips (or links) the rest. Pure bookkeeping, not thread-safe.
    """

    def __init__(self) -> None:
        self._first: dict[bytes, ProvenanceRecord] = {}

    def add(self, record: ProvenanceRecord) -> ProvenanceRecord | None:
        """Remember `record`'s body; return the earlier record with the same body, if any.

        Returns:
            None when the body is new (now remembered), else the first record that had it.
        """
        earlier = self._first.get(record.body_sha256)
        if earlier is None:
            self._first[record.body_sha256] = record
        return earlier

    def __contains__(self, body_sha256: object) -> bool:
        return body_sha256 in self._first

    def __len__(self) -> int:
        return len(self._first)

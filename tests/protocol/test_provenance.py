"""Provenance records: canonical encoding, hash, domain-separated signature, duplicate bodies."""

from __future__ import annotations

import hashlib
import json

import msgspec
import pytest
from nacl.signing import SigningKey

from offchain.errors import InvalidMessage, InvalidSignature
from offchain.protocol.provenance import (
    RECORD_DOMAIN,
    BodyIndex,
    ProvenanceRecord,
    SignedRecord,
    body_hash,
    canonical_json,
    canonical_record,
    certificate_hash,
    record_fields,
    record_from_fields,
    record_hash,
    sign_record,
    validate_record,
    verify_record,
)

KEY = SigningKey(bytes(range(32)))
PROVIDER = "0:" + "ab" * 32


def _record(**over: object) -> ProvenanceRecord:
    fields: dict[str, object] = {
        "url": "https://example.org/a",
        "final_url": "https://www.example.org/a/",
        "status": 200,
        "fetched_at": 1_760_000_000,
        "cert_sha256": certificate_hash(b"leaf certificate DER"),
        "body_sha256": body_hash(b"<html>hello</html>"),
        "content_type": "text/html; charset=utf-8",
        "byte_count": 18,
        "provider": PROVIDER,
        "main_text": "hello — ünïcödé \"quoted\"\n\t\x01 \U0001f600",
        "validator_key": KEY.verify_key.encode(),
    }
    fields.update(over)
    return ProvenanceRecord(**fields)  # type: ignore[arg-type]


def test_canonical_encoding_is_sorted_compact_utf8_with_hex_bytes() -> None:
    r = _record()
    enc = canonical_record(r)
    assert enc.startswith(b'{"body_sha256":"' + r.body_sha256.hex().encode() + b'","byte_count":18,')
    assert "ünïcödé".encode() in enc and b"\\u0001" in enc and b"\\n\\t" in enc
    assert json.loads(enc) == record_fields(r)
    assert record_hash(r) == hashlib.sha256(enc).digest()
    # declared field order is the Parquet order; the hash does not depend on it
    assert list(record_fields(r)) == list(ProvenanceRecord.__struct_fields__)


def test_record_hash_pinned() -> None:
    """A fixed record's hash, so an encoding change cannot slip in unnoticed."""
    r = _record(main_text="hello", validator_key=b"\x01" * 32)
    expected = (
        '{"body_sha256":"' + r.body_sha256.hex() + '","byte_count":18,"cert_sha256":"' + r.cert_sha256.hex()
        + '","content_type":"text/html; charset=utf-8","fetched_at":1760000000,'
        '"final_url":"https://www.example.org/a/","main_text":"hello","provider":"' + PROVIDER
        + '","status":200,"url":"https://example.org/a","validator_key":"' + "01" * 32 + '"}'
    )
    assert canonical_record(r) == expected.encode()
    assert record_hash(r) == hashlib.sha256(expected.encode()).digest()


def test_every_field_changes_the_hash() -> None:
    base = record_hash(_record())
    changes = {
        "url": "https://example.org/b", "final_url": "https://example.org/a", "status": 201, "fetched_at": 1,
        "cert_sha256": b"\x00" * 32, "body_sha256": b"\x00" * 32, "content_type": "text/plain", "byte_count": 19,
        "provider": "0:" + "cd" * 32, "main_text": "hello", "validator_key": b"\x02" * 32,
    }
    assert set(changes) == set(ProvenanceRecord.__struct_fields__)
    for name, value in changes.items():
        assert record_hash(_record(**{name: value})) != base, name


def test_sign_and_verify_round_trip() -> None:
    signed = sign_record(KEY, _record())
    assert verify_record(signed) == record_hash(signed.record)
    KEY.verify_key.verify(RECORD_DOMAIN + signed.hash, signed.signature)
    again = msgspec.msgpack.decode(msgspec.msgpack.encode(signed), type=SignedRecord)
    assert again == signed
    verify_record(again)


def test_signature_is_domain_separated() -> None:
    r = _record()
    bare = SignedRecord(r, KEY.sign(record_hash(r)).signature)  # over the hash alone, no domain
    with pytest.raises(InvalidSignature):
        verify_record(bare)


def test_tampered_record_fails_verification() -> None:
    signed = sign_record(KEY, _record())
    for name, value in (("main_text", "hellp"), ("status", 404), ("provider", "0:" + "00" * 32)):
        forged = SignedRecord(msgspec.structs.replace(signed.record, **{name: value}), signed.signature)
        with pytest.raises(InvalidSignature):
            verify_record(forged)
    flipped = bytearray(signed.signature)
    flipped[5] ^= 1
    with pytest.raises(InvalidSignature):
        verify_record(SignedRecord(signed.record, bytes(flipped)))


def test_sign_refuses_another_validators_record() -> None:
    with pytest.raises(ValueError, match="validator_key"):
        sign_record(KEY, _record(validator_key=b"\x02" * 32))


@pytest.mark.parametrize(
    ("field", "value"),
    [("status", 99), ("status", 600), ("fetched_at", -1), ("byte_count", -1), ("cert_sha256", b"\x00" * 31),
     ("provider", "EQabc"), ("provider", "0:" + "AB" * 32), ("validator_key", b"\x00" * 33)],
)
def test_out_of_range_fields_are_refused(field: str, value: object) -> None:
    with pytest.raises(InvalidMessage):
        validate_record(_record(**{field: value}))
    with pytest.raises(InvalidMessage):
        sign_record(KEY, _record(**{field: value}))


def test_fields_round_trip_and_refuse_bad_hex() -> None:
    r = _record()
    assert record_from_fields(record_fields(r)) == r
    bad = record_fields(r)
    bad["cert_sha256"] = str(bad["cert_sha256"]).upper()
    with pytest.raises(InvalidMessage):
        record_from_fields(bad)
    with pytest.raises(InvalidMessage):
        record_from_fields({**record_fields(r), "extra": 1})
    with pytest.raises(InvalidMessage):
        record_from_fields({k: v for k, v in record_fields(r).items() if k != "url"})


def test_canonical_json_follows_jcs() -> None:
    assert canonical_json({"b": [1, True, None], "a": "x"}) == b'{"a":"x","b":[1,true,null]}'
    # keys sort by UTF-16 code units: U+1F600 (surrogates D83D..) sorts before U+FB01
    assert canonical_json({"\ufb01": 1, "\U0001f600": 2}) == '{"\U0001f600":2,"\ufb01":1}'.encode()
    assert canonical_json({"s": "\u2028\x7f\x1f"}) == '{"s":"\u2028\x7f\\u001f"}'.encode()
    for bad in (1.5, 2**53, {1: "a"}, b"bytes", "\ud800"):
        with pytest.raises(ValueError):
            canonical_json({"v": bad})


def test_body_index_finds_duplicate_bodies() -> None:
    index = BodyIndex()
    first = _record(url="https://a.example/1")
    same_body = _record(url="https://mirror.example/1")
    other = _record(url="https://a.example/2", body_sha256=body_hash(b"other"))
    assert index.add(first) is None
    assert index.add(same_body) is first
    assert index.add(other) is None
    assert index.add(same_body) is first
    assert first.body_sha256 in index and len(index) == 2

"""DevVerifier: the insecure, self-declared attestation, accepted only where Root allows it."""

from __future__ import annotations

import msgspec
import pytest
from nacl.signing import SigningKey

from offchain.attestation import DevQuote, DevVerifier, Evidence, decode_evidence, encode_evidence, make_dev_evidence
from offchain.attestation._dev import DEV_TAG, dev_quote_message
from offchain.errors import (
    DevNotAllowed,
    EvidenceMalformed,
    ImageNotAllowed,
    QuoteSignatureInvalid,
    ReportDataMismatch,
    UnsupportedEvidence,
)

from .conftest import ENCRYPTION_KEY

MEASUREMENT = bytes.fromhex("11" * 32)
IMAGES = {MEASUREMENT}
NOW = 1751328000


@pytest.fixture
def key() -> SigningKey:
    return SigningKey(bytes(range(100, 132)))


def node_key_of(key: SigningKey) -> bytes:
    return bytes(key.verify_key)


def test_dev_evidence_passes_when_allowed(key: SigningKey) -> None:
    ev = make_dev_evidence(key, ENCRYPTION_KEY, MEASUREMENT)
    got = DevVerifier(allow_dev=True).verify(ev, node_key=node_key_of(key), now=NOW, allowed_images=IMAGES)
    assert got.kind == "dev"
    assert got.measurement == MEASUREMENT
    assert (got.node_key, got.encryption_key) == (node_key_of(key), ENCRYPTION_KEY)
    assert got.tcb_status is None and got.advisory_ids == ()
    assert got.debug is True


def test_dev_evidence_survives_the_wire(key: SigningKey) -> None:
    ev = decode_evidence(encode_evidence(make_dev_evidence(key, ENCRYPTION_KEY, MEASUREMENT)))
    assert ev.kind == "dev" and ev.collateral is None
    DevVerifier(allow_dev=True).verify(ev, node_key=node_key_of(key), now=NOW, allowed_images=IMAGES)


def test_dev_quote_encoding_is_a_signed_msgpack_array(key: SigningKey) -> None:
    ev = make_dev_evidence(key, ENCRYPTION_KEY, MEASUREMENT)
    fields = msgspec.msgpack.decode(ev.quote)
    assert fields[:3] == [MEASUREMENT, node_key_of(key), ENCRYPTION_KEY]
    key.verify_key.verify(DEV_TAG + MEASUREMENT + node_key_of(key) + ENCRYPTION_KEY, fields[3])


def test_dev_evidence_is_refused_when_not_allowed(key: SigningKey) -> None:
    ev = make_dev_evidence(key, ENCRYPTION_KEY, MEASUREMENT)
    with pytest.raises(DevNotAllowed):
        DevVerifier(allow_dev=False).verify(ev, node_key=node_key_of(key), now=NOW, allowed_images=IMAGES)


def test_dev_evidence_for_another_node_key_is_refused(key: SigningKey) -> None:
    ev = make_dev_evidence(key, ENCRYPTION_KEY, MEASUREMENT)
    with pytest.raises(ReportDataMismatch):
        DevVerifier(allow_dev=True).verify(ev, node_key=bytes(32), now=NOW, allowed_images=IMAGES)


def test_dev_evidence_with_swapped_encryption_key_is_refused(key: SigningKey) -> None:
    ev = make_dev_evidence(key, ENCRYPTION_KEY, MEASUREMENT)
    swapped = Evidence(kind="dev", quote=ev.quote, encryption_key=bytes(32))
    with pytest.raises(ReportDataMismatch):
        DevVerifier(allow_dev=True).verify(swapped, node_key=node_key_of(key), now=NOW, allowed_images=IMAGES)


def test_dev_quote_signed_by_another_key_is_refused(key: SigningKey) -> None:
    """A quote naming our node key but signed by someone else proves nothing."""
    other = SigningKey.generate()
    nk = node_key_of(key)
    sig = other.sign(dev_quote_message(MEASUREMENT, nk, ENCRYPTION_KEY)).signature
    forged = DevQuote(measurement=MEASUREMENT, node_key=nk, encryption_key=ENCRYPTION_KEY, signature=sig)
    ev = Evidence(kind="dev", quote=msgspec.msgpack.encode(forged), encryption_key=ENCRYPTION_KEY)
    with pytest.raises(QuoteSignatureInvalid):
        DevVerifier(allow_dev=True).verify(ev, node_key=nk, now=NOW, allowed_images=IMAGES)


def test_dev_quote_with_changed_measurement_is_refused(key: SigningKey) -> None:
    ev = make_dev_evidence(key, ENCRYPTION_KEY, MEASUREMENT)
    q = msgspec.msgpack.decode(ev.quote, type=DevQuote)
    changed = msgspec.structs.replace(q, measurement=bytes(32))
    ev2 = Evidence(kind="dev", quote=msgspec.msgpack.encode(changed), encryption_key=ENCRYPTION_KEY)
    with pytest.raises(QuoteSignatureInvalid):
        DevVerifier(allow_dev=True).verify(ev2, node_key=node_key_of(key), now=NOW, allowed_images=lambda _m: True)


@pytest.mark.parametrize("quote", [b"", b"\x93\x01\x02\x03", msgspec.msgpack.encode([b"1" * 32] * 4)])
def test_undecodable_dev_quote_is_refused_as_malformed(key: SigningKey, quote: bytes) -> None:
    ev = Evidence(kind="dev", quote=quote, encryption_key=ENCRYPTION_KEY)
    with pytest.raises(EvidenceMalformed):
        DevVerifier(allow_dev=True).verify(ev, node_key=node_key_of(key), now=NOW, allowed_images=IMAGES)


def test_dev_measurement_not_in_allowlist_is_refused(key: SigningKey) -> None:
    ev = make_dev_evidence(key, ENCRYPTION_KEY, bytes(32))
    with pytest.raises(ImageNotAllowed):
        DevVerifier(allow_dev=True).verify(ev, node_key=node_key_of(key), now=NOW, allowed_images=IMAGES)


def test_tdx_evidence_is_refused_by_dev_verifier(key: SigningKey) -> None:
    ev = Evidence(kind="tdx", quote=b"q", encryption_key=ENCRYPTION_KEY)
    with pytest.raises(UnsupportedEvidence):
        DevVerifier(allow_dev=True).verify(ev, node_key=node_key_of(key), now=NOW, allowed_images=IMAGES)


def test_make_dev_evidence_wrong_sizes_are_rejected(key: SigningKey) -> None:
    with pytest.raises(ValueError):
        make_dev_evidence(key, ENCRYPTION_KEY[:16], MEASUREMENT)
    with pytest.raises(ValueError):
        make_dev_evidence(key, ENCRYPTION_KEY, MEASUREMENT[:31])

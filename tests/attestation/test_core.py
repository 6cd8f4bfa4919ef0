from __future__ import annotations

import hashlib

import pytest

from offchain.attestation import (
    Evidence,
    decode_evidence,
    encode_evidence,
    image_measurement,
    report_data_binding,
)
from offchain.attestation._core import BINDING_TAG, IMAGE_TAG
from offchain.errors import AttestationError, EvidenceMalformed, PeerError

from .conftest import ENCRYPTION_KEY, NODE_KEY


def test_image_measurement_is_tagged_sha256_of_mrtd_and_rtmr0_2() -> None:
    regs = [bytes([i]) * 48 for i in range(4)]
    assert IMAGE_TAG == b"cocoon/tdx-image/v1\x00"
    assert image_measurement(*regs) == hashlib.sha256(IMAGE_TAG + b"".join(regs)).digest()
    assert len(image_measurement(*regs)) == 32
    assert image_measurement(*regs) != image_measurement(regs[1], regs[0], regs[2], regs[3])


def test_image_measurement_wrong_register_size_is_rejected() -> None:
    with pytest.raises(ValueError):
        image_measurement(b"\x00" * 32, b"\x00" * 48, b"\x00" * 48, b"\x00" * 48)


def test_report_data_binding_is_tagged_sha512_of_both_keys() -> None:
    assert BINDING_TAG == b"cocoon/attestation-binding/v1\x00"
    got = report_data_binding(NODE_KEY, ENCRYPTION_KEY)
    assert got == hashlib.sha512(BINDING_TAG + NODE_KEY + ENCRYPTION_KEY).digest()
    assert len(got) == 64
    assert got != report_data_binding(ENCRYPTION_KEY, NODE_KEY)


def test_report_data_binding_wrong_key_size_is_rejected() -> None:
    with pytest.raises(ValueError):
        report_data_binding(NODE_KEY[:31], ENCRYPTION_KEY)


def test_evidence_round_trips_through_msgpack() -> None:
    ev = Evidence(kind="tdx", quote=b"q" * 100, encryption_key=ENCRYPTION_KEY, collateral=b"{}")
    assert decode_evidence(encode_evidence(ev)) == ev
    alone = Evidence(kind="dev", quote=b"x", encryption_key=ENCRYPTION_KEY)
    assert decode_evidence(encode_evidence(alone)).collateral is None


@pytest.mark.parametrize(
    "bad",
    [
        Evidence(kind="tdx", quote=b"q", encryption_key=b"short"),
        Evidence(kind="sgx", quote=b"q", encryption_key=ENCRYPTION_KEY),  # type: ignore[arg-type]
        Evidence(kind="tdx", quote=b"q" * 20_000, encryption_key=ENCRYPTION_KEY),
    ],
)
def test_decode_evidence_malformed_is_rejected(bad: Evidence) -> None:
    with pytest.raises(EvidenceMalformed):
        decode_evidence(encode_evidence(bad))


def test_decode_evidence_garbage_is_rejected() -> None:
    with pytest.raises(EvidenceMalformed) as exc:
        decode_evidence(b"\xc1not msgpack")
    assert isinstance(exc.value, AttestationError) and isinstance(exc.value, PeerError)

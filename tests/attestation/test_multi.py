"""MultiVerifier / verifier_for: TDX always, dev only where Root allows it."""

from __future__ import annotations

import pytest
from nacl.signing import SigningKey

import offchain.attestation as att
from offchain.attestation import DevVerifier, Evidence, MultiVerifier, TdxVerifier, make_dev_evidence, verifier_for
from offchain.errors import DevNotAllowed, ReportDataMismatch, UnsupportedEvidence

from .conftest import ENCRYPTION_KEY, NODE_KEY, TDX_NOW
from .test_tdx import IMAGES, expect_exactly


def test_verifier_for_tdx_is_always_available() -> None:
    assert isinstance(verifier_for("tdx", allow_dev=False), TdxVerifier)
    shared = TdxVerifier()
    assert verifier_for("tdx", allow_dev=True, tdx=shared) is shared


def test_verifier_for_dev_only_if_allowed() -> None:
    assert isinstance(verifier_for("dev", allow_dev=True), DevVerifier)
    with pytest.raises(DevNotAllowed):
        verifier_for("dev", allow_dev=False)


def test_verifier_for_unknown_kind_is_refused() -> None:
    with pytest.raises(UnsupportedEvidence):
        verifier_for("sev-snp", allow_dev=True)


def test_multi_verifier_dispatches_tdx(tdx_quote: bytes, tdx_collateral: bytes, tdx_report_data: bytes) -> None:
    mv = MultiVerifier(allow_dev=False, tdx=TdxVerifier(binding=expect_exactly(tdx_report_data)))
    ev = Evidence(kind="tdx", quote=tdx_quote, encryption_key=ENCRYPTION_KEY, collateral=tdx_collateral)
    assert mv.verify(ev, node_key=NODE_KEY, now=TDX_NOW, allowed_images=IMAGES).kind == "tdx"
    alone = Evidence(kind="tdx", quote=tdx_quote, encryption_key=ENCRYPTION_KEY)
    assert mv.verify(alone, node_key=NODE_KEY, now=TDX_NOW, allowed_images=IMAGES).tcb_status == "UpToDate"


def test_multi_verifier_default_tdx_binding_refuses_foreign_quote(tdx_quote: bytes, tdx_collateral: bytes) -> None:
    ev = Evidence(kind="tdx", quote=tdx_quote, encryption_key=ENCRYPTION_KEY, collateral=tdx_collateral)
    with pytest.raises(ReportDataMismatch):
        MultiVerifier(allow_dev=True).verify(ev, node_key=NODE_KEY, now=TDX_NOW, allowed_images=IMAGES)


def test_multi_verifier_dev_follows_allow_dev() -> None:
    key = SigningKey.generate()
    measurement = b"\x22" * 32
    ev = make_dev_evidence(key, ENCRYPTION_KEY, measurement)
    mv = MultiVerifier(allow_dev=False)
    with pytest.raises(DevNotAllowed):
        mv.verify(ev, node_key=bytes(key.verify_key), now=0, allowed_images={measurement})
    mv.allow_dev = True  # Root's params changed
    got = mv.verify(ev, node_key=bytes(key.verify_key), now=0, allowed_images={measurement})
    assert got.kind == "dev" and got.debug


def test_package_surface_is_stable() -> None:
    assert sorted(att.__all__) == [
        "Attested",
        "DevQuote",
        "DevVerifier",
        "Evidence",
        "ImagePolicy",
        "MultiVerifier",
        "TdxPolicy",
        "TdxVerifier",
        "Verifier",
        "attest_worker",
        "decode_evidence",
        "encode_evidence",
        "image_measurement",
        "make_dev_evidence",
        "report_data_binding",
        "verifier_for",
    ]


async def test_attest_worker_checks_keys_then_the_image_on_its_proven_measurement() -> None:
    from nacl.signing import SigningKey

    from offchain.errors import AttestationError, ImageNotAllowed

    key, enc, measurement = SigningKey.generate(), bytes(range(32)), bytes([7]) * 32
    evidence = att.encode_evidence(att.make_dev_evidence(key, enc, measurement))
    mv = att.MultiVerifier(allow_dev=True)
    seen: list[bytes] = []

    async def allowed(m: bytes) -> bool:
        seen.append(m)
        return m == measurement

    got = await att.attest_worker(mv, evidence, node_key=bytes(key.verify_key), encryption_key=enc, now=0,
                                  image_allowed=allowed)
    assert got.measurement == measurement and seen == [measurement]
    with pytest.raises(AttestationError, match="another encryption key"):
        await att.attest_worker(mv, evidence, node_key=bytes(key.verify_key), encryption_key=bytes(32), now=0,
                                image_allowed=allowed)
    with pytest.raises(AttestationError, match="no attestation"):
        await att.attest_worker(mv, b"", node_key=bytes(key.verify_key), encryption_key=enc, now=0,
                                image_allowed=allowed)

    async def nothing(_m: bytes) -> bool:
        return False

    with pytest.raises(ImageNotAllowed):
        await att.attest_worker(mv, evidence, node_key=bytes(key.verify_key), encryption_key=enc, now=0,
                                image_allowed=nothing)

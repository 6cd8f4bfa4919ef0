"""TdxVerifier on real Intel quotes and collateral (tests/attestation/data/)."""

from __future__ import annotations

import json
from collections.abc import Callable

import dcap_qvl
import pytest
from nacl.signing import SigningKey

from offchain.attestation import (
    Evidence,
    TdxPolicy,
    TdxVerifier,
    image_measurement,
    make_dev_evidence,
    report_data_binding,
)
from offchain.attestation._tdx import classify_dcap_error
from offchain.errors import (
    AttestationError,
    CollateralExpired,
    CollateralInvalid,
    CollateralMissing,
    DebugTdRefused,
    EvidenceMalformed,
    ImageNotAllowed,
    QuoteCertificationInvalid,
    QuoteRejected,
    QuoteSignatureInvalid,
    ReportDataMismatch,
    TcbRejected,
    UnsupportedEvidence,
)

from .conftest import (
    ENCRYPTION_KEY,
    NODE_KEY,
    OFF_BODY_SIGNATURE,
    OFF_MR_TD,
    OFF_QE_REPORT_SIGNATURE,
    OFF_REPORT_DATA,
    OFF_TD_ATTRIBUTES,
    OUTDATED_NOW,
    TDX_FMSPC,
    TDX_NOW,
    TDX_WINDOW,
    flip,
    read,
)

# The TD report of tdx_quote (data/README.md).
MR_TD = bytes.fromhex(
    "91eb2b44d141d4ece09f0c75c2c53d247a3c68edd7fafe8a3520c942a604a407de03ae6dc5f87f27428b2538873118b7"
)
RT_MR0 = bytes.fromhex(
    "44c0197b39157fdd7a4dcc44767f9d6b0bb3977c7a8e347b8492f827fe9d9e5c48aca29b220b80b6a540cf994b9bc9c0"
)
RT_MR1 = bytes.fromhex(
    "0084452c01668329d4bc06acdf58a7205c26743304509973949e5619bf81a6a7aea8c323c173019b3093d54e579e9378"
)
RT_MR2 = bytes.fromhex(
    "d833feef2cd945148aa38ead2c53e9b7f138190aaaebfc551dccd829fc207aa3ba80b70870d7330733642e01d48c3132"
)
MEASUREMENT = image_measurement(MR_TD, RT_MR0, RT_MR1, RT_MR2)
IMAGES = {MEASUREMENT}


def expect_exactly(report_data: bytes) -> Callable[[bytes, bytes], bytes]:
    """A binding that expects `report_data` for (NODE_KEY, ENCRYPTION_KEY) and the real binding otherwise."""

    def binding(node_key: bytes, encryption_key: bytes) -> bytes:
        if (node_key, encryption_key) == (NODE_KEY, ENCRYPTION_KEY):
            return report_data
        return report_data_binding(node_key, encryption_key)

    return binding


def evidence(quote: bytes, collateral: bytes | None, encryption_key: bytes = ENCRYPTION_KEY) -> Evidence:
    return Evidence(kind="tdx", quote=quote, encryption_key=encryption_key, collateral=collateral)


@pytest.fixture
def verifier(tdx_report_data: bytes) -> TdxVerifier:
    """A verifier that expects exactly the real quote's report data for our keys."""
    return TdxVerifier(binding=expect_exactly(tdx_report_data))


def test_valid_quote_passes_at_suggested_time(verifier: TdxVerifier, tdx_quote: bytes, tdx_collateral: bytes) -> None:
    got = verifier.verify(evidence(tdx_quote, tdx_collateral), node_key=NODE_KEY, now=TDX_NOW, allowed_images=IMAGES)
    assert got.kind == "tdx"
    assert got.measurement == MEASUREMENT and len(got.measurement) == 32
    assert (got.node_key, got.encryption_key) == (NODE_KEY, ENCRYPTION_KEY)
    assert got.tcb_status == "UpToDate"
    assert got.advisory_ids == ()
    assert got.debug is False


@pytest.mark.parametrize("now", TDX_WINDOW)
def test_valid_quote_passes_at_window_edges(
    verifier: TdxVerifier, tdx_quote: bytes, tdx_collateral: bytes, now: int
) -> None:
    verifier.verify(evidence(tdx_quote, tdx_collateral), node_key=NODE_KEY, now=now, allowed_images=IMAGES)


@pytest.mark.parametrize("now", [TDX_WINDOW[0] - 1, TDX_WINDOW[1] + 1, 1700000000, 1800000000])
def test_valid_quote_outside_window_is_refused(
    verifier: TdxVerifier, tdx_quote: bytes, tdx_collateral: bytes, now: int
) -> None:
    with pytest.raises(CollateralExpired) as exc:
        verifier.verify(evidence(tdx_quote, tdx_collateral), node_key=NODE_KEY, now=now, allowed_images=IMAGES)
    assert exc.value.now == now
    assert verifier.cached_fmspcs() == frozenset()


def test_quote_binding_other_keys_is_refused_for_ours(tdx_quote: bytes, tdx_collateral: bytes) -> None:
    """The real quote binds keys that are not ours: the default binding must refuse it."""
    with pytest.raises(ReportDataMismatch) as exc:
        TdxVerifier().verify(evidence(tdx_quote, tdx_collateral), node_key=NODE_KEY, now=TDX_NOW, allowed_images=IMAGES)
    assert exc.value.expected == report_data_binding(NODE_KEY, ENCRYPTION_KEY)
    assert exc.value.actual == tdx_quote[OFF_REPORT_DATA : OFF_REPORT_DATA + 64]


@pytest.mark.parametrize(
    ("node_key", "encryption_key"),
    [(NODE_KEY, bytes(32)), (bytes(32), ENCRYPTION_KEY), (ENCRYPTION_KEY, NODE_KEY)],
)
def test_quote_binding_checks_both_keys(
    verifier: TdxVerifier, tdx_quote: bytes, tdx_collateral: bytes, node_key: bytes, encryption_key: bytes
) -> None:
    """Expecting the quote's report data for (NODE_KEY, ENCRYPTION_KEY) only: any other pair fails."""
    with pytest.raises(ReportDataMismatch):
        verifier.verify(
            evidence(tdx_quote, tdx_collateral, encryption_key), node_key=node_key, now=TDX_NOW, allowed_images=IMAGES
        )


def test_outdated_quote_is_refused() -> None:
    quote = read("tdx_quote_outdated")  # quote v5: its TD report 1.5 sits after a 6-byte body descriptor
    report_data = dcap_qvl.parse_quote(quote).report.report_data
    v = TdxVerifier(binding=lambda _n, _e: report_data)
    ev = evidence(quote, read("tdx_quote_outdated_collateral.json"))
    with pytest.raises(TcbRejected) as exc:
        v.verify(ev, node_key=NODE_KEY, now=OUTDATED_NOW, allowed_images=lambda _m: True)
    assert exc.value.status is None and "No matching TCB level" in exc.value.detail


def test_sgx_quote_is_refused_as_not_tdx() -> None:
    ev = evidence(read("sgx_quote"), read("sgx_quote_collateral.json"))
    with pytest.raises(UnsupportedEvidence, match="SGX"):
        TdxVerifier().verify(ev, node_key=NODE_KEY, now=TDX_NOW, allowed_images=lambda _m: True)


def test_flipped_body_byte_is_refused_as_bad_signature(
    verifier: TdxVerifier, tdx_quote: bytes, tdx_collateral: bytes
) -> None:
    ev = evidence(flip(tdx_quote, OFF_MR_TD), tdx_collateral)
    with pytest.raises(QuoteSignatureInvalid):
        verifier.verify(ev, node_key=NODE_KEY, now=TDX_NOW, allowed_images=lambda _m: True)


def test_flipped_body_signature_byte_is_refused_as_bad_signature(
    verifier: TdxVerifier, tdx_quote: bytes, tdx_collateral: bytes
) -> None:
    """A change to the body or to its ECDSA signature cannot be told apart: both are this error."""
    ev = evidence(flip(tdx_quote, OFF_BODY_SIGNATURE), tdx_collateral)
    with pytest.raises(QuoteSignatureInvalid):
        verifier.verify(ev, node_key=NODE_KEY, now=TDX_NOW, allowed_images=IMAGES)


def test_flipped_qe_report_signature_byte_is_refused_as_uncertified(
    verifier: TdxVerifier, tdx_quote: bytes, tdx_collateral: bytes
) -> None:
    ev = evidence(flip(tdx_quote, OFF_QE_REPORT_SIGNATURE), tdx_collateral)
    with pytest.raises(QuoteCertificationInvalid):
        verifier.verify(ev, node_key=NODE_KEY, now=TDX_NOW, allowed_images=IMAGES)


def test_flipped_report_data_byte_is_refused_as_mismatch(
    verifier: TdxVerifier, tdx_quote: bytes, tdx_collateral: bytes
) -> None:
    ev = evidence(flip(tdx_quote, OFF_REPORT_DATA), tdx_collateral)
    with pytest.raises(ReportDataMismatch):
        verifier.verify(ev, node_key=NODE_KEY, now=TDX_NOW, allowed_images=IMAGES)


def test_flipped_report_data_byte_expected_exactly_is_refused_as_bad_signature(
    tdx_quote: bytes, tdx_collateral: bytes
) -> None:
    """Even a verifier that expects the tampered report data refuses it: the signature covers it."""
    tampered = flip(tdx_quote, OFF_REPORT_DATA)
    v = TdxVerifier(binding=expect_exactly(tampered[OFF_REPORT_DATA : OFF_REPORT_DATA + 64]))
    with pytest.raises(QuoteSignatureInvalid):
        v.verify(evidence(tampered, tdx_collateral), node_key=NODE_KEY, now=TDX_NOW, allowed_images=IMAGES)


def test_flipped_bytes_in_body_signature_and_report_data_give_distinct_errors(
    verifier: TdxVerifier, tdx_quote: bytes, tdx_collateral: bytes
) -> None:
    seen: list[type[AttestationError]] = []
    for offset in (OFF_MR_TD, OFF_QE_REPORT_SIGNATURE, OFF_REPORT_DATA):
        with pytest.raises(AttestationError) as exc:
            verifier.verify(
                evidence(flip(tdx_quote, offset), tdx_collateral), node_key=NODE_KEY, now=TDX_NOW, allowed_images=IMAGES
            )
        seen.append(type(exc.value))
    assert seen == [QuoteSignatureInvalid, QuoteCertificationInvalid, ReportDataMismatch]


def test_debug_td_is_refused(verifier: TdxVerifier, tdx_quote: bytes, tdx_collateral: bytes) -> None:
    """The real quote with its DEBUG attribute bit set (so also no longer signed) is named a debug TD."""
    ev = evidence(flip(tdx_quote, OFF_TD_ATTRIBUTES, 0x01), tdx_collateral)
    with pytest.raises(DebugTdRefused) as exc:
        verifier.verify(ev, node_key=NODE_KEY, now=TDX_NOW, allowed_images=IMAGES)
    assert exc.value.td_attributes[0] & 1


@pytest.mark.parametrize("allowed", [set(), {bytes(32)}, lambda _m: False])
def test_image_not_in_allowlist_is_refused(
    verifier: TdxVerifier, tdx_quote: bytes, tdx_collateral: bytes, allowed: object
) -> None:
    with pytest.raises(ImageNotAllowed) as exc:
        verifier.verify(
            evidence(tdx_quote, tdx_collateral),
            node_key=NODE_KEY,
            now=TDX_NOW,
            allowed_images=allowed,  # type: ignore[arg-type]
        )
    assert exc.value.measurement == MEASUREMENT


def test_image_allowlist_predicate_sees_the_measurement(
    verifier: TdxVerifier, tdx_quote: bytes, tdx_collateral: bytes
) -> None:
    root_images = {int.from_bytes(MEASUREMENT, "big")}  # Root holds uint256 values
    got = verifier.verify(
        evidence(tdx_quote, tdx_collateral),
        node_key=NODE_KEY,
        now=TDX_NOW,
        allowed_images=lambda m: int.from_bytes(m, "big") in root_images,
    )
    assert got.measurement == MEASUREMENT


def test_tcb_status_outside_policy_is_refused(tdx_quote: bytes, tdx_collateral: bytes, tdx_report_data: bytes) -> None:
    policy = TdxPolicy(allowed_tcb_statuses=frozenset({"SWHardeningNeeded"}))
    v = TdxVerifier(policy, binding=expect_exactly(tdx_report_data))
    with pytest.raises(TcbRejected) as exc:
        v.verify(evidence(tdx_quote, tdx_collateral), node_key=NODE_KEY, now=TDX_NOW, allowed_images=IMAGES)
    assert exc.value.status == "UpToDate"


def test_tcb_status_in_wider_policy_passes(tdx_quote: bytes, tdx_collateral: bytes, tdx_report_data: bytes) -> None:
    policy = TdxPolicy(allowed_tcb_statuses=frozenset({"UpToDate", "SWHardeningNeeded"}))
    v = TdxVerifier(policy, binding=expect_exactly(tdx_report_data))
    got = v.verify(evidence(tdx_quote, tdx_collateral), node_key=NODE_KEY, now=TDX_NOW, allowed_images=IMAGES)
    assert got.tcb_status == "UpToDate"


def test_quote_alone_after_first_time_uses_cached_collateral(
    verifier: TdxVerifier, tdx_quote: bytes, tdx_collateral: bytes
) -> None:
    verifier.verify(evidence(tdx_quote, tdx_collateral), node_key=NODE_KEY, now=TDX_NOW, allowed_images=IMAGES)
    assert verifier.cached_fmspcs() == {TDX_FMSPC}
    got = verifier.verify(evidence(tdx_quote, None), node_key=NODE_KEY, now=TDX_NOW, allowed_images=IMAGES)
    assert got.tcb_status == "UpToDate"
    with pytest.raises(CollateralExpired):  # the cached collateral expires like any other
        verifier.verify(evidence(tdx_quote, None), node_key=NODE_KEY, now=TDX_WINDOW[1] + 1, allowed_images=IMAGES)


def test_quote_alone_without_cached_collateral_is_refused(verifier: TdxVerifier, tdx_quote: bytes) -> None:
    with pytest.raises(CollateralMissing) as exc:
        verifier.verify(evidence(tdx_quote, None), node_key=NODE_KEY, now=TDX_NOW, allowed_images=IMAGES)
    assert exc.value.fmspc == TDX_FMSPC


def test_failed_verification_does_not_cache_collateral(
    verifier: TdxVerifier, tdx_quote: bytes, tdx_collateral: bytes
) -> None:
    with pytest.raises(QuoteSignatureInvalid):
        verifier.verify(
            evidence(flip(tdx_quote, OFF_MR_TD), tdx_collateral), node_key=NODE_KEY, now=TDX_NOW, allowed_images=IMAGES
        )
    assert verifier.cached_fmspcs() == frozenset()


@pytest.mark.parametrize(
    ("collateral", "now"),
    [
        ("sgx_quote_collateral.json", TDX_NOW),  # SGX QE identity for a TDX quote
        ("tdx_quote_outdated_collateral.json", OUTDATED_NOW),  # another platform's FMSPC
    ],
)
def test_collateral_for_another_platform_is_refused(
    verifier: TdxVerifier, tdx_quote: bytes, collateral: str, now: int
) -> None:
    with pytest.raises(CollateralInvalid):
        verifier.verify(evidence(tdx_quote, read(collateral)), node_key=NODE_KEY, now=now, allowed_images=IMAGES)


@pytest.mark.parametrize("garbage", [b"", b"{}", b"\xff\xfe", b"[1, 2]"])
def test_unparseable_collateral_is_refused(verifier: TdxVerifier, tdx_quote: bytes, garbage: bytes) -> None:
    with pytest.raises(CollateralInvalid):
        verifier.verify(evidence(tdx_quote, garbage), node_key=NODE_KEY, now=TDX_NOW, allowed_images=IMAGES)


def _retimed(collateral: bytes, eval_number: int) -> bytes:
    """The collateral with its TCB info's evaluation data number changed (so Intel's signature breaks)."""
    doc = json.loads(collateral)
    tcb = json.loads(doc["tcb_info"])
    tcb["tcbEvaluationDataNumber"] = eval_number
    doc["tcb_info"] = json.dumps(tcb)
    return json.dumps(doc).encode()


def test_tampered_collateral_is_refused(verifier: TdxVerifier, tdx_quote: bytes, tdx_collateral: bytes) -> None:
    with pytest.raises(CollateralInvalid, match="tcb_info"):
        verifier.verify(
            evidence(tdx_quote, _retimed(tdx_collateral, 99)), node_key=NODE_KEY, now=TDX_NOW, allowed_images=IMAGES
        )


def test_older_collateral_is_not_used_over_cached_newer(
    verifier: TdxVerifier, tdx_quote: bytes, tdx_collateral: bytes
) -> None:
    verifier.verify(evidence(tdx_quote, tdx_collateral), node_key=NODE_KEY, now=TDX_NOW, allowed_images=IMAGES)
    # An older evaluation (16 < 17) is ignored in favour of the cached newer one: this passes
    # although its own signature is broken.
    older = evidence(tdx_quote, _retimed(tdx_collateral, 16))
    verifier.verify(older, node_key=NODE_KEY, now=TDX_NOW, allowed_images=IMAGES)
    # A newer one is used, fails, and leaves the cache as it was.
    with pytest.raises(CollateralInvalid):
        verifier.verify(
            evidence(tdx_quote, _retimed(tdx_collateral, 18)), node_key=NODE_KEY, now=TDX_NOW, allowed_images=IMAGES
        )
    verifier.verify(evidence(tdx_quote, None), node_key=NODE_KEY, now=TDX_NOW, allowed_images=IMAGES)


@pytest.mark.parametrize("quote", [b"", b"\x00" * 10, b"\x04\x00"], ids=["empty", "zeros", "header-only"])
def test_undecodable_quote_is_refused_as_malformed(verifier: TdxVerifier, quote: bytes, tdx_collateral: bytes) -> None:
    with pytest.raises(EvidenceMalformed):
        verifier.verify(evidence(quote, tdx_collateral), node_key=NODE_KEY, now=TDX_NOW, allowed_images=IMAGES)


def test_flipped_version_byte_is_refused_as_malformed(
    verifier: TdxVerifier, tdx_quote: bytes, tdx_collateral: bytes
) -> None:
    with pytest.raises(EvidenceMalformed):
        verifier.verify(
            evidence(flip(tdx_quote, 0), tdx_collateral), node_key=NODE_KEY, now=TDX_NOW, allowed_images=IMAGES
        )


def test_oversized_quote_or_wrong_key_size_is_refused(verifier: TdxVerifier, tdx_quote: bytes) -> None:
    with pytest.raises(EvidenceMalformed):
        verifier.verify(evidence(tdx_quote * 4, None), node_key=NODE_KEY, now=TDX_NOW, allowed_images=IMAGES)
    with pytest.raises(EvidenceMalformed):
        verifier.verify(evidence(tdx_quote, None, b"k" * 31), node_key=NODE_KEY, now=TDX_NOW, allowed_images=IMAGES)
    with pytest.raises(ValueError):
        verifier.verify(evidence(tdx_quote, None), node_key=b"n" * 31, now=TDX_NOW, allowed_images=IMAGES)


def test_dev_evidence_is_refused_by_tdx_verifier(verifier: TdxVerifier) -> None:
    ev = make_dev_evidence(SigningKey.generate(), ENCRYPTION_KEY, MEASUREMENT)
    with pytest.raises(UnsupportedEvidence):
        verifier.verify(ev, node_key=NODE_KEY, now=TDX_NOW, allowed_images=IMAGES)


@pytest.mark.parametrize(
    ("message", "cls"),
    [
        ("Verification failed: ISV enclave report signature is invalid", QuoteSignatureInvalid),
        ("Verification failed: QE report hash mismatch", QuoteCertificationInvalid),
        ("Verification failed: Signature is invalid for qe_report in quote", QuoteCertificationInvalid),
        (
            "Verification failed: Failed to verify certificate chain\n\nCaused by:\n    CaUsedAsEndEntity",
            QuoteCertificationInvalid,
        ),
        (
            "Verification failed: Failed to verify certificate chain\n\nCaused by:\n    CrlExpired { time: 1 }",
            CollateralExpired,
        ),
        ("Verification failed: QE Identity issue date is in the future", CollateralExpired),
        ("Verification failed: TCBInfo expired", CollateralExpired),
        ("Verification failed: Fmspc mismatch", CollateralInvalid),
        ("Verification failed: Signature is invalid for tcb_info", CollateralInvalid),
        ("Verification failed: Unsupported QE Identity id/version for the quote TEE type: 1", CollateralInvalid),
        ("Verification failed: No matching TCB level found", TcbRejected),
        ("Verification failed: TCB status is invalid: Revoked", TcbRejected),
        ("Verification failed: Failed to decode quote\n\nCaused by:\n    Unsupported body type", EvidenceMalformed),
        ("Verification failed: TD migration is enabled", QuoteRejected),
    ],
)
def test_classify_dcap_error_names_each_refusal(message: str, cls: type[AttestationError]) -> None:
    err = classify_dcap_error(message, now=TDX_NOW)
    assert type(err) is cls
    assert "Verification failed" not in str(err)

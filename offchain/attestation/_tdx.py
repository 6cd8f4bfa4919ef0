"""The Intel TDX verifier: a quote checked with dcap-qvl against Intel's collateral at `now`.

Checks, in this order (every one must pass; the order only decides which refusal is named
when several apply, and the ones that need no cryptography come first):

1. the evidence is a TDX quote (`UnsupportedEvidence` for SGX), and decodes (`EvidenceMalformed`);
2. its report data is the binding of (node key, encryption key) (`ReportDataMismatch`);
3. the TD is not a debug TD (`DebugTdRefused`);
4. dcap-qvl verifies the quote against the collateral at `now`: the attestation key's
   signature over header + TD report (`QuoteSignatureInvalid`), the QE report and PCK chain
   up to Intel's root (`QuoteCertificationInvalid`), the collateral's signatures and that it is
   for the quote's FMSPC (`CollateralInvalid`), validity windows (`CollateralExpired`), and a
   matching TCB level (`TcbRejected`);
5. the TCB status is one the policy allows and no rejected advisory applies (`TcbRejected`);
6. the image measurement is in Root's allowlist (`ImageNotAllowed`).

Collateral comes with the quote (the verifier fetches nothing). Once a collateral has
verified a quote it is cached per FMSPC, so a worker may later send its quote alone. The
cache keeps the newest collateral per FMSPC (TCB evaluation data number, then issue date),
and a quote is always checked against the newest one known, so a worker cannot roll a
platform back to an older TCB evaluation by sending old (still unexpired) collateral.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, field

import dcap_qvl

from offchain.attestation._core import (
    Attested,
    Evidence,
    ImagePolicy,
    check_evidence,
    image_allowed,
    image_measurement,
    report_data_binding,
)
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

__all__ = ["TD_ATTRIBUTE_DEBUG", "TdxPolicy", "TdxVerifier", "classify_dcap_error"]

log = logging.getLogger("cocoon.attestation")

TD_ATTRIBUTE_DEBUG = 0x01  # TDATTRIBUTES bit 0 (TUD.DEBUG), in the first byte of td_attributes
_MAX_CHAINS = 4096  # PCK chains whose FMSPC is remembered (one per worker platform)


@dataclass(frozen=True)
class TdxPolicy:
    """Which platforms pass, beyond a valid quote.

    Attributes:
        allowed_tcb_statuses: Intel TCB statuses that pass ("UpToDate" only by default; add e.g.
            "SWHardeningNeeded" or "ConfigurationNeeded" to accept platforms that need them).
        rejected_advisories: Intel advisory ids ("INTEL-SA-00615") that refuse a quote whatever
            its status.
    """

    allowed_tcb_statuses: frozenset[str] = field(default_factory=lambda: frozenset({"UpToDate"}))
    rejected_advisories: frozenset[str] = frozenset()


@dataclass(frozen=True)
class _Cached:
    raw: bytes  # the JSON as sent, so the same collateral sent again is not parsed again
    collateral: dcap_qvl.QuoteCollateralV3
    freshness: tuple[int, str]  # (tcbEvaluationDataNumber, issueDate in RFC 3339 Z form)


# dcap-qvl 0.7.0 raises ValueError("Verification failed: <reason>") for every refusal. The
# reasons are matched in this order (first hit wins): expiry first, because a chain that
# fails on an expired CRL says "Failed to verify certificate chain ... CrlExpired".
_EXPIRED = ("expired", "Expired", "in the future", "not valid after", "not valid before", "NotValidYet")
_TCB = ("No matching TCB level", "TCB status is invalid")
_SIGNATURE = ("ISV enclave report signature",)
_COLLATERAL = (
    "Fmspc mismatch",
    "tcb_info",
    "qe_identity",
    "QE Identity",
    "TCB Info",
    "TCB info",
    "root CA CRL",
    "PCK CRL",
    "InvalidCrlSignature",
)
_CERTIFICATION = (
    "qe_report",
    "QE report",
    "certificate chain",
    "PCK cert",
    "QE MRSIGNER",
    "QE ISVPRODID",
    "QE ATTRIBUTES",
    "QE MISCSELECT",
    "CertRevoked",
    "UnknownIssuer",
)
_MALFORMED = ("decode", "Unsupported DCAP", "Invalid body", "Invalid TEE", "Unsupported body", "Unsupported cert")


def classify_dcap_error(message: str, *, now: int) -> AttestationError:
    """The typed error for a dcap-qvl refusal message.

    Args:
        message: `str()` of the ValueError dcap-qvl raised.
        now: the verification time (for `CollateralExpired`).

    Returns:
        The AttestationError subclass that names the refusal (`QuoteRejected` if none does).
    """
    detail = message.removeprefix("Verification failed: ").strip()

    def has(needles: tuple[str, ...]) -> bool:
        return any(n in detail for n in needles)

    if has(_EXPIRED):
        return CollateralExpired(now, detail)
    if has(_TCB):
        return TcbRejected(None, detail=detail)
    if has(_SIGNATURE):
        return QuoteSignatureInvalid(detail)
    if has(_COLLATERAL):
        return CollateralInvalid(detail)
    if has(_CERTIFICATION):
        return QuoteCertificationInvalid(detail)
    if has(_MALFORMED):
        return EvidenceMalformed("quote", detail)
    return QuoteRejected(detail)


def _parse_collateral(raw: bytes) -> _Cached:
    try:
        text = raw.decode()
        collateral = dcap_qvl.QuoteCollateralV3.from_json(text)
        tcb_info = json.loads(collateral.tcb_info)
        freshness = (int(tcb_info["tcbEvaluationDataNumber"]), str(tcb_info["issueDate"]))
    except (UnicodeDecodeError, ValueError, KeyError, TypeError) as err:
        raise CollateralInvalid(f"cannot parse: {err}") from err
    return _Cached(raw, collateral, freshness)


class TdxVerifier:
    """Verifies Intel TDX quotes (see the module docstring for the checks and their order).

    Args:
        policy: which TCB statuses and advisories pass (`UpToDate` only by default).
        binding: the report data expected for (node_key, encryption_key); `report_data_binding`
            unless a test injects another.

    The collateral cache is per instance: share one `TdxVerifier` for all of an agent's
    peers. `verify` is synchronous and CPU-bound (about 1 ms); it is not safe to call from
    several threads at once.
    """

    kind = "tdx"

    def __init__(
        self,
        policy: TdxPolicy | None = None,
        *,
        binding: Callable[[bytes, bytes], bytes] = report_data_binding,
    ) -> None:
        self.policy = policy if policy is not None else TdxPolicy()
        self._binding = binding
        self._cache: dict[bytes, _Cached] = {}
        # PCK chain -> FMSPC, filled only by quotes that verified: reading the FMSPC parses the
        # PCK certificate (~0.1 ms, a tenth of a verification), and a worker's chain never changes.
        self._fmspc_of: dict[bytes, bytes] = {}

    def cached_fmspcs(self) -> frozenset[bytes]:
        """The FMSPCs (6 bytes each) whose collateral is cached."""
        return frozenset(self._cache)

    def verify(self, evidence: Evidence, *, node_key: bytes, now: int, allowed_images: ImagePolicy) -> Attested:
        """Verify a TDX quote for the worker with `node_key` at Unix time `now`.

        Args:
            evidence: kind "tdx"; `collateral` None to use the cached one for the quote's FMSPC.
            node_key: the worker's node key (32 bytes).
            now: Unix seconds at which collateral and certificates must be valid.
            allowed_images: Root's image allowlist (32-byte measurements, or a predicate).

        Returns:
            The attested measurement, keys and TCB status.

        Raises:
            ValueError: `node_key` is not 32 bytes.
            AttestationError: a subclass naming the first check that failed (module docstring).
        """
        if evidence.kind != "tdx":
            raise UnsupportedEvidence(evidence.kind, "the TDX verifier checks only 'tdx' evidence")
        check_evidence(evidence, node_key)
        raw = bytes(evidence.quote)
        try:
            quote = dcap_qvl.parse_quote(raw)
            is_tdx = quote.is_tdx()
            chain = quote.cert_chain_pem_bytes()
        except ValueError as err:
            raise EvidenceMalformed("quote", str(err)) from err
        if not is_tdx:
            raise UnsupportedEvidence("tdx", "an SGX enclave quote, not a TDX quote")
        report = quote.report

        expected = self._binding(node_key, evidence.encryption_key)
        if report.report_data != expected:
            raise ReportDataMismatch(expected, report.report_data)
        if report.td_attributes[0] & TD_ATTRIBUTE_DEBUG:
            raise DebugTdRefused(report.td_attributes)

        fmspc = self._fmspc_of.get(chain)
        if fmspc is None:
            try:
                fmspc = bytes.fromhex(quote.fmspc())
            except ValueError as err:
                raise EvidenceMalformed("quote", f"no FMSPC in the PCK certificate: {err}") from err
        cached = self._cache.get(fmspc)
        supplied: _Cached | None = None
        if evidence.collateral is not None:
            if cached is not None and cached.raw == evidence.collateral:
                supplied = cached
            else:
                supplied = _parse_collateral(bytes(evidence.collateral))
        use = cached
        if supplied is not None and (cached is None or supplied.freshness >= cached.freshness):
            use = supplied
        if use is None:
            raise CollateralMissing(fmspc)

        try:
            verified = dcap_qvl.verify(raw, use.collateral, now)
        except ValueError as err:
            raise classify_dcap_error(str(err), now=now) from err
        if chain not in self._fmspc_of:
            if len(self._fmspc_of) >= _MAX_CHAINS:
                self._fmspc_of.clear()
            self._fmspc_of[chain] = fmspc
        if use is not cached:
            self._cache[fmspc] = use
            if log.isEnabledFor(logging.DEBUG):
                log.debug("collateral cached fmspc=%s tcb_eval=%d issued=%s", fmspc.hex(), *use.freshness)

        status = verified.status
        advisories = tuple(verified.advisory_ids)
        if status not in self.policy.allowed_tcb_statuses:
            raise TcbRejected(status, advisories, detail=f"policy allows {sorted(self.policy.allowed_tcb_statuses)}")
        bad = self.policy.rejected_advisories.intersection(advisories)
        if bad:
            raise TcbRejected(status, advisories, detail=f"rejected advisories {sorted(bad)}")

        measurement = image_measurement(report.mr_td, report.rt_mr0, report.rt_mr1, report.rt_mr2)
        if not image_allowed(allowed_images, measurement):
            raise ImageNotAllowed(measurement)
        return Attested(
            kind="tdx",
            measurement=measurement,
            node_key=bytes(node_key),
            encryption_key=bytes(evidence.encryption_key),
            tcb_status=status,
            advisory_ids=advisories,
            debug=False,
        )

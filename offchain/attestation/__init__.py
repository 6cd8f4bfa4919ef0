"""Worker attestation: is this peer running an allowed image in a genuine TD, with these keys?

One `Verifier` interface, two implementations: `TdxVerifier` (an Intel TDX quote checked
with dcap-qvl against Intel's collateral at a given time) and `DevVerifier` (an insecure,
self-declared measurement signed by the node key; only where Root allows dev attestation).
`MultiVerifier` picks one by the evidence's kind. Definitions made once, here:
`image_measurement` (what Root's image allowlist holds) and `report_data_binding` (what a
quote's report data must be for a worker's node key and encryption key).

No I/O: collateral comes with the evidence and is cached per FMSPC by the `TdxVerifier`.
"""

from __future__ import annotations

from offchain.attestation._core import (
    Attested,
    Evidence,
    ImagePolicy,
    Verifier,
    decode_evidence,
    encode_evidence,
    image_measurement,
    report_data_binding,
)
from offchain.attestation._dev import DevQuote, DevVerifier, make_dev_evidence
from offchain.attestation._multi import MultiVerifier, verifier_for
from offchain.attestation._peer import attest_worker
from offchain.attestation._tdx import TdxPolicy, TdxVerifier

__all__ = [
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

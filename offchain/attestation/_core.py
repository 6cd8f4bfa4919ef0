"""What every verifier shares: the evidence a worker sends, the result, the two definitions.

The two definitions (DESIGN.md, "Attestation binding") live here and nowhere else:

- `image_measurement(mrtd, rtmr0, rtmr1, rtmr2)` = SHA-256(IMAGE_TAG || MRTD || RTMR0 || RTMR1 || RTMR2),
  each register 48 bytes. RTMR3 is left out: it is extended at run time by the workload.
  The 32-byte result is what Root's image allowlist holds (as a big-endian uint256).
- `report_data_binding(node_key, encryption_key)` = SHA-512(BINDING_TAG || node_key(32) || encryption_key(32)):
  the 64 bytes a worker's TD puts into its quote's report data.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Set
from dataclasses import dataclass
from typing import Annotated, Literal, Protocol

import msgspec
from msgspec import Meta

from offchain.errors import EvidenceMalformed

__all__ = [
    "BINDING_TAG",
    "IMAGE_TAG",
    "KEY_BYTES",
    "MAX_COLLATERAL_BYTES",
    "MAX_QUOTE_BYTES",
    "MEASUREMENT_BYTES",
    "Attested",
    "Evidence",
    "EvidenceKind",
    "ImagePolicy",
    "Verifier",
    "check_evidence",
    "decode_evidence",
    "encode_evidence",
    "image_allowed",
    "image_measurement",
    "report_data_binding",
]

IMAGE_TAG = b"cocoon/tdx-image/v1\x00"
BINDING_TAG = b"cocoon/attestation-binding/v1\x00"
KEY_BYTES = 32
MEASUREMENT_BYTES = 32
REGISTER_BYTES = 48  # MRTD and each RTMR are SHA-384 values
MAX_QUOTE_BYTES = 16 * 1024  # a TDX v4/v5 quote with its PCK chain is ~5 KB
MAX_COLLATERAL_BYTES = 256 * 1024  # Intel's collateral for one FMSPC is ~16-20 KB of JSON

EvidenceKind = Literal["tdx", "dev"]

# A set of allowed 32-byte measurements, or a predicate (e.g. one that asks Root's allowlist).
ImagePolicy = Callable[[bytes], bool] | Set[bytes]


def image_measurement(mrtd: bytes, rtmr0: bytes, rtmr1: bytes, rtmr2: bytes) -> bytes:
    """The 32-byte image measurement that Root's image allowlist holds.

    Args:
        mrtd: the TD's build-time measurement (48 bytes).
        rtmr0: firmware measurements (48 bytes).
        rtmr1: kernel / boot loader measurements (48 bytes).
        rtmr2: kernel command line and initrd measurements (48 bytes).

    Returns:
        SHA-256(IMAGE_TAG || mrtd || rtmr0 || rtmr1 || rtmr2).

    Raises:
        ValueError: a register is not 48 bytes.
    """
    regs = (mrtd, rtmr0, rtmr1, rtmr2)
    if any(len(r) != REGISTER_BYTES for r in regs):
        raise ValueError(f"MRTD and RTMR0-2 are {REGISTER_BYTES} bytes each, got {[len(r) for r in regs]}")
    return hashlib.sha256(IMAGE_TAG + b"".join(regs)).digest()


def report_data_binding(node_key: bytes, encryption_key: bytes) -> bytes:
    """The 64 bytes of report data that bind a worker's node key and encryption key.

    Args:
        node_key: the worker's ed25519 node key (32 bytes), the one it signs its Hello with.
        encryption_key: the key clients seal their inputs to (32 bytes).

    Returns:
        SHA-512(BINDING_TAG || node_key || encryption_key).

    Raises:
        ValueError: a key is not 32 bytes.
    """
    if len(node_key) != KEY_BYTES or len(encryption_key) != KEY_BYTES:
        raise ValueError(f"keys are {KEY_BYTES} bytes, got {len(node_key)} and {len(encryption_key)}")
    return hashlib.sha512(BINDING_TAG + node_key + encryption_key).digest()


class Evidence(msgspec.Struct, frozen=True, kw_only=True):
    """What a worker sends to be attested (msgpack on the wire: `encode_evidence`).

    Attributes:
        kind: "tdx" (an Intel TDX quote) or "dev" (an insecure, self-declared `DevQuote`).
        quote: the raw TDX quote, or the msgpack `DevQuote`.
        encryption_key: the key clients seal to; the quote must bind it with the node key.
        collateral: Intel PCS collateral for the quote's FMSPC as UTF-8 JSON (the layout
            `dcap_qvl.QuoteCollateralV3.from_json` reads), or None to use the verifier's cached one.
    """

    kind: EvidenceKind
    quote: Annotated[bytes, Meta(max_length=MAX_QUOTE_BYTES)]
    encryption_key: Annotated[bytes, Meta(min_length=KEY_BYTES, max_length=KEY_BYTES)]
    collateral: Annotated[bytes, Meta(max_length=MAX_COLLATERAL_BYTES)] | None = None


@dataclass(frozen=True)
class Attested:
    """A verified worker: what its evidence proved.

    Attributes:
        kind: "tdx" or "dev".
        measurement: the 32-byte image measurement (`image_measurement`; self-declared for dev).
        node_key: the node key the evidence binds (32 bytes).
        encryption_key: the encryption key the evidence binds (32 bytes).
        tcb_status: Intel's TCB status ("UpToDate", ...); None for dev evidence.
        advisory_ids: Intel security advisories that apply to the platform.
        debug: True when nothing shields the workload's memory from the host: never for an
            accepted TDX quote, always for dev evidence.
    """

    kind: EvidenceKind
    measurement: bytes
    node_key: bytes
    encryption_key: bytes
    tcb_status: str | None
    advisory_ids: tuple[str, ...]
    debug: bool


class Verifier(Protocol):
    """Checks one worker's evidence; `TdxVerifier`, `DevVerifier` and `MultiVerifier` implement it."""

    def verify(self, evidence: Evidence, *, node_key: bytes, now: int, allowed_images: ImagePolicy) -> Attested:
        """Verify `evidence` for the worker whose node key is `node_key`.

        Args:
            evidence: what the worker sent.
            node_key: the worker's node key (32 bytes), as its Hello / Root's registry has it.
            now: Unix seconds at which the collateral and certificates must be valid.
            allowed_images: Root's image allowlist (a set of 32-byte measurements, or a predicate).

        Returns:
            What the evidence proved.

        Raises:
            AttestationError: a subclass saying why the evidence is refused.
        """
        ...


def image_allowed(allowed_images: ImagePolicy, measurement: bytes) -> bool:
    """Whether `measurement` passes `allowed_images` (a set of measurements or a predicate)."""
    if callable(allowed_images):
        return bool(allowed_images(measurement))
    return measurement in allowed_images


def check_evidence(evidence: Evidence, node_key: bytes) -> None:
    """Check the sizes a Python-built `Evidence` skipped (msgspec checks them only when decoding).

    Raises:
        ValueError: `node_key` is not 32 bytes (the caller's own value, so a bug, not a refusal).
        EvidenceMalformed: the quote, collateral or encryption key has the wrong size.
    """
    if len(node_key) != KEY_BYTES:
        raise ValueError(f"node_key is {KEY_BYTES} bytes, got {len(node_key)}")
    if len(evidence.encryption_key) != KEY_BYTES:
        raise EvidenceMalformed("encryption key", f"{len(evidence.encryption_key)} bytes, expected {KEY_BYTES}")
    if len(evidence.quote) > MAX_QUOTE_BYTES:
        raise EvidenceMalformed("quote", f"{len(evidence.quote)} bytes, at most {MAX_QUOTE_BYTES}")
    if evidence.collateral is not None and len(evidence.collateral) > MAX_COLLATERAL_BYTES:
        raise EvidenceMalformed("collateral", f"{len(evidence.collateral)} bytes, at most {MAX_COLLATERAL_BYTES}")


_encoder = msgspec.msgpack.Encoder()
_decoder = msgspec.msgpack.Decoder(Evidence)


def encode_evidence(evidence: Evidence) -> bytes:
    """`evidence` as msgpack."""
    return _encoder.encode(evidence)


def decode_evidence(data: bytes) -> Evidence:
    """Decode and size-check msgpack `Evidence`.

    Raises:
        EvidenceMalformed: not a well-formed `Evidence`.
    """
    try:
        return _decoder.decode(data)
    except (msgspec.DecodeError, msgspec.ValidationError) as err:
        raise EvidenceMalformed("evidence", str(err)) from err

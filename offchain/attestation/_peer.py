"""Checking a worker the way the router and a client both do: its evidence (as the mesh
carries it) binds the keys it announces and measures an image Root allows."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from offchain.attestation._core import Attested, decode_evidence
from offchain.attestation._multi import MultiVerifier
from offchain.errors import AttestationError, ImageNotAllowed

__all__ = ["attest_worker"]


async def attest_worker(
    verifier: MultiVerifier,
    evidence: bytes,
    *,
    node_key: bytes,
    encryption_key: bytes,
    now: int,
    image_allowed: Callable[[bytes], Awaitable[bool]],
) -> Attested:
    """Verify a worker's encoded `evidence` for its announced `node_key` and `encryption_key`.

    The image check is asynchronous (Root's allowlist, through the caller's chain view), so
    it runs after the quote is verified, on the measurement the quote proves.

    Raises:
        AttestationError: the evidence is malformed, binds other keys, does not verify, or
            measures an image Root does not allow (a subclass says which).
    """
    if not evidence:
        raise AttestationError("the worker sent no attestation evidence")
    ev = decode_evidence(evidence)
    if ev.encryption_key != encryption_key:
        raise AttestationError("the evidence binds another encryption key than the one the worker announces")
    attested = verifier.verify(ev, node_key=node_key, now=now, allowed_images=lambda _m: True)
    if not await image_allowed(attested.measurement):
        raise ImageNotAllowed(attested.measurement)
    return attested

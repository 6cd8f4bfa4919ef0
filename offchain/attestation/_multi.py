"""Choosing a verifier by evidence kind, under Root's policy (TDX always; dev only if allowed)."""

from __future__ import annotations

from offchain.attestation._core import Attested, Evidence, ImagePolicy, Verifier
from offchain.attestation._dev import DevVerifier
from offchain.attestation._tdx import TdxPolicy, TdxVerifier
from offchain.errors import DevNotAllowed, UnsupportedEvidence

__all__ = ["MultiVerifier", "verifier_for"]


def verifier_for(
    kind: str, *, allow_dev: bool, tdx_policy: TdxPolicy | None = None, tdx: TdxVerifier | None = None
) -> Verifier:
    """The verifier for evidence of `kind`.

    Args:
        kind: "tdx" or "dev".
        allow_dev: whether Root's params allow dev attestation.
        tdx_policy: the TCB policy of a new TDX verifier (ignored when `tdx` is given).
        tdx: an existing TDX verifier to reuse (its collateral cache with it).

    Returns:
        A `TdxVerifier` for "tdx", a `DevVerifier` for "dev".

    Raises:
        DevNotAllowed: `kind` is "dev" and `allow_dev` is False.
        UnsupportedEvidence: any other kind.
    """
    if kind == "tdx":
        return tdx if tdx is not None else TdxVerifier(tdx_policy)
    if kind == "dev":
        if not allow_dev:
            raise DevNotAllowed()
        return DevVerifier(allow_dev=True)
    raise UnsupportedEvidence(kind, "known kinds are 'tdx' and 'dev'")


class MultiVerifier:
    """Verifies any evidence with the verifier its kind names.

    Args:
        allow_dev: whether Root's params allow dev attestation; an attribute, so an agent
            that follows Root's params sets it again when they change.
        tdx: the TDX verifier (a new one with `TdxPolicy()` by default); its collateral
            cache lives as long as this object.
    """

    def __init__(self, *, allow_dev: bool, tdx: TdxVerifier | None = None) -> None:
        self.allow_dev = allow_dev
        self.tdx = tdx if tdx is not None else TdxVerifier()

    def verify(self, evidence: Evidence, *, node_key: bytes, now: int, allowed_images: ImagePolicy) -> Attested:
        """Verify `evidence` with the TDX or the dev verifier (see `Verifier.verify`).

        Raises:
            DevNotAllowed: dev evidence while `allow_dev` is False.
            UnsupportedEvidence: an unknown kind.
            AttestationError: whatever the chosen verifier refuses.
        """
        verifier = verifier_for(evidence.kind, allow_dev=self.allow_dev, tdx=self.tdx)
        return verifier.verify(evidence, node_key=node_key, now=now, allowed_images=allowed_images)

"""Dev attestation: explicitly INSECURE, for networks whose Root allows it (devnets, tests).

No hardware is involved. A dev "quote" is a `DevQuote`: a self-declared image measurement,
the node key and the encryption key, signed by the node key (ed25519). It proves only that
the sender holds the node key and that this key vouches for the encryption key; the
measurement is whatever the sender claims. It is accepted only when `allow_dev` is True
(Root's params allow dev attestation), and its `Attested.debug` is always True.

Encoding: msgpack of `DevQuote` as an array `[measurement, node_key, encryption_key, signature]`;
the signature is over `DEV_TAG || measurement(32) || node_key(32) || encryption_key(32)`.
"""

from __future__ import annotations

from typing import Annotated

import msgspec
from msgspec import Meta
from nacl.exceptions import BadSignatureError
from nacl.signing import SigningKey, VerifyKey

from offchain.attestation._core import (
    KEY_BYTES,
    MEASUREMENT_BYTES,
    Attested,
    Evidence,
    ImagePolicy,
    check_evidence,
    image_allowed,
)
from offchain.errors import (
    DevNotAllowed,
    EvidenceMalformed,
    ImageNotAllowed,
    QuoteSignatureInvalid,
    ReportDataMismatch,
    UnsupportedEvidence,
)

__all__ = ["DEV_TAG", "DevQuote", "DevVerifier", "dev_quote_message", "make_dev_evidence"]

DEV_TAG = b"cocoon/dev-attestation/v1\x00"
_Key = Annotated[bytes, Meta(min_length=KEY_BYTES, max_length=KEY_BYTES)]


class DevQuote(msgspec.Struct, frozen=True, array_like=True):
    """A dev worker's self-signed statement (the `quote` of dev `Evidence`)."""

    measurement: Annotated[bytes, Meta(min_length=MEASUREMENT_BYTES, max_length=MEASUREMENT_BYTES)]
    node_key: _Key
    encryption_key: _Key
    signature: Annotated[bytes, Meta(min_length=64, max_length=64)]


_encoder = msgspec.msgpack.Encoder()
_decoder = msgspec.msgpack.Decoder(DevQuote)


def dev_quote_message(measurement: bytes, node_key: bytes, encryption_key: bytes) -> bytes:
    """The bytes a dev quote's signature covers: DEV_TAG || measurement || node_key || encryption_key."""
    return DEV_TAG + measurement + node_key + encryption_key


def make_dev_evidence(signing_key: SigningKey, encryption_key: bytes, measurement: bytes) -> Evidence:
    """Dev evidence for a worker whose node key is `signing_key`'s public key.

    Args:
        signing_key: the worker's node key (ed25519 signing key).
        encryption_key: the key clients seal to (32 bytes).
        measurement: the self-declared image measurement (32 bytes).

    Returns:
        Evidence of kind "dev" (no collateral).

    Raises:
        ValueError: a key or the measurement has the wrong size.
    """
    if len(encryption_key) != KEY_BYTES or len(measurement) != MEASUREMENT_BYTES:
        raise ValueError(f"encryption key and measurement are 32 bytes, got {len(encryption_key)}, {len(measurement)}")
    node_key = bytes(signing_key.verify_key)
    sig = signing_key.sign(dev_quote_message(measurement, node_key, encryption_key)).signature
    quote = DevQuote(measurement=measurement, node_key=node_key, encryption_key=encryption_key, signature=sig)
    return Evidence(kind="dev", quote=_encoder.encode(quote), encryption_key=encryption_key)


class DevVerifier:
    """Verifies dev evidence, and refuses all of it unless `allow_dev`.

    Args:
        allow_dev: whether Root's params allow dev attestation.
    """

    kind = "dev"

    def __init__(self, *, allow_dev: bool) -> None:
        self.allow_dev = allow_dev

    def verify(self, evidence: Evidence, *, node_key: bytes, now: int, allowed_images: ImagePolicy) -> Attested:
        """Verify a dev quote for the worker with `node_key` (`now` is unused: nothing expires).

        Args:
            evidence: kind "dev".
            node_key: the worker's node key (32 bytes).
            now: ignored.
            allowed_images: Root's image allowlist, checked against the declared measurement.

        Returns:
            The declared measurement, the keys, `tcb_status=None`, `debug=True`.

        Raises:
            ValueError: `node_key` is not 32 bytes.
            DevNotAllowed: `allow_dev` is False.
            UnsupportedEvidence: the evidence is not of kind "dev".
            EvidenceMalformed: the dev quote does not decode.
            ReportDataMismatch: the quote names another node key or encryption key.
            QuoteSignatureInvalid: the node key did not sign it.
            ImageNotAllowed: the declared measurement is not allowed.
        """
        if evidence.kind != "dev":
            raise UnsupportedEvidence(evidence.kind, "the dev verifier checks only 'dev' evidence")
        if not self.allow_dev:
            raise DevNotAllowed()
        check_evidence(evidence, node_key)
        try:
            quote = _decoder.decode(evidence.quote)
        except (msgspec.DecodeError, msgspec.ValidationError) as err:
            raise EvidenceMalformed("dev quote", str(err)) from err
        if quote.node_key != node_key or quote.encryption_key != evidence.encryption_key:
            raise ReportDataMismatch(node_key + evidence.encryption_key, quote.node_key + quote.encryption_key)
        try:
            VerifyKey(node_key).verify(
                dev_quote_message(quote.measurement, quote.node_key, quote.encryption_key), quote.signature
            )
        except BadSignatureError as err:
            raise QuoteSignatureInvalid("the dev quote is not signed by the node key") from err
        if not image_allowed(allowed_images, quote.measurement):
            raise ImageNotAllowed(quote.measurement)
        return Attested(
            kind="dev",
            measurement=quote.measurement,
            node_key=bytes(node_key),
            encryption_key=bytes(evidence.encryption_key),
            tcb_status=None,
            advisory_ids=(),
            debug=True,
        )

"""End-to-end sealing between a client and the workers it chose (DESIGN.md, "Sealing").

No I/O. A request is sealed once for up to 16 candidate workers (`seal_request`): its
payload under a fresh random key (SecretBox: XSalsa20-Poly1305), that key under PyNaCl
`Box(client ephemeral key, worker encryption key)` for each candidate. Whichever candidate
the router picks opens it (`open_request`) and seals the answer to the request's ephemeral
key (`seal_answer`); only the client opens that (`open_answer`), and only with the chosen
worker's key, so an answer from anyone else fails. A fresh ephemeral key per request means
two requests of one client cannot be linked by their keys.
"""

from __future__ import annotations

import msgspec
import nacl.utils
from nacl.exceptions import CryptoError
from nacl.public import Box, PrivateKey, PublicKey
from nacl.secret import SecretBox

from offchain.errors import InvalidMessage
from offchain.protocol.wire import Recipient, Sealed, SealedInput

__all__ = ["open_answer", "open_request", "open_request_box", "seal_answer", "seal_request", "seal_request_boxes"]

_encode = msgspec.msgpack.Encoder().encode
_decode_input = msgspec.msgpack.Decoder(SealedInput).decode


def seal_request(inputs: SealedInput, workers: list[bytes]) -> tuple[Sealed, PrivateKey]:
    """Seal `inputs` for each of `workers` (their encryption keys); returns the sealed request
    and the ephemeral key that opens the answer (keep it until then, then drop it)."""
    sealed, ephemeral, _ = seal_request_boxes(inputs, workers)
    return sealed, ephemeral


def seal_request_boxes(inputs: SealedInput, workers: list[bytes]) -> tuple[Sealed, PrivateKey, dict[bytes, Box]]:
    """`seal_request`, also returning each recipient's Box (its X25519 shared key): opening
    the answer with it (`open_answer(..., box=)`) saves computing it a second time."""
    if not 1 <= len(workers) <= 16:
        raise ValueError("a sealed request names 1 to 16 workers")
    ephemeral = PrivateKey.generate()
    key = nacl.utils.random(SecretBox.KEY_SIZE)
    payload = bytes(SecretBox(key).encrypt(_encode(inputs)))
    boxes = {w: Box(ephemeral, PublicKey(w)) for w in workers}
    recipients = [Recipient(worker=w, key_box=bytes(boxes[w].encrypt(key))) for w in workers]
    return Sealed(client_key=bytes(ephemeral.public_key), recipients=recipients, payload=payload), ephemeral, boxes


def open_request(sealed: Sealed, worker: PrivateKey) -> SealedInput:
    """The worker's side: the inputs, if `sealed` names this worker.

    Raises:
        InvalidMessage: not sealed to this worker, or tampered with.
    """
    return open_request_box(sealed, worker)[0]


def open_request_box(sealed: Sealed, worker: PrivateKey) -> tuple[SealedInput, Box]:
    """`open_request`, also returning the Box with the request's key, which seals the answer
    (`seal_answer(..., box=)`) without computing the shared key again."""
    mine = bytes(worker.public_key)
    for r in sealed.recipients:
        if r.worker == mine:
            try:
                box = Box(worker, PublicKey(sealed.client_key))
                key = box.decrypt(r.key_box)
                return _decode_input(SecretBox(key).decrypt(sealed.payload)), box
            except (CryptoError, msgspec.DecodeError, msgspec.ValidationError, ValueError) as err:
                raise InvalidMessage(f"the sealed request does not open: {err}") from err
    raise InvalidMessage("the request is not sealed to this worker")


def seal_answer(answer: bytes, worker: PrivateKey, client_key: bytes, *, box: Box | None = None) -> bytes:
    """The worker's side: `answer` sealed to the request's ephemeral key (`box`: the one
    `open_request_box` returned for this request)."""
    return bytes((box or Box(worker, PublicKey(client_key))).encrypt(answer))


def open_answer(sealed_answer: bytes, ephemeral: PrivateKey, worker: bytes, *, box: Box | None = None) -> bytes:
    """The client's side: the answer, if the worker with encryption key `worker` sealed it to
    this request's key.

    Raises:
        InvalidMessage: sealed by someone else, to someone else, or altered.
    """
    try:
        return bytes((box or Box(ephemeral, PublicKey(worker))).decrypt(sealed_answer))
    except (CryptoError, ValueError) as err:
        raise InvalidMessage("the answer is not sealed to this request by its worker") from err

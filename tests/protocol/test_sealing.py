"""Sealing without sockets: who can open what."""

from __future__ import annotations

import msgspec
import pytest
from nacl.public import PrivateKey

from offchain.errors import InvalidMessage
from offchain.protocol.sealing import (
    open_answer,
    open_request,
    open_request_box,
    seal_answer,
    seal_request,
    seal_request_boxes,
)
from offchain.protocol.wire import SealedInput

INPUTS = SealedInput(texts=["a confidential prompt", "another one"])


def keys(n: int) -> list[PrivateKey]:
    return [PrivateKey.generate() for _ in range(n)]


def test_every_recipient_opens_the_request_and_nobody_else() -> None:
    workers = keys(3)
    sealed, _ = seal_request(INPUTS, [bytes(w.public_key) for w in workers])
    assert INPUTS.texts[0].encode() not in msgspec.msgpack.encode(sealed)
    for w in workers:
        assert open_request(sealed, w) == INPUTS
    with pytest.raises(InvalidMessage, match="not sealed to this worker"):
        open_request(sealed, PrivateKey.generate())


def test_a_tampered_payload_or_key_box_does_not_open() -> None:
    (w,) = keys(1)
    sealed, _ = seal_request(INPUTS, [bytes(w.public_key)])
    bad_payload = msgspec.structs.replace(sealed, payload=sealed.payload[:-1] + bytes([sealed.payload[-1] ^ 1]))
    with pytest.raises(InvalidMessage, match="does not open"):
        open_request(bad_payload, w)
    r = sealed.recipients[0]
    bad_box = msgspec.structs.replace(sealed, recipients=[msgspec.structs.replace(r, key_box=bytes(len(r.key_box)))])
    with pytest.raises(InvalidMessage, match="does not open"):
        open_request(bad_box, w)


def test_only_the_request_key_opens_the_answer_and_only_from_its_worker() -> None:
    w, other = keys(2)
    sealed, ephemeral, boxes = seal_request_boxes(INPUTS, [bytes(w.public_key), bytes(other.public_key)])
    opened, box = open_request_box(sealed, w)
    assert opened == INPUTS
    answer = seal_answer(b"vectors", w, sealed.client_key, box=box)
    assert answer != seal_answer(b"vectors", w, sealed.client_key)  # a fresh nonce each time
    assert open_answer(answer, ephemeral, bytes(w.public_key)) == b"vectors"
    assert open_answer(answer, ephemeral, bytes(w.public_key), box=boxes[bytes(w.public_key)]) == b"vectors"
    with pytest.raises(InvalidMessage):  # claims to come from the other recipient
        open_answer(answer, ephemeral, bytes(other.public_key))
    with pytest.raises(InvalidMessage):  # sealed to some other key
        open_answer(seal_answer(b"vectors", w, bytes(PrivateKey.generate().public_key)), ephemeral, bytes(w.public_key))


def test_a_request_names_one_to_sixteen_workers() -> None:
    with pytest.raises(ValueError):
        seal_request(INPUTS, [])
    with pytest.raises(ValueError):
        seal_request(INPUTS, [bytes(k.public_key) for k in keys(17)])

"""A worker that cheats, for tests: the real `cocoon agent worker` with its answers altered
after the fact (COCOON_TEST_CHEAT): no hook in the agent itself.

- `wrong-seal`: seals the answer to a key that is not the client's, yet signs a receipt
  claiming it sealed it to the client (provable: the client disputes it and is refunded);
- `wrong-key`: signs its receipts with a key that is not its Provider's (the router refuses
  to bill such an answer);
- `random`: returns random unit vectors, correctly sealed and signed (what a validator's
  spot check catches).
"""

from __future__ import annotations

import hashlib
import os
import sys

import numpy as np
from nacl.public import PrivateKey
from nacl.signing import SigningKey

from offchain.protocol.sealing import seal_answer
from offchain.protocol.wire import PLAIN, Receipt, receipt_digest
from offchain.worker import _agent

MODE = os.environ.get("COCOON_TEST_CHEAT", "")
_BOX_OVERHEAD = 40  # PyNaCl Box: 24-byte nonce + 16-byte tag
_honest = _agent.Worker.serve


def _receipt(key: SigningKey, r: Receipt, answer: bytes) -> Receipt:
    result_hash = hashlib.sha256(answer).digest()
    sig = key.sign(
        receipt_digest(
            request=r.request, model_hash=r.model_hash, units=r.units, result_hash=result_hash, client_key=r.client_key
        )
    ).signature
    return Receipt(
        request=r.request,
        model_hash=r.model_hash,
        units=r.units,
        result_hash=result_hash,
        client_key=r.client_key,
        signature=sig,
    )


async def serve(self: _agent.Worker, work: object) -> object:
    done = await _honest(self, work)  # type: ignore[arg-type]
    r = done.receipt
    if MODE == "wrong-seal":
        answer = seal_answer(b"\0" * len(done.vectors), self.encryption_key, bytes(PrivateKey.generate().public_key))
        return type(done)(id=done.id, dim=done.dim, vectors=answer, receipt=_receipt(self.key, r, answer))
    if MODE == "wrong-key":
        return type(done)(
            id=done.id, dim=done.dim, vectors=done.vectors, receipt=_receipt(SigningKey.generate(), r, done.vectors)
        )
    if MODE == "random":
        sealed = r.client_key != PLAIN
        count = (len(done.vectors) - (_BOX_OVERHEAD if sealed else 0)) // 4 // done.dim
        v = np.random.default_rng().standard_normal((count, done.dim)).astype("<f4")
        v /= np.linalg.norm(v, axis=1, keepdims=True)
        answer = seal_answer(v.tobytes(), self.encryption_key, r.client_key) if sealed else v.tobytes()
        return type(done)(id=done.id, dim=done.dim, vectors=answer, receipt=_receipt(self.key, r, answer))
    return done


_agent.Worker.serve = serve  # type: ignore[method-assign]

if __name__ == "__main__":
    from offchain.cli import main

    sys.exit(main())

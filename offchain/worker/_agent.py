"""The GPU worker agent: one outbound websocket to its router, models run with onnxruntime.

    worker = Worker(config, key=node_key, owner=wallet_address, models=served)
    await worker.run()            # connects, re-connects with backoff, serves until cancelled

The worker dials out (it works behind NAT), proves its node key in the router's handshake,
offers the models it serves (only those Root's allowlist lists: `serve_models` checks before
the worker starts), and answers each `Work` with the vectors and a signed `Receipt`
(request id, model hash, units, sha256 of the vectors): what the router bills by and what a
client or validator can check. Requests from every connection go through one `Batcher` per
model, so concurrent requests share a forward pass.

A request that declares fewer units than its input has is refused (UNITS_MISMATCH) before
any work: the client's voucher covers the declared units only.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from nacl.public import PrivateKey
from nacl.signing import SigningKey
from websockets.exceptions import ConnectionClosed

from offchain.errors import InvalidMessage, RequestFailed
from offchain.mesh import Limits, Peer, connect, join, keep_connected
from offchain.models import Batcher, ModelSpec
from offchain.protocol.sealing import open_request_box, seal_answer
from offchain.protocol.wire import (
    PLAIN,
    Error,
    ErrorCode,
    Load,
    ModelOffer,
    Offer,
    Receipt,
    Work,
    WorkDone,
    receipt_digest,
)

__all__ = ["ServedModel", "Worker", "WorkerConfig"]

log = logging.getLogger("cocoon.worker")


@dataclass
class WorkerConfig:
    router_url: str
    coefficient: int = 1000
    capacity: int = 64
    load_interval: float = 1.0
    reconnect_max_delay: float = 10.0
    limits: Limits = field(default_factory=Limits)


@dataclass
class ServedModel:
    """A model this worker serves: its spec, the batcher in front of it, and its token counter."""

    spec: ModelSpec
    batcher: Batcher
    counter: Any  # offchain.models.TokenCounter

    @property
    def offer(self) -> ModelOffer:
        return ModelOffer(name=self.spec.name, hash=self.spec.hash, dim=self.spec.dim, max_tokens=self.spec.max_tokens)


class Worker:
    """The worker agent (see the module doc). `run()` is the only coroutine to start."""

    def __init__(
        self,
        config: WorkerConfig,
        *,
        key: SigningKey,
        owner: str,
        models: dict[str, ServedModel],
        encryption_key: PrivateKey | None = None,
        evidence: bytes = b"",
    ) -> None:
        """`encryption_key` (X25519) is what clients seal to: made at start, inside the attested
        environment, and bound with the node key into `evidence` (the attestation)."""
        self.config = config
        self.key = key
        self.node_key = bytes(key.verify_key)
        self.encryption_key = encryption_key or PrivateKey.generate()
        self.evidence = evidence
        self.owner = owner
        self.models = models
        self.connected = asyncio.Event()
        self.served = 0
        self._stop = asyncio.Event()

    def stop(self) -> None:
        """Make `run()` return after the current connection ends. Safe from any task."""
        self._stop.set()

    async def run(self) -> None:
        """Connect and serve; on any disconnect wait (exponential backoff with jitter, capped at
        `reconnect_max_delay`) and connect again. A refusal by the router (e.g. our Provider is
        not active) is logged and retried the same way: staking may fix it. Cancelling is safe."""
        await keep_connected(
            self._session,
            stop=self._stop,
            connected=self.connected,
            max_delay=self.config.reconnect_max_delay,
            log=log,
            what="worker",
        )

    async def _session(self) -> None:
        peer = await connect(self.config.router_url, self.config.limits)
        try:
            await join(peer, key=self.key, role="worker", owner=self.owner, agent="cocoon-worker/1")
            await peer.send(
                Offer(
                    models=[m.offer for m in self.models.values()],
                    coefficient=self.config.coefficient,
                    capacity=self.config.capacity,
                    encryption_key=bytes(self.encryption_key.public_key),
                    evidence=self.evidence,
                )
            )
            self.connected.set()
            log.info("connected to %s, serving %s", self.config.router_url, sorted(self.models))
            async with asyncio.TaskGroup() as tg:
                tg.create_task(self._report_load(peer))
                stop = tg.create_task(self._stop.wait())
                while not stop.done():
                    recv = asyncio.ensure_future(peer.recv())
                    done, _ = await asyncio.wait({recv, stop}, return_when=asyncio.FIRST_COMPLETED)
                    if recv not in done:
                        recv.cancel()
                        break
                    frame = recv.result()
                    if isinstance(frame, Work):
                        tg.create_task(self._work(peer, frame))
                    elif isinstance(frame, Error):
                        log.warning(
                            "router says: %s %s",
                            ErrorCode(frame.code).name if frame.code in ErrorCode._value2member_map_ else frame.code,
                            frame.message,
                        )
                    else:
                        await peer.send_error(
                            getattr(frame, "id", None),
                            ErrorCode.UNEXPECTED_FRAME,
                            f"a router does not send {type(frame).__name__} to a worker",
                        )
                raise _Stopped
        except* _Stopped:
            pass
        finally:
            with contextlib.suppress(Exception):
                await peer.close()

    async def _report_load(self, peer: Peer) -> None:
        while True:
            await asyncio.sleep(self.config.load_interval)
            await peer.send(Load(queued=min(1_000_000, sum(m.batcher.queue_len for m in self.models.values()))))

    async def _work(self, peer: Peer, work: Work) -> None:
        try:
            frame: WorkDone | Error = await self.serve(work)
        except RequestFailed as err:
            frame = Error(id=work.id, code=err.code, message=err.detail[:1000])
        except Exception as err:  # a model failure must not end the connection
            log.exception("request %d failed", work.id)
            frame = Error(id=work.id, code=ErrorCode.WORKER_FAILED, message=f"inference failed: {type(err).__name__}")
        with contextlib.suppress(ConnectionClosed):
            await peer.send(frame)

    async def serve(self, work: Work) -> WorkDone:
        """Run one request and sign its receipt (no I/O but the model).

        Raises:
            RequestFailed: unknown model, invalid input, or more units than declared.
        """
        served = self.models.get(work.model)
        if served is None:
            raise RequestFailed(ErrorCode.UNKNOWN_MODEL, f"this worker does not serve {work.model!r}")
        plain = work.texts or work.tokens
        if work.sealed is not None and plain:
            raise RequestFailed(ErrorCode.INVALID_INPUT, "a request is sealed or plain, not both")
        box = None  # the request's Box, when sealed: it seals the answer too
        if work.sealed is not None:
            try:
                opened, box = open_request_box(work.sealed, self.encryption_key)
            except InvalidMessage as err:
                raise RequestFailed(ErrorCode.INVALID_INPUT, str(err)) from err
            texts, tokens = opened.texts, opened.tokens
        else:
            texts, tokens = work.texts, work.tokens
        if texts and tokens:
            raise RequestFailed(ErrorCode.INVALID_INPUT, "give texts or tokens, not both")
        inputs: list[Any] = list(texts) if texts else [list(t) for t in tokens]
        if not inputs:
            raise RequestFailed(ErrorCode.INVALID_INPUT, "no input")
        try:
            units = sum(served.counter.count(inputs))
        except (InvalidMessage, ValueError) as err:
            raise RequestFailed(ErrorCode.INVALID_INPUT, str(err)) from err
        if units > work.units:
            raise RequestFailed(
                ErrorCode.UNITS_MISMATCH, f"the input has {units} units, the request declares {work.units}"
            )
        try:
            vectors, _ = await served.batcher.submit(inputs)
        except InvalidMessage as err:
            raise RequestFailed(ErrorCode.INVALID_INPUT, str(err)) from err
        blob = np.ascontiguousarray(vectors, dtype="<f4").tobytes()
        client_key = PLAIN
        if work.sealed is not None:
            client_key = work.sealed.client_key
            blob = seal_answer(blob, self.encryption_key, client_key, box=box)
        result_hash = hashlib.sha256(blob).digest()
        sig = self.key.sign(
            receipt_digest(
                request=work.id,
                model_hash=served.spec.hash,
                units=units,
                result_hash=result_hash,
                client_key=client_key,
            )
        ).signature
        self.served += 1
        return WorkDone(
            id=work.id,
            dim=served.spec.dim,
            vectors=blob,
            receipt=Receipt(
                request=work.id,
                model_hash=served.spec.hash,
                units=units,
                result_hash=result_hash,
                client_key=client_key,
                signature=sig,
            ),
        )


class _Stopped(Exception):
    pass

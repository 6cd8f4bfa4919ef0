"""Fixtures for the gateway tests: a deterministic double of the client SDK, and the app
served by `serve_gateway` on a loopback port 0 (waited on through `ready`, never slept on).

Servers are module-scoped (one uvicorn per module, on the module's event loop): starting
one per test would spend most of the folder's time in uvicorn's shutdown.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import httpx
import numpy as np
import openai
import pytest_asyncio
from starlette.types import ASGIApp

from offchain.errors import ConfigError, PeerRejected, RequestFailed
from offchain.gateway import GatewayConfig, create_app, serve_gateway
from offchain.protocol.wire import ErrorCode, ModelInfo

DIM = 16
MODELS = {"minilm": DIM, "org/minilm-v2": DIM, "wide": 384}
"""name -> dimension (`wide` makes a full batch large enough to be encoded off the loop)."""
FAIL_PREFIX = "fail-"
"""`embed(model="fail-25")` raises RequestFailed(25, ...): one stateless way for a test to pick
the mesh error the backend answers."""
SECRET = "secret detail from the router"
RAISES: dict[str, Exception] = {
    "raise-config": ConfigError("wallet file unreadable: /home/secret"),
    "raise-peer": PeerRejected("router closed the session"),
    "raise-bug": ValueError("a bug with a traceback"),
}
"""Models whose `embed` raises something other than RequestFailed."""
API_KEY = "sk-test-gateway-key"
PRICE = 1000  # nanoTON per unit


def expected_vector(item: str | list[int], dim: int = DIM) -> np.ndarray:
    """The double's vector for one input: sha256-seeded, L2-normalised, float32."""
    seed = int.from_bytes(hashlib.sha256(repr(item).encode()).digest()[:8], "little")
    v = np.random.default_rng(seed).standard_normal(dim)
    return (v / np.linalg.norm(v)).astype(np.float32)


def expected_units(inputs: list[str] | list[list[int]]) -> int:
    return sum((len(i.split()) if isinstance(i, str) else len(i)) + 2 for i in inputs)


@dataclass
class Embeddings:
    vectors: np.ndarray
    units: int
    cost: int
    model: str


@dataclass
class FakeBackend:
    """Implements `EmbeddingsBackend` deterministically and records what it was asked."""

    calls: list[tuple[list[str] | list[list[int]], str]] = field(default_factory=list)

    async def list_models(self) -> list[ModelInfo]:
        return [ModelInfo(name=name, hash=hashlib.sha256(name.encode()).digest(), dim=dim, max_tokens=512,
                          workers=1, min_coefficient=1) for name, dim in MODELS.items()]

    async def embed(self, inputs: list[str] | list[list[int]], *, model: str) -> Embeddings:
        self.calls.append((inputs, model))
        if model.startswith(FAIL_PREFIX):
            raise RequestFailed(int(model.removeprefix(FAIL_PREFIX)), SECRET)
        if model in RAISES:
            raise RAISES[model]
        if model == "wrong-shape":
            return Embeddings(np.zeros((len(inputs) + 1, DIM), np.float32), 1, 1, model)
        if model not in MODELS:
            raise RequestFailed(ErrorCode.UNKNOWN_MODEL, f"no model {model}")
        units = expected_units(inputs)
        return Embeddings(np.stack([expected_vector(i, MODELS[model]) for i in inputs]), units, units * PRICE, model)


@dataclass
class Served:
    """A running gateway: its port, its backend, and an httpx client bound to it."""

    port: int
    backend: FakeBackend
    http: httpx.AsyncClient

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def client(self, api_key: str = "unused") -> openai.AsyncOpenAI:
        return openai.AsyncOpenAI(base_url=f"{self.url}/v1", api_key=api_key, max_retries=0, timeout=10)


@contextlib.asynccontextmanager
async def serving(app: ASGIApp) -> AsyncIterator[int]:
    """Run `serve_gateway(app)` on 127.0.0.1:0; yield the port once it accepts; cancel after."""
    loop = asyncio.get_running_loop()
    bound: asyncio.Future[int] = loop.create_future()
    task = asyncio.create_task(serve_gateway(app, host="127.0.0.1", port=0, ready=bound.set_result))
    try:
        done, _ = await asyncio.wait({bound, task}, timeout=10, return_when=asyncio.FIRST_COMPLETED)
        if task in done:
            task.result()  # re-raises why it stopped
        assert bound in done, "the gateway did not report its port"
        yield bound.result()
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def gateway() -> AsyncIterator[Served]:
    """An open gateway (no api_key) with a small body limit, over a fresh FakeBackend."""
    backend = FakeBackend()
    async with (serving(create_app(backend, GatewayConfig(max_body_bytes=64 * 1024))) as port,
                httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as http):
        yield Served(port, backend, http)


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def client(gateway: Served) -> AsyncIterator[openai.AsyncOpenAI]:
    async with gateway.client() as c:
        yield c


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def secured() -> AsyncIterator[Served]:
    """A gateway that requires `Authorization: Bearer API_KEY` on /v1."""
    backend = FakeBackend()
    async with (serving(create_app(backend, GatewayConfig(api_key=API_KEY))) as port,
                httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as http):
        yield Served(port, backend, http)

"""What the gateway needs from the client SDK, and nothing more.

The gateway is written against these two Protocols instead of the SDK's classes so that it
can be built and tested before (and independently of) the SDK, and so that the SDK stays
free to change everything the HTTP edge does not see. `offchain.client`'s `Client`
satisfies `EmbeddingsBackend` structurally; the tests use a deterministic double.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol, runtime_checkable

if TYPE_CHECKING:
    import numpy

    from offchain.protocol.wire import ModelInfo

__all__ = ["EmbeddingsBackend", "EmbeddingsLike"]


class EmbeddingsLike(Protocol):
    """One answered embeddings request, as the SDK's `embed()` returns it.

    Attributes:
        vectors: float32, shape (n, dim), one L2-normalised row per input, in input order.
        units: input tokens the network billed; reported to OpenAI clients as prompt tokens.
        cost: nanoTON charged for the request (exposed as `x-cocoon-cost-nanoton`).
        model: the model that served it.
    """

    vectors: numpy.ndarray
    units: int
    cost: int
    model: str


@runtime_checkable
class EmbeddingsBackend(Protocol):
    """The SDK as seen by the gateway: list the mesh's models, embed a batch.

    Both methods may be called concurrently (one call per HTTP request in flight). Errors are
    `offchain.errors.RequestFailed` (a typed `ErrorCode` from the router) or another
    `CocoonError`; the gateway turns them into OpenAI error responses.
    """

    async def list_models(self) -> list[ModelInfo]:
        """The models the router can serve now."""
        ...

    async def embed(self, inputs: list[str] | list[list[int]], *, model: str) -> EmbeddingsLike:
        """Embed `inputs` (texts, or pre-tokenized token-id lists) with `model`."""
        ...

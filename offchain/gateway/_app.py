"""The gateway's Starlette app: OpenAI's embeddings and models routes over an `EmbeddingsBackend`.

Every route goes through one wrapper (`_Gateway.route`) that checks the key, turns any
exception into OpenAI's error JSON (`_errors.error_response`) and records metrics, so no
handler formats an error or touches a counter itself.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import msgspec
import numpy as np
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.routing import Route

from offchain.errors import InvalidMessage
from offchain.protocol.wire import ModelInfo

from ._backend import EmbeddingsBackend, EmbeddingsLike
from ._config import GatewayConfig
from ._errors import ApiError, error_response
from ._metrics import CONTENT_TYPE, GatewayMetrics
from ._openapi import build_openapi
from ._requests import EmbeddingsRequest, check_model_name, parse_embeddings_request

__all__ = ["COST_HEADER", "create_app"]

COST_HEADER = "x-cocoon-cost-nanoton"
_INLINE_FLOATS = 64 * 1024  # larger responses are encoded in a worker thread
_Handler = Callable[[Request], Awaitable[Response]]


def _json(payload: Any) -> Response:
    return Response(msgspec.json.encode(payload), media_type="application/json")


def _embeddings_body(vectors: np.ndarray, encoding: str, model: str, units: int) -> bytes:
    """OpenAI's embeddings response; base64 is the little-endian float32 bytes of each row."""
    if encoding == "base64":
        embeddings: list[Any] = [base64.b64encode(row.tobytes()).decode("ascii")
                                 for row in vectors.astype("<f4", copy=False)]
    else:
        embeddings = vectors.tolist()
    return msgspec.json.encode({
        "object": "list",
        "data": [{"object": "embedding", "index": i, "embedding": e} for i, e in enumerate(embeddings)],
        "model": model,
        "usage": {"prompt_tokens": units, "total_tokens": units},
    })


class _Gateway:
    """The handlers and the state they share (backend, config, metrics)."""

    def __init__(self, backend: EmbeddingsBackend, config: GatewayConfig) -> None:
        self.backend = backend
        self.config = config
        self.metrics = GatewayMetrics()
        self.created = int(time.time())  # OpenAI's `created`: models have none on the mesh, so the gateway's start
        self._key_digest = None if config.api_key is None else hashlib.sha256(config.api_key.encode()).digest()

    # ---- the one wrapper ------------------------------------------------------------------
    def route(self, path: str, handler: _Handler, *, method: str, auth: bool) -> Route:
        """A Route whose endpoint authenticates, maps errors and counts (labelled by `path`)."""

        async def endpoint(request: Request) -> Response:
            started = time.perf_counter()
            request_id = uuid.uuid4().hex
            try:
                if auth:
                    self._authenticate(request)
                response = await handler(request)
            except Exception as err:  # the HTTP edge: any failure becomes an OpenAI error body
                response = error_response(err, request_id=request_id)
            response.headers["x-request-id"] = request_id
            self.metrics.observe(path, method, response.status_code, time.perf_counter() - started)
            return response

        endpoint.__name__ = handler.__name__
        endpoint.__doc__ = handler.__doc__
        return Route(path, endpoint, methods=[method])

    async def unmatched(self, request: Request, exc: Exception) -> Response:
        """404/405 from the router, in OpenAI's error shape (OpenAI answers "Invalid URL")."""
        status = exc.status_code if isinstance(exc, HTTPException) else 500
        message = (f"Invalid URL ({request.method} {request.url.path})" if status == 404
                   else f"Method {request.method} not allowed on {request.url.path}")
        response = error_response(ApiError(status, message))
        if isinstance(exc, HTTPException) and exc.headers:
            response.headers.update(exc.headers)
        self.metrics.observe("unmatched", request.method, status, 0.0)
        return response

    def _authenticate(self, request: Request) -> None:
        """Require `Authorization: Bearer <api_key>` when a key is configured.

        Both sides are hashed before `hmac.compare_digest`, so the comparison takes the same
        time whatever the presented key's length and content.
        """
        if self._key_digest is None:
            return
        header = request.headers.get("authorization", "")
        scheme, _, token = header.partition(" ")
        if not header or scheme.lower() != "bearer" or not token.strip():
            raise ApiError(401, "You didn't provide an API key. Send it in an Authorization header using "
                           "Bearer auth (Authorization: Bearer YOUR_KEY)", code="invalid_api_key")
        presented = hashlib.sha256(token.strip().encode()).digest()
        if not hmac.compare_digest(presented, self._key_digest):
            raise ApiError(401, "Incorrect API key provided", code="invalid_api_key")

    # ---- handlers ---------------------------------------------------------------------------
    async def list_models(self, request: Request) -> Response:
        """`GET /v1/models`: the models the router serves now."""
        models = await self.backend.list_models()
        return _json({"object": "list", "data": [self._model(m) for m in models]})

    async def retrieve_model(self, request: Request) -> Response:
        """`GET /v1/models/{model}`: one model, or 404 `model_not_found`."""
        name: str = request.path_params["model"]
        return _json(self._model(await self._find_model(name)))

    async def embeddings(self, request: Request) -> Response:
        """`POST /v1/embeddings`: validate, embed through the backend, answer in OpenAI's shape."""
        req = parse_embeddings_request(await self._read_body(request))
        if req.dimensions is not None:
            await self._check_dimensions(req)
        result = await self.backend.embed(req.inputs, model=req.model)
        vectors = self._vectors(result, req)
        units, cost = int(result.units), int(result.cost)
        self.metrics.served(result.model, inputs=len(req.inputs), units=units, cost=cost)
        args = (vectors, req.encoding_format, result.model, units)
        # A full batch (2048 x 384) takes ~100 ms to write as JSON floats: off the event loop.
        if vectors.size > _INLINE_FLOATS:
            body = await asyncio.to_thread(_embeddings_body, *args)
        else:
            body = _embeddings_body(*args)
        return Response(body, media_type="application/json", headers={COST_HEADER: str(cost)})

    async def healthz(self, request: Request) -> Response:
        """`GET /healthz`: liveness of the gateway process (not of the mesh)."""
        return _json({"status": "ok"})

    async def metrics_endpoint(self, request: Request) -> Response:
        """`GET /metrics`: Prometheus text format."""
        return Response(self.metrics.render(), media_type=CONTENT_TYPE)

    # ---- helpers ----------------------------------------------------------------------------
    def _model(self, info: ModelInfo) -> dict[str, Any]:
        return {"id": info.name, "object": "model", "created": self.created, "owned_by": self.config.owned_by}

    async def _find_model(self, name: str) -> ModelInfo:
        check_model_name(name)
        for info in await self.backend.list_models():
            if info.name == name:
                return info
        raise ApiError(404, f"The model `{name}` does not exist or you do not have access to it",
                       code="model_not_found", param="model")

    async def _check_dimensions(self, req: EmbeddingsRequest) -> None:
        """Refuse `dimensions` unless it is the model's own: these models cannot be shortened
        (no Matryoshka training), and truncating would silently return worse vectors."""
        info = await self._find_model(req.model)
        if req.dimensions != info.dim:
            raise ApiError(400, f"The model `{req.model}` produces embeddings of a fixed dimension, {info.dim}: "
                           f"'dimensions' = {req.dimensions} is not supported (omit it, or pass {info.dim})",
                           param="dimensions", code="invalid_value")

    async def _read_body(self, request: Request) -> bytes:
        """The request body, refused with 413 as soon as it is known to exceed the limit."""
        limit = self.config.max_body_bytes
        too_large = ApiError(413, f"Request body too large: at most {limit} bytes are accepted",
                             code="request_too_large")
        declared = request.headers.get("content-length")
        if declared is not None:
            if not declared.isdigit():
                raise ApiError(400, "Invalid Content-Length header")
            if int(declared) > limit:
                raise too_large
        body = bytearray()
        try:
            async for chunk in request.stream():
                body += chunk
                if len(body) > limit:
                    raise too_large
        except ClientDisconnect as err:
            raise ApiError(400, "The client disconnected before sending the whole body") from err
        return bytes(body)

    @staticmethod
    def _vectors(result: EmbeddingsLike, req: EmbeddingsRequest) -> np.ndarray:
        """The backend's vectors as float32, checked against the request (a mismatch is a bug
        in the SDK: a 500, logged, rather than embeddings attributed to the wrong inputs)."""
        vectors = np.asarray(result.vectors, dtype=np.float32)
        if vectors.ndim != 2 or vectors.shape[0] != len(req.inputs):
            raise InvalidMessage(f"backend returned vectors of shape {vectors.shape} for {len(req.inputs)} inputs")
        if req.dimensions is not None and vectors.shape[1] != req.dimensions:
            raise InvalidMessage(f"backend returned {vectors.shape[1]}-d vectors, the model lists {req.dimensions}")
        return vectors


def create_app(backend: EmbeddingsBackend, config: GatewayConfig | None = None) -> Starlette:
    """The OpenAI-compatible gateway as an ASGI app.

    Args:
        backend: the client SDK (or anything with its `list_models` / `embed`).
        config: settings; defaults to an open gateway with an 8 MiB body limit.

    Returns:
        A Starlette app serving `/v1/models`, `/v1/models/{model}`, `/v1/embeddings`,
        `/healthz`, `/metrics` and `/openapi.json`. Each app has its own metrics registry.
        Requests are served concurrently; the backend must accept concurrent calls.
    """
    config = config or GatewayConfig()
    gw = _Gateway(backend, config)
    routes = [
        gw.route("/v1/models", gw.list_models, method="GET", auth=True),
        gw.route("/v1/models/{model:path}", gw.retrieve_model, method="GET", auth=True),
        gw.route("/v1/embeddings", gw.embeddings, method="POST", auth=True),
        gw.route("/healthz", gw.healthz, method="GET", auth=False),
        gw.route("/metrics", gw.metrics_endpoint, method="GET", auth=False),
    ]
    schema = msgspec.json.encode(build_openapi(routes, secured=config.api_key is not None))

    async def openapi(request: Request) -> Response:
        return Response(schema, media_type="application/json")

    routes.append(gw.route("/openapi.json", openapi, method="GET", auth=False))
    app = Starlette(routes=routes, exception_handlers={HTTPException: gw.unmatched})
    app.state.gateway_metrics = gw.metrics
    return app

"""The gateway's OpenAPI 3.0 document, built from its routes.

Starlette's `SchemaGenerator` reads each endpoint's docstring as YAML, which would make
pyyaml a dependency and put schemas in docstrings; instead its route walk
(`BaseSchemaGenerator.get_endpoints`) is reused and operations come from `OPERATIONS`,
keyed by (path, method). Schemas state the bounds the gateway enforces, so a schema-driven
fuzzer (schemathesis) generates requests that exercise the handlers, not only the 400s.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

from starlette.routing import BaseRoute
from starlette.schemas import BaseSchemaGenerator

from offchain.protocol.wire import MAX_INPUT_CHARS, MAX_INPUTS, MAX_TOKEN_IDS

__all__ = ["OPERATIONS", "build_openapi"]

_ERROR = {"$ref": "#/components/schemas/Error"}
_TOKEN = {"type": "integer", "minimum": 0, "maximum": 2**31 - 1}
_TOKENS = {"type": "array", "items": _TOKEN, "minItems": 1, "maxItems": MAX_TOKEN_IDS}
_TEXT = {"type": "string", "minLength": 1, "maxLength": MAX_INPUT_CHARS}
_MODEL = {"type": "string", "pattern": "^[A-Za-z0-9._:/-]{1,64}$"}

SCHEMAS: dict[str, Any] = {
    "Error": {
        "type": "object",
        "required": ["error"],
        "properties": {"error": {
            "type": "object",
            "required": ["message", "type", "param", "code"],
            "properties": {
                "message": {"type": "string"},
                "type": {"type": "string"},
                "param": {"type": "string", "nullable": True},
                "code": {"type": "string", "nullable": True},
            },
        }},
    },
    "Model": {
        "type": "object",
        "required": ["id", "object", "created", "owned_by"],
        "properties": {
            "id": {"type": "string"},
            "object": {"type": "string", "enum": ["model"]},
            "created": {"type": "integer"},
            "owned_by": {"type": "string"},
        },
    },
    "ModelList": {
        "type": "object",
        "required": ["object", "data"],
        "properties": {
            "object": {"type": "string", "enum": ["list"]},
            "data": {"type": "array", "items": {"$ref": "#/components/schemas/Model"}},
        },
    },
    "CreateEmbeddingRequest": {
        "type": "object",
        "additionalProperties": False,
        "required": ["input", "model"],
        "properties": {
            "input": {"oneOf": [
                _TEXT,
                {"type": "array", "items": _TEXT, "minItems": 1, "maxItems": MAX_INPUTS},
                _TOKENS,
                {"type": "array", "items": _TOKENS, "minItems": 1, "maxItems": MAX_INPUTS},
            ]},
            "model": _MODEL,
            "encoding_format": {"type": "string", "enum": ["float", "base64"], "default": "float"},
            "dimensions": {"type": "integer", "minimum": 1,
                           "description": "Accepted only when equal to the model's fixed dimension."},
            "user": {"type": "string"},
        },
    },
    "CreateEmbeddingResponse": {
        "type": "object",
        "required": ["object", "data", "model", "usage"],
        "properties": {
            "object": {"type": "string", "enum": ["list"]},
            "data": {"type": "array", "items": {
                "type": "object",
                "required": ["object", "index", "embedding"],
                "properties": {
                    "object": {"type": "string", "enum": ["embedding"]},
                    "index": {"type": "integer"},
                    "embedding": {"oneOf": [
                        {"type": "array", "items": {"type": "number"}},
                        {"type": "string", "format": "byte", "description": "little-endian float32, base64"},
                    ]},
                },
            }},
            "model": {"type": "string"},
            "usage": {
                "type": "object",
                "required": ["prompt_tokens", "total_tokens"],
                "properties": {"prompt_tokens": {"type": "integer"}, "total_tokens": {"type": "integer"}},
            },
        },
    },
}


def _json(schema: Mapping[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _errors(*statuses: int) -> dict[str, Any]:
    return {str(s): _json(_ERROR, "An OpenAI error object") for s in statuses}


_MODEL_ERRORS = (401, 402, 404, 429, 500, 502, 503, 504)

OPERATIONS: dict[tuple[str, str], dict[str, Any]] = {
    ("/v1/models", "get"): {
        "operationId": "listModels",
        "summary": "Models the network serves now",
        "responses": {"200": _json({"$ref": "#/components/schemas/ModelList"}, "The models"),
                      **_errors(*_MODEL_ERRORS)},
    },
    ("/v1/models/{model}", "get"): {
        "operationId": "retrieveModel",
        "summary": "One model",
        "parameters": [{"name": "model", "in": "path", "required": True, "schema": _MODEL}],
        "responses": {"200": _json({"$ref": "#/components/schemas/Model"}, "The model"),
                      **_errors(*_MODEL_ERRORS)},
    },
    ("/v1/embeddings", "post"): {
        "operationId": "createEmbedding",
        "summary": "Embed a batch of texts or token-id arrays, paid through the payment channel",
        "requestBody": {"required": True, "content": {"application/json": {
            "schema": {"$ref": "#/components/schemas/CreateEmbeddingRequest"}}}},
        "responses": {
            "200": {
                **_json({"$ref": "#/components/schemas/CreateEmbeddingResponse"}, "The embeddings"),
                "headers": {"x-cocoon-cost-nanoton": {
                    "description": "nanoTON charged for this request", "schema": {"type": "integer"}}},
            },
            **_errors(400, 413, *_MODEL_ERRORS),
        },
    },
    ("/healthz", "get"): {
        "operationId": "health",
        "summary": "Liveness",
        "responses": {"200": _json({"type": "object", "required": ["status"],
                                    "properties": {"status": {"type": "string", "enum": ["ok"]}}}, "Alive")},
    },
    ("/metrics", "get"): {
        "operationId": "metrics",
        "summary": "Prometheus metrics",
        "responses": {"200": {"description": "Prometheus text format",
                              "content": {"text/plain": {"schema": {"type": "string"}}}}},
    },
}


class _Generator(BaseSchemaGenerator):
    def __init__(self, base: dict[str, Any], *, secured: bool) -> None:
        self.base = base
        self.secured = secured

    def get_schema(self, routes: list[BaseRoute]) -> dict[str, Any]:
        schema = copy.deepcopy(self.base)
        paths: dict[str, dict[str, Any]] = schema.setdefault("paths", {})
        for endpoint in self.get_endpoints(routes):
            operation = OPERATIONS.get((endpoint.path, endpoint.http_method))
            if operation is None:
                continue
            operation = copy.deepcopy(operation)
            if self.secured and endpoint.path.startswith("/v1/"):
                operation["security"] = [{"bearerAuth": []}]
            else:
                operation["responses"].pop("401", None)
            paths.setdefault(endpoint.path, {})[endpoint.http_method] = operation
        return schema


def build_openapi(routes: list[BaseRoute], *, secured: bool, version: str = "1") -> dict[str, Any]:
    """The OpenAPI document for `routes` (`secured`: whether /v1 needs a bearer key)."""
    components: dict[str, Any] = {"schemas": copy.deepcopy(SCHEMAS)}
    if secured:
        components["securitySchemes"] = {"bearerAuth": {"type": "http", "scheme": "bearer"}}
    base = {
        "openapi": "3.0.3",
        "info": {"title": "Cocoon gateway (OpenAI-compatible embeddings)", "version": version},
        "components": components,
    }
    return _Generator(base, secured=secured).get_schema(routes)

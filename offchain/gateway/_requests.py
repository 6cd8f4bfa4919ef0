"""Parsing OpenAI request bodies into what the backend takes, refusing what OpenAI refuses.

Validation happens here, before anything reaches the SDK, for two reasons: the caller gets
OpenAI's 400 (naming the field at fault) instead of a mesh error, and nothing malformed ever
costs a voucher round trip. The bounds are the wire protocol's own (`offchain.protocol.wire`),
so a request the gateway accepts is one the router can decode.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Literal

import msgspec

from offchain.protocol.wire import MAX_INPUT_CHARS, MAX_INPUTS, MAX_TOKEN_IDS

from ._errors import ApiError

__all__ = ["EmbeddingsRequest", "check_model_name", "parse_embeddings_request"]

_FIELDS = frozenset({"input", "model", "encoding_format", "dimensions", "user"})
_MODEL_NAME = re.compile(r"^[A-Za-z0-9._:/-]{1,64}$")  # wire.Name
_MAX_TOKEN_ID = 2**31  # wire.TokenIds' bound (exclusive)
_decoder = msgspec.json.Decoder()


@dataclass(frozen=True, slots=True)
class EmbeddingsRequest:
    """A validated `POST /v1/embeddings` body (`inputs` is always a batch)."""

    inputs: list[str] | list[list[int]]
    model: str
    encoding_format: Literal["float", "base64"]
    dimensions: int | None


def _bad(message: str, param: str | None, code: str | None = "invalid_value") -> ApiError:
    return ApiError(400, message, param=param, code=code)


def parse_embeddings_request(body: bytes) -> EmbeddingsRequest:
    """Decode and validate an embeddings request body.

    Raises:
        ApiError: 400 for malformed JSON, a missing or unknown field, or an input OpenAI
            refuses (empty, mixed types, over the per-request limits); 404 for a model name
            that cannot exist on the mesh.
    """
    try:
        obj = _decoder.decode(body)
    except msgspec.DecodeError as err:
        raise _bad(f"We could not parse the JSON body of your request: {err}", None, None) from err
    if not isinstance(obj, dict):
        raise _bad("The request body must be a JSON object", None, None)
    unknown = sorted(set(obj) - _FIELDS)
    if unknown:
        raise _bad(f"Unrecognized request argument supplied: {', '.join(unknown)}", unknown[0], "unknown_parameter")
    if "model" not in obj or obj["model"] is None:
        raise _bad("You must provide a model parameter", "model", "missing_required_parameter")
    model = obj["model"]
    if not isinstance(model, str):
        raise _bad("'model' must be a string", "model", "invalid_type")
    check_model_name(model)
    if "input" not in obj or obj["input"] is None:
        raise _bad("'input' is a required property", "input", "missing_required_parameter")
    if not isinstance(obj.get("user", ""), str | None):
        raise _bad("'user' must be a string", "user", "invalid_type")
    return EmbeddingsRequest(
        inputs=_inputs(obj["input"]),
        model=model,
        encoding_format=_encoding_format(obj.get("encoding_format")),
        dimensions=_dimensions(obj.get("dimensions")),
    )


def check_model_name(model: str) -> None:
    """Refuse, as not found, a model name the mesh's wire format could not even carry."""
    if not _MODEL_NAME.match(model):
        raise ApiError(404, f"The model `{model[:100]}` does not exist or you do not have access to it",
                       code="model_not_found", param="model")


def _inputs(value: Any) -> list[str] | list[list[int]]:
    """The four OpenAI input forms, normalised to a batch: str, [str], [int], [[int]]."""
    if isinstance(value, str):
        return [_text(value, "input")]
    if not isinstance(value, list):
        raise _bad("'input' must be a string, an array of strings, an array of token ids or an array of "
                   "token-id arrays", "input", "invalid_type")
    if not value:
        raise _bad("'input' must not be empty", "input")
    if len(value) > MAX_INPUTS:
        raise _bad(f"'input' has {len(value)} items: at most {MAX_INPUTS} are accepted per request", "input")
    first = value[0]
    if isinstance(first, str):
        return [_text(item, f"input[{i}]") for i, item in enumerate(value)]
    if _is_token(first):
        return [_tokens(value, "input")]
    if isinstance(first, list):
        return [_tokens(item, f"input[{i}]") for i, item in enumerate(value)]
    raise _bad("'input[0]' must be a string, a token id or an array of token ids", "input", "invalid_type")


def _text(value: Any, where: str) -> str:
    if not isinstance(value, str):
        raise _bad(f"'{where}' must be a string: an input array holds items of one kind", "input", "invalid_type")
    if not value:
        raise _bad(f"'{where}' is an empty string: empty inputs cannot be embedded", "input")
    if len(value) > MAX_INPUT_CHARS:
        raise _bad(f"'{where}' has {len(value)} characters: at most {MAX_INPUT_CHARS} are accepted", "input")
    return value


def _is_token(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _tokens(value: Any, where: str) -> list[int]:
    if not isinstance(value, list):
        raise _bad(f"'{where}' must be an array of token ids: an input array holds items of one kind",
                   "input", "invalid_type")
    if not value:
        raise _bad(f"'{where}' is an empty array of token ids: empty inputs cannot be embedded", "input")
    if len(value) > MAX_TOKEN_IDS:
        raise _bad(f"'{where}' has {len(value)} token ids: at most {MAX_TOKEN_IDS} are accepted", "input")
    for i, token in enumerate(value):
        if not _is_token(token) or not 0 <= token < _MAX_TOKEN_ID:
            raise _bad(f"'{where}[{i}]' is not a token id (an integer in [0, 2^31))", "input")
    return value


def _encoding_format(value: Any) -> Literal["float", "base64"]:
    if value is None or value == "float":
        return "float"
    if value == "base64":
        return "base64"
    raise _bad(f"'encoding_format' must be 'float' or 'base64', got {value!r:.40}", "encoding_format")


def _dimensions(value: Any) -> int | None:
    if value is None:
        return None
    if not _is_token(value) or value < 1:
        raise _bad(f"'dimensions' must be a positive integer, got {value!r:.40}", "dimensions")
    return int(value)

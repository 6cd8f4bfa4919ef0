"""Every failure the gateway answers, as OpenAI's error JSON: the one mapping table.

OpenAI clients dispatch on the HTTP status (the `openai` package raises `BadRequestError`
for 400, `NotFoundError` for 404, `RateLimitError` for 429, ...) and show `error.message`,
so each mesh `ErrorCode` is given the status whose meaning matches it. Everything not in
`ERROR_TABLE` is a 500 whose message names the code but carries neither the peer's detail
nor a traceback: those go to the log, not to whoever sent the request.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

import msgspec
from starlette.responses import Response

from offchain.errors import CocoonError, PeerError, RequestFailed
from offchain.protocol.wire import ErrorCode

__all__ = [
    "ERROR_TABLE",
    "INTERNAL",
    "ApiError",
    "ErrorSpec",
    "error_response",
    "spec_for_code",
]

log = logging.getLogger("cocoon.gateway")


@dataclass(frozen=True, slots=True)
class ErrorSpec:
    """How one kind of failure looks over HTTP.

    Attributes:
        status: the HTTP status.
        type: OpenAI's `error.type`.
        code: OpenAI's `error.code` (a stable machine-readable name).
        message: what the client is told; the peer's detail is appended when `detail` is True.
        param: the request field at fault, if one is.
        detail: whether the mesh's own explanation is shown (it is for errors the caller can
            act on, not for internal ones).
    """

    status: int
    type: str
    code: str | None
    message: str
    param: str | None = None
    detail: bool = True


def _spec(status: int, type_: str, code: str | None, message: str, param: str | None = None) -> ErrorSpec:
    return ErrorSpec(status, type_, code, message, param)


_NOT_FOUND = "The model does not exist or you do not have access to it"
_QUOTA = "The payment channel cannot cover this request"
_UNAVAILABLE = "No capacity to serve this request now, retry later"

ERROR_TABLE: Mapping[ErrorCode, ErrorSpec] = MappingProxyType({
    ErrorCode.UNKNOWN_MODEL: _spec(404, "invalid_request_error", "model_not_found", _NOT_FOUND, "model"),
    ErrorCode.MODEL_NOT_ALLOWED: _spec(404, "invalid_request_error", "model_not_found",
                                       "The model is not in the network's allowlist", "model"),
    ErrorCode.INPUT_TOO_LARGE: _spec(400, "invalid_request_error", "input_too_large", "Input too large", "input"),
    ErrorCode.INVALID_INPUT: _spec(400, "invalid_request_error", "invalid_input", "Invalid input", "input"),
    ErrorCode.UNITS_MISMATCH: _spec(400, "invalid_request_error", "units_mismatch",
                                    "The input has more tokens than were counted for it", "input"),
    ErrorCode.BAD_FRAME: _spec(400, "invalid_request_error", "bad_request", "The network refused the request"),
    ErrorCode.TOO_MANY_REQUESTS: _spec(429, "requests", "rate_limit_exceeded", "Too many requests in flight"),
    ErrorCode.NO_CHANNEL: _spec(402, "insufficient_quota", "insufficient_quota",
                                "No open payment channel with the router"),
    ErrorCode.VOUCHER_BAD_SIGNATURE: _spec(402, "insufficient_quota", "insufficient_quota", _QUOTA),
    ErrorCode.VOUCHER_STALE: _spec(402, "insufficient_quota", "insufficient_quota", _QUOTA),
    ErrorCode.VOUCHER_UNDERPAID: _spec(402, "insufficient_quota", "insufficient_quota", _QUOTA),
    ErrorCode.VOUCHER_OVER_DEPOSIT: _spec(402, "insufficient_quota", "insufficient_quota",
                                          "The payment channel's deposit is spent: top it up"),
    ErrorCode.NO_WORKER: _spec(503, "server_error", "no_worker", "No worker serves this model now", "model"),
    ErrorCode.BUSY: _spec(503, "server_error", "busy", _UNAVAILABLE),
    ErrorCode.SHUTTING_DOWN: _spec(503, "server_error", "shutting_down", "The network is shutting down"),
    ErrorCode.TIMEOUT: _spec(504, "server_error", "timeout", "The request timed out"),
    ErrorCode.WORKER_FAILED: _spec(502, "server_error", "worker_failed", "The worker failed to serve the request"),
    ErrorCode.RESULT_REJECTED: _spec(502, "server_error", "result_rejected",
                                     "The worker's answer failed the client's checks (not charged)"),
})
"""ErrorCode -> HTTP. Codes absent from it (handshake, framing, INTERNAL, unknown numbers)
are `INTERNAL`: the gateway's own link to the router is broken, not the caller's request."""

INTERNAL = ErrorSpec(500, "server_error", "internal_error",
                     "The server had an error while processing your request", detail=False)
_PEER = ErrorSpec(503, "server_error", "router_unavailable", "The router cannot be reached now", detail=False)
_RETRY_AFTER = frozenset({429, 503})


def spec_for_code(code: int) -> ErrorSpec:
    """The HTTP shape of a mesh error code (`INTERNAL` for any code not in the table)."""
    try:
        return ERROR_TABLE.get(ErrorCode(code), INTERNAL)
    except ValueError:
        return INTERNAL


class ApiError(Exception):
    """A failure the gateway detects itself (bad request, auth, size); raised by handlers."""

    def __init__(self, status: int, message: str, *, type: str = "invalid_request_error",
                 code: str | None = None, param: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.type = type
        self.code = code
        self.param = param


def _body(message: str, type_: str, param: str | None, code: str | None) -> bytes:
    return msgspec.json.encode({"error": {"message": message, "type": type_, "param": param, "code": code}})


def error_response(err: BaseException, *, request_id: str = "") -> Response:
    """The OpenAI error response for any exception a handler raised.

    Unexpected exceptions are logged with their traceback here, at the only place that sees
    them, and answered with the generic 500.
    """
    headers: dict[str, str] = {}
    if isinstance(err, ApiError):
        status, message, type_, param, code = err.status, err.message, err.type, err.param, err.code
        if status == 401:
            headers["www-authenticate"] = "Bearer"
    else:
        if isinstance(err, RequestFailed):
            spec = spec_for_code(err.code)
            name = _code_name(err.code)
            if spec is INTERNAL:
                log.warning("request failed code=%s detail=%r request_id=%s", name, err.detail, request_id)
        elif isinstance(err, PeerError):
            spec, name = _PEER, type(err).__name__
            log.warning("router unreachable error=%r request_id=%s", err, request_id)
        else:
            spec, name = INTERNAL, type(err).__name__
            if isinstance(err, CocoonError):
                log.error("backend error %r request_id=%s", err, request_id)
            else:
                log.error("unexpected error request_id=%s", request_id, exc_info=err)
        message = spec.message
        if spec.detail and isinstance(err, RequestFailed) and err.detail:
            message = f"{message}: {err.detail}"
        elif spec is INTERNAL and isinstance(err, RequestFailed):
            message = f"{message} ({name})"
        status, type_, param, code = spec.status, spec.type, spec.param, spec.code
    if status in _RETRY_AFTER:
        headers["retry-after"] = "1"
    return Response(_body(message, type_, param, code), status_code=status, media_type="application/json",
                    headers=headers)


def _code_name(code: int) -> str:
    try:
        return ErrorCode(code).name
    except ValueError:
        return f"code {code}"

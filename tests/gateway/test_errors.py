"""Mesh errors raised by the backend -> OpenAI error JSON and the openai client's exceptions.

The expected statuses are written out here, independently of `ERROR_TABLE`, and every
`ErrorCode` member is parametrized, so adding a code without deciding its status fails."""

from __future__ import annotations

import openai
import pytest

from offchain.gateway._errors import ERROR_TABLE
from offchain.protocol.wire import ErrorCode

from .conftest import FAIL_PREFIX, SECRET, Served

on_module_loop = pytest.mark.asyncio(loop_scope="module")

E = ErrorCode
EXPECTED: dict[ErrorCode, int] = {
    E.UNKNOWN_MODEL: 404, E.MODEL_NOT_ALLOWED: 404,
    E.INPUT_TOO_LARGE: 400, E.INVALID_INPUT: 400, E.UNITS_MISMATCH: 400, E.BAD_FRAME: 400,
    E.TOO_MANY_REQUESTS: 429,
    E.VOUCHER_BAD_SIGNATURE: 402, E.VOUCHER_STALE: 402, E.VOUCHER_UNDERPAID: 402, E.VOUCHER_OVER_DEPOSIT: 402,
    E.NO_CHANNEL: 402,
    E.NO_WORKER: 503, E.BUSY: 503, E.SHUTTING_DOWN: 503,
    E.TIMEOUT: 504, E.WORKER_FAILED: 502, E.RESULT_REJECTED: 502,
}
EXCEPTION: dict[int, type[openai.APIStatusError]] = {
    400: openai.BadRequestError, 404: openai.NotFoundError, 429: openai.RateLimitError,
    402: openai.APIStatusError, 500: openai.InternalServerError, 502: openai.InternalServerError,
    503: openai.InternalServerError, 504: openai.InternalServerError,
}


def test_error_table_is_the_expected_mapping() -> None:
    assert {code: spec.status for code, spec in ERROR_TABLE.items()} == EXPECTED
    assert all(spec.code == "insufficient_quota" for c, spec in ERROR_TABLE.items() if spec.status == 402)
    assert all(spec.code == "model_not_found" for c, spec in ERROR_TABLE.items() if spec.status == 404)


@on_module_loop
@pytest.mark.parametrize("code", list(ErrorCode), ids=lambda c: c.name)
async def test_error_code_maps_to_openai_exception(client: openai.AsyncOpenAI, code: ErrorCode) -> None:
    status = EXPECTED.get(code, 500)
    with pytest.raises(openai.APIStatusError) as info:
        await client.embeddings.create(model=f"{FAIL_PREFIX}{int(code)}", input="x")
    err = info.value
    assert type(err) is EXCEPTION[status]
    assert err.status_code == status
    assert isinstance(err.body, dict) and set(err.body) == {"message", "type", "param", "code"}
    if status == 500:
        assert SECRET not in err.message and "Traceback" not in err.response.text
        assert code.name in err.message
    else:
        assert SECRET in err.message, "actionable errors keep the mesh's explanation"
    if status in (429, 503):
        assert err.response.headers["retry-after"] == "1"


@on_module_loop
async def test_unknown_error_code_is_internal(client: openai.AsyncOpenAI) -> None:
    with pytest.raises(openai.InternalServerError) as info:
        await client.embeddings.create(model=f"{FAIL_PREFIX}999", input="x")
    assert info.value.status_code == 500 and SECRET not in info.value.message


@on_module_loop
@pytest.mark.parametrize(("model", "status"), [("raise-config", 500), ("raise-bug", 500), ("raise-peer", 503),
                                               ("wrong-shape", 500)])
async def test_other_backend_errors_do_not_leak(gateway: Served, model: str, status: int) -> None:
    r = await gateway.http.post("/v1/embeddings", json={"model": model, "input": "x"})
    assert r.status_code == status
    body = r.json()["error"]
    assert body["type"] == "server_error"
    for leak in ("secret", "traceback", "bug", "Traceback", "wallet"):
        assert leak not in r.text

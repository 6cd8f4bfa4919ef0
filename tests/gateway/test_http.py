"""The HTTP edge seen with httpx: body limits, malformed JSON, auth, health, metrics, OpenAPI."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import openai
import pytest

from .conftest import API_KEY, Served

pytestmark = pytest.mark.asyncio(loop_scope="module")


def _openai_error(r: httpx.Response, status: int) -> dict:
    assert r.status_code == status, r.text
    assert r.headers["content-type"] == "application/json"
    body = r.json()
    assert set(body) == {"error"} and set(body["error"]) == {"message", "type", "param", "code"}
    return body["error"]


async def test_body_over_limit_is_413(gateway: Served) -> None:
    body = b'{"input": "' + b"a" * 70_000 + b'", "model": "minilm"}'
    r = await gateway.http.post("/v1/embeddings", content=body, headers={"content-type": "application/json"})
    assert "65536" in _openai_error(r, 413)["message"]


async def test_chunked_body_over_limit_is_413(gateway: Served) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(5):
            yield b" " * 16_000

    r = await gateway.http.post("/v1/embeddings", content=chunks())
    _openai_error(r, 413)


@pytest.mark.parametrize("body", [b"{not json", b"", b"[1, 2]", b'"x"', b'{"input": "x"}', b'{"model": "minilm"}',
                                  b'{"model": 3, "input": "x"}', b"\xff\xfe"])
async def test_malformed_body_is_400(gateway: Served, body: bytes) -> None:
    r = await gateway.http.post("/v1/embeddings", content=body, headers={"content-type": "application/json"})
    assert _openai_error(r, 400)["type"] == "invalid_request_error"


async def test_unknown_route_and_method_are_openai_errors(gateway: Served) -> None:
    assert "Invalid URL" in _openai_error(await gateway.http.get("/v1/chat/completions"), 404)["message"]
    r = await gateway.http.get("/v1/embeddings")
    _openai_error(r, 405)
    assert r.headers["allow"] == "POST"


async def test_healthz_is_ok(gateway: Served) -> None:
    r = await gateway.http.get("/healthz")
    assert r.status_code == 200 and r.json() == {"status": "ok"}


async def test_metrics_count_requests_tokens_and_cost(gateway: Served, client: openai.AsyncOpenAI) -> None:
    await client.embeddings.create(model="minilm", input="metered words here")  # 5 units, 5000 nanoTON
    before = await gateway.http.get("/metrics")
    await client.embeddings.create(model="minilm", input="metered words here")
    after = await gateway.http.get("/metrics")
    assert before.status_code == 200 and before.headers["content-type"].startswith("text/plain")

    def sample(text: str, name: str) -> float:
        for line in text.splitlines():
            series, _, value = line.rpartition(" ")
            if series == name:
                return float(value)
        return 0.0

    ok = 'cocoon_gateway_requests_total{method="POST",route="/v1/embeddings",status="200"}'
    assert sample(after.text, ok) == sample(before.text, ok) + 1
    tokens = 'cocoon_gateway_tokens_total{model="minilm"}'
    assert sample(after.text, tokens) == sample(before.text, tokens) + 5
    cost = 'cocoon_gateway_cost_nanoton_total{model="minilm"}'
    assert sample(after.text, cost) == sample(before.text, cost) + 5000
    assert 'cocoon_gateway_request_duration_seconds_count{route="/v1/embeddings"}' in after.text


async def test_openapi_describes_the_routes(gateway: Served) -> None:
    doc = (await gateway.http.get("/openapi.json")).json()
    assert doc["openapi"].startswith("3.")
    assert set(doc["paths"]) == {"/v1/models", "/v1/models/{model}", "/v1/embeddings", "/healthz", "/metrics"}
    assert "post" in doc["paths"]["/v1/embeddings"]
    assert "securitySchemes" not in doc["components"]


# ---- authentication ---------------------------------------------------------------------
@pytest.mark.parametrize("headers", [{}, {"authorization": "Bearer wrong"}, {"authorization": API_KEY},
                                     {"authorization": f"Basic {API_KEY}"}, {"authorization": "Bearer"}])
async def test_auth_missing_or_wrong_key_is_401(secured: Served, headers: dict[str, str]) -> None:
    for r in (await secured.http.get("/v1/models", headers=headers),
              await secured.http.post("/v1/embeddings", headers=headers, json={"model": "minilm", "input": "x"})):
        err = _openai_error(r, 401)
        assert err["code"] == "invalid_api_key"
        assert r.headers["www-authenticate"] == "Bearer"
    assert secured.backend.calls == []


async def test_auth_wrong_key_raises_authentication_error(secured: Served) -> None:
    async with secured.client("sk-wrong") as c:
        with pytest.raises(openai.AuthenticationError) as info:
            await c.embeddings.create(model="minilm", input="x")
        with pytest.raises(openai.AuthenticationError):
            await c.models.list()
    assert info.value.code == "invalid_api_key"


async def test_auth_right_key_is_served(secured: Served) -> None:
    async with secured.client(API_KEY) as c:
        res = await c.embeddings.create(model="minilm", input="x")
        assert (await c.models.list()).data
    assert len(res.data) == 1


async def test_auth_does_not_guard_health_metrics_openapi(secured: Served) -> None:
    assert (await secured.http.get("/healthz")).status_code == 200
    assert (await secured.http.get("/metrics")).status_code == 200
    doc = (await secured.http.get("/openapi.json")).json()
    assert doc["components"]["securitySchemes"]["bearerAuth"]["scheme"] == "bearer"
    assert doc["paths"]["/v1/embeddings"]["post"]["security"] == [{"bearerAuth": []}]

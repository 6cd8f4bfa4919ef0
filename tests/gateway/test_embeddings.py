"""`POST /v1/embeddings` through the official openai client: the four input forms, both
encodings, usage, cost header, and what OpenAI refuses."""

from __future__ import annotations

import base64

import numpy as np
import openai
import pytest

from .conftest import DIM, PRICE, Served, expected_units, expected_vector

pytestmark = pytest.mark.asyncio(loop_scope="module")

INPUTS = {
    "string": ("hello cocoon world", ["hello cocoon world"]),
    "strings": (["first text", "second one here", "x"], ["first text", "second one here", "x"]),
    "token_ids": ([101, 7592, 102], [[101, 7592, 102]]),
    "token_id_lists": ([[101, 102], [101, 2088, 3000, 102]], [[101, 102], [101, 2088, 3000, 102]]),
}


def _expected(batch: list) -> np.ndarray:
    return np.stack([expected_vector(i) for i in batch])


@pytest.mark.parametrize("form", INPUTS)
@pytest.mark.parametrize("encoding", ["default", "float"])
async def test_embed_input_form_returns_backend_vectors(client: openai.AsyncOpenAI, gateway: Served,
                                                        form: str, encoding: str) -> None:
    sent, batch = INPUTS[form]
    kwargs = {} if encoding == "default" else {"encoding_format": "float"}
    res = await client.embeddings.create(model="minilm", input=sent, **kwargs)
    assert gateway.backend.calls[-1] == (batch, "minilm")
    assert [d.index for d in res.data] == list(range(len(batch)))
    got = np.array([d.embedding for d in res.data], dtype=np.float32)
    np.testing.assert_array_equal(got, _expected(batch))
    assert res.model == "minilm"
    assert res.object == "list" and all(d.object == "embedding" for d in res.data)
    assert res.usage.prompt_tokens == res.usage.total_tokens == expected_units(batch)


async def test_embed_explicit_base64_is_little_endian_float32(client: openai.AsyncOpenAI) -> None:
    res = await client.embeddings.create(model="minilm", input=["a b", "c"], encoding_format="base64")
    for d, text in zip(res.data, ["a b", "c"], strict=True):
        assert isinstance(d.embedding, str)
        decoded = np.frombuffer(base64.b64decode(d.embedding), dtype="<f4")
        assert decoded.shape == (DIM,)
        np.testing.assert_array_equal(decoded, expected_vector(text))


async def test_embed_reports_cost_header(client: openai.AsyncOpenAI) -> None:
    raw = await client.embeddings.with_raw_response.create(model="minilm", input="one two three")
    assert raw.headers["x-cocoon-cost-nanoton"] == str(5 * PRICE)
    assert raw.headers["x-request-id"]
    assert raw.parse().usage.prompt_tokens == 5


async def test_embed_model_with_slash_is_served(client: openai.AsyncOpenAI) -> None:
    res = await client.embeddings.create(model="org/minilm-v2", input="x")
    assert res.model == "org/minilm-v2"


@pytest.mark.parametrize("bad", ["", [], [""], ["ok", ""], [[]], [[1], []], ["a", 1], [1, "a"], [[1], 2],
                                 [True], [-1], [2**31], [1.5], {"text": "a"}, 3])
async def test_embed_empty_or_malformed_input_is_refused(client: openai.AsyncOpenAI, gateway: Served,
                                                         bad: object) -> None:
    calls = len(gateway.backend.calls)
    with pytest.raises(openai.BadRequestError) as info:
        await client.embeddings.create(model="minilm", input=bad)  # type: ignore[arg-type]
    assert info.value.status_code == 400
    assert info.value.param == "input"
    assert info.value.type == "invalid_request_error"
    assert len(gateway.backend.calls) == calls, "a refused request must not reach the backend"


@pytest.mark.parametrize("encoding", ["float", "base64"])
async def test_embed_large_response_is_correct(client: openai.AsyncOpenAI, encoding: str) -> None:
    """200 x 384 floats: over the size that is encoded in a worker thread."""
    texts = [f"text {i}" for i in range(200)]
    res = await client.embeddings.create(model="wide", input=texts, encoding_format=encoding)  # type: ignore[arg-type]
    rows = [np.frombuffer(base64.b64decode(d.embedding), "<f4") if encoding == "base64" else d.embedding
            for d in res.data]
    got = np.array(rows, dtype=np.float32)
    assert got.shape == (200, 384)
    np.testing.assert_array_equal(got[[0, 100, 199]], [expected_vector(texts[i], 384) for i in (0, 100, 199)])


async def test_embed_too_many_inputs_is_refused(client: openai.AsyncOpenAI) -> None:
    with pytest.raises(openai.BadRequestError, match="2048"):
        await client.embeddings.create(model="minilm", input=["x"] * 2049)


async def test_embed_dimensions_other_than_models_is_refused(client: openai.AsyncOpenAI, gateway: Served) -> None:
    calls = len(gateway.backend.calls)
    with pytest.raises(openai.BadRequestError) as info:
        await client.embeddings.create(model="minilm", input="x", dimensions=8)
    assert info.value.param == "dimensions"
    assert "fixed dimension" in info.value.message and str(DIM) in info.value.message
    assert len(gateway.backend.calls) == calls, "nothing is paid for a refused request"


async def test_embed_dimensions_equal_to_models_is_accepted(client: openai.AsyncOpenAI) -> None:
    res = await client.embeddings.create(model="minilm", input="x", dimensions=DIM, encoding_format="float")
    assert len(res.data[0].embedding) == DIM


async def test_embed_dimensions_of_unknown_model_is_not_found(client: openai.AsyncOpenAI) -> None:
    with pytest.raises(openai.NotFoundError):
        await client.embeddings.create(model="nope", input="x", dimensions=DIM)


@pytest.mark.parametrize("model", ["text-embedding-3-small", "bad name with spaces", "x" * 65])
async def test_embed_unknown_model_is_not_found(client: openai.AsyncOpenAI, model: str) -> None:
    with pytest.raises(openai.NotFoundError) as info:
        await client.embeddings.create(model=model, input="x")
    assert info.value.code == "model_not_found"
    assert info.value.param == "model"


@pytest.mark.parametrize(("extra", "param"), [
    ({"encoding_format": "int8"}, "encoding_format"),
    ({"dimensions": 0}, "dimensions"),
    ({"dimensions": "16"}, "dimensions"),
    ({"user": 5}, "user"),
])
async def test_embed_bad_option_is_refused(client: openai.AsyncOpenAI, extra: dict, param: str) -> None:
    with pytest.raises(openai.BadRequestError) as info:
        await client.embeddings.create(model="minilm", input="x", extra_body=extra)
    assert info.value.param == param


async def test_embed_unknown_argument_is_refused(client: openai.AsyncOpenAI) -> None:
    with pytest.raises(openai.BadRequestError, match="Unrecognized request argument supplied: temperature"):
        await client.embeddings.create(model="minilm", input="x", extra_body={"temperature": 1})


async def test_embed_user_is_accepted(client: openai.AsyncOpenAI) -> None:
    res = await client.embeddings.create(model="minilm", input="x", user="dev-42")
    assert len(res.data) == 1

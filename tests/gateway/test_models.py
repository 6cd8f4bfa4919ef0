"""`GET /v1/models` and `/v1/models/{id}` through the official openai client."""

from __future__ import annotations

import openai
import pytest

from .conftest import MODELS

pytestmark = pytest.mark.asyncio(loop_scope="module")


async def test_models_list_returns_backend_models(client: openai.AsyncOpenAI) -> None:
    page = await client.models.list()
    assert [m.id for m in page.data] == list(MODELS)
    for m in page.data:
        assert m.object == "model" and m.owned_by == "cocoon" and isinstance(m.created, int)


@pytest.mark.parametrize("model", MODELS)
async def test_models_retrieve_known_model(client: openai.AsyncOpenAI, model: str) -> None:
    m = await client.models.retrieve(model)
    assert m.id == model and m.object == "model"


async def test_models_retrieve_unknown_model_is_not_found(client: openai.AsyncOpenAI) -> None:
    with pytest.raises(openai.NotFoundError) as info:
        await client.models.retrieve("gpt-4")
    assert info.value.code == "model_not_found"

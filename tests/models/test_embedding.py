"""The real int8 MiniLM through onnxruntime, and the echo model with the same interface."""

from __future__ import annotations

import logging

import numpy as np
import pytest
import tokenizers

from offchain.errors import ConfigError, InvalidMessage
from offchain.models import (
    Batcher,
    EchoModel,
    EmbeddingModel,
    ModelSpec,
    choose_providers,
    load_model,
)

GUITAR = "A man is playing a guitar."
PARAPHRASE = "Someone plays an acoustic guitar."
UNRELATED = "The stock market fell sharply today."
LONG = " ".join(f"token{i % 97} and more" for i in range(400))
TEXTS = [GUITAR, PARAPHRASE, UNRELATED, "hi", "", LONG, "Ünïcödé text — with dashes, 数字 and emoji 🎸."]


def test_paraphrase_is_closer_than_an_unrelated_sentence(minilm: EmbeddingModel) -> None:
    a, b, c = minilm.embed([GUITAR, PARAPHRASE, UNRELATED])
    assert float(a @ b) > 0.6 > 0.2 > float(a @ c)


def test_vectors_are_unit_norm_float32_384(minilm: EmbeddingModel) -> None:
    vectors = minilm.embed(TEXTS)
    assert vectors.shape == (len(TEXTS), 384) and vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)


def test_batch_equals_one_by_one(minilm: EmbeddingModel) -> None:
    """Padding must not leak into the pooled vector: a padded row equals the row run alone."""
    batch = minilm.embed(TEXTS)
    single = np.stack([minilm.embed([t])[0] for t in TEXTS])
    np.testing.assert_allclose(batch, single, atol=1e-5)


def test_units_are_the_tokens_counted(minilm: EmbeddingModel) -> None:
    vectors, units = minilm.embed_with_units(TEXTS)
    assert units == minilm.tokenizer.count(TEXTS)
    assert units[TEXTS.index(LONG)] == 256 and units[TEXTS.index("")] == 2
    assert len(vectors) == len(units)


def test_token_ids_give_the_texts_vector(minilm: EmbeddingModel, minilm_spec: ModelSpec) -> None:
    ref = tokenizers.Tokenizer.from_file(str(minilm_spec.tokenizer_path))
    ref.no_padding()
    ids = [ref.encode(t).ids for t in (GUITAR, UNRELATED)]
    from_text = minilm.embed([GUITAR, UNRELATED])
    np.testing.assert_allclose(minilm.embed_tokens(ids), from_text, atol=1e-5)
    mixed, units = minilm.embed_with_units([ids[0], UNRELATED])  # texts and ids in one batch
    np.testing.assert_allclose(mixed, from_text, atol=1e-5)
    assert units == [len(ids[0]), len(ids[1])]


def test_empty_batch_and_bad_input(minilm: EmbeddingModel) -> None:
    vectors, units = minilm.embed_with_units([])
    assert vectors.shape == (0, 384) and units == []
    with pytest.raises(InvalidMessage):
        minilm.embed([[99999]])


def test_provider_choice() -> None:
    assert choose_providers(["CPUExecutionProvider"]) == ["CPUExecutionProvider"]
    assert choose_providers(["CUDAExecutionProvider", "CPUExecutionProvider"])[0] == "CUDAExecutionProvider"
    assert choose_providers(["TensorrtExecutionProvider", "CPUExecutionProvider"]) == ["CPUExecutionProvider"]


def test_load_logs_the_provider_and_threads_are_settable(
    minilm: EmbeddingModel, minilm_spec: ModelSpec, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="cocoon.models"):
        one_thread = load_model(minilm_spec, intra_op_threads=1)
    assert isinstance(one_thread, EmbeddingModel)
    assert one_thread.provider == minilm.provider == choose_providers()[0]
    assert [r.getMessage() for r in caplog.records] == [f"model all-MiniLM-L6-v2 loaded on {one_thread.provider}"]
    np.testing.assert_allclose(one_thread.embed([GUITAR]), minilm.embed([GUITAR]), atol=1e-5)


def test_missing_model_file(minilm_spec: ModelSpec, tmp_path) -> None:
    broken = tmp_path / "model.onnx"
    broken.write_bytes(b"not an onnx file")
    spec = ModelSpec("broken", "embedding", broken, minilm_spec.tokenizer_path, dim=384)
    with pytest.raises(ConfigError, match="cannot load"):
        EmbeddingModel(spec)


def test_echo_model(echo_spec: ModelSpec) -> None:
    echo = load_model(echo_spec)
    assert isinstance(echo, EchoModel) and echo.provider == "numpy"
    vectors, units = echo.embed_with_units(["a b c", [1, 2, 3], "a b c"])
    assert vectors.shape == (3, 8) and vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-6)
    np.testing.assert_array_equal(vectors[0], vectors[2])
    assert not np.allclose(vectors[0], vectors[1])
    assert units == [5, 3, 5]
    np.testing.assert_array_equal(echo.embed_tokens([[1, 2, 3]]), vectors[1:2])


async def test_batcher_over_the_real_model(minilm: EmbeddingModel) -> None:
    async with Batcher(minilm, max_batch=4) as batcher:
        results = [await batcher.submit(TEXTS[i : i + 3]) for i in range(0, len(TEXTS), 3)]
    vectors = np.concatenate([v for v, _ in results])
    units = [u for _, us in results for u in us]
    np.testing.assert_allclose(vectors, minilm.embed(TEXTS), atol=1e-5)
    assert units == minilm.tokenizer.count(TEXTS)

"""Fixtures for the inference layer: the real MiniLM model, loaded once per test module."""

from __future__ import annotations

import pytest

from offchain.models import EmbeddingModel, ModelSpec, builtin_models


@pytest.fixture(scope="session")
def minilm_spec() -> ModelSpec:
    return builtin_models()["all-MiniLM-L6-v2"]


@pytest.fixture(scope="session")
def echo_spec() -> ModelSpec:
    return builtin_models()["echo"]


@pytest.fixture(scope="module")
def minilm(minilm_spec: ModelSpec) -> EmbeddingModel:
    """The int8 MiniLM on this machine's provider (~0.3 s to load, so once per module)."""
    return EmbeddingModel(minilm_spec)

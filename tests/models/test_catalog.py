"""The model catalog: names, shapes, and the hash Root's allowlist holds."""

from __future__ import annotations

import dataclasses
import hashlib

import pytest

from offchain.errors import ConfigError
from offchain.models import ECHO_DESCRIPTOR, MINILM_NAME, ModelSpec, builtin_models


def test_builtin_catalog() -> None:
    models = builtin_models()
    assert set(models) == {MINILM_NAME, "echo"}
    minilm = models[MINILM_NAME]
    assert (minilm.kind, minilm.dim, minilm.max_tokens) == ("embedding", 384, 256)
    assert minilm.path is not None and minilm.path.name == "model.onnx" and minilm.path.is_file()
    assert minilm.tokenizer_path is not None and minilm.tokenizer_path.is_file()
    echo = models["echo"]
    assert (echo.path, echo.tokenizer_path, echo.dim) == (None, None, 8)


def test_hash_is_sha256_of_the_onnx_file(minilm_spec: ModelSpec) -> None:
    assert minilm_spec.path is not None
    expected = hashlib.sha256(minilm_spec.path.read_bytes()).digest()
    assert minilm_spec.hash == expected and len(expected) == 32
    assert minilm_spec.hash_int == int(expected.hex(), 16)
    assert minilm_spec.hash is minilm_spec.hash  # computed once


def test_echo_hash_is_over_its_descriptor(echo_spec: ModelSpec) -> None:
    assert echo_spec.hash == hashlib.sha256(b"cocoon/echo-model/v1").digest()
    assert ECHO_DESCRIPTOR == b"cocoon/echo-model/v1"


def test_spec_is_frozen_and_checked(minilm_spec: ModelSpec, tmp_path) -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        minilm_spec.dim = 3  # type: ignore[misc]
    with pytest.raises(ConfigError):
        ModelSpec("x", "embedding", None, None, dim=8)  # no file and nothing to hash
    with pytest.raises(ConfigError):
        ModelSpec("x", "embedding", None, None, dim=0, descriptor=b"x")
    missing = ModelSpec("x", "embedding", tmp_path / "absent.onnx", None, dim=8)
    with pytest.raises(ConfigError, match="cannot read"):
        _ = missing.hash

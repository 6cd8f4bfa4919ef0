"""Token counting: the client and the worker must bill the same units for the same inputs."""

from __future__ import annotations

import json

import numpy as np
import pytest
import tokenizers
from hypothesis import given, settings
from hypothesis import strategies as st

from offchain.errors import InvalidMessage
from offchain.models import ModelSpec, Tokenizer, WordCounter, normalize_inputs

CLS, SEP, PAD = 101, 102, 0


@pytest.fixture(scope="module")
def tok(minilm_spec: ModelSpec) -> Tokenizer:
    assert minilm_spec.tokenizer_path is not None
    return Tokenizer(minilm_spec.tokenizer_path, max_tokens=256)


@pytest.fixture(scope="module")
def reference(minilm_spec: ModelSpec) -> tokenizers.Tokenizer:
    """The shipped tokenizer with no truncation or padding: an independent reference."""
    ref = tokenizers.Tokenizer.from_file(str(minilm_spec.tokenizer_path))
    ref.no_truncation()
    ref.no_padding()
    return ref


def test_count_includes_special_tokens(tok: Tokenizer, reference: tokenizers.Tokenizer) -> None:
    assert tok.count(["hello world"]) == [4]
    assert tok.count([""]) == [2]
    text = "Someone plays an acoustic guitar."
    assert tok.count([text]) == [len(reference.encode(text).ids)]


def test_shipped_128_limit_is_overridden(tok: Tokenizer, minilm_spec: ModelSpec) -> None:
    shipped = json.loads(minilm_spec.tokenizer_path.read_text())  # type: ignore[union-attr]
    assert shipped["truncation"]["max_length"] == 128  # what we override
    assert tok.count(["word " * 200]) == [202]


def test_truncation_at_256(tok: Tokenizer) -> None:
    text = " ".join(f"word{i % 50}" for i in range(1000))
    assert tok.count([text]) == [256]
    enc = tok.encode_batch([text])
    assert enc.input_ids.shape == (1, 256)
    assert enc.input_ids[0, 0] == CLS and enc.input_ids[0, -1] == SEP  # truncated inside, [SEP] kept


def test_padding_to_longest_and_mask_matches_count(tok: Tokenizer) -> None:
    batch = ["hi", "A man is playing a guitar.", [CLS, 7592, 2088, 2088, 2088, 2088, 2088, 2088, 2088, SEP]]
    enc = tok.encode_batch(batch)
    counts = tok.count(batch)
    assert counts == [3, 9, 10]
    assert enc.input_ids.shape == enc.attention_mask.shape == enc.token_type_ids.shape == (3, 10)
    assert all(a.dtype == np.int64 for a in enc)
    assert enc.attention_mask.sum(axis=1).tolist() == counts
    assert (enc.input_ids[0, 3:] == PAD).all() and (enc.attention_mask[0, 3:] == 0).all()
    assert enc.input_ids[2].tolist() == batch[2]


def test_empty_batch(tok: Tokenizer) -> None:
    assert tok.count([]) == []
    assert tok.encode_batch([]).input_ids.shape == (0, 0)


def test_token_ids_are_taken_as_is_and_capped(tok: Tokenizer) -> None:
    ids = list(range(1000, 1300))
    assert tok.count([ids, (5, 6), np.array([7, 8, 9])]) == [256, 2, 3]
    enc = tok.encode_batch([ids])
    assert enc.input_ids[0].tolist() == ids[:256]


@pytest.mark.parametrize(
    ("inputs", "match"),
    [
        ("a text, not a list", "list of texts"),
        ([[]], "empty"),
        ([[1, 2, 30522]], "below 30522"),
        ([[-1]], "non-negative"),
        ([[2**70]], "64 bits"),
        ([np.array([2**40], dtype=np.uint64)], "below 30522"),
        ([[True, False]], "token ids"),
        ([3.5], "token ids"),
        ([[1.0, 2.0]], "token ids"),
        ([np.array([1.0])], "token ids"),
    ],
)
def test_malformed_inputs_are_rejected(tok: Tokenizer, inputs: object, match: str) -> None:
    with pytest.raises(InvalidMessage, match=match):
        tok.count(inputs)  # type: ignore[arg-type]


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.one_of(
            st.text(max_size=400),
            st.lists(st.integers(0, 30521), min_size=1, max_size=300),
        ),
        max_size=8,
    )
)
def test_count_agrees_with_the_mask(tok: Tokenizer, batch: list) -> None:
    counts = tok.count(batch)
    enc = tok.encode_batch(batch)
    assert enc.attention_mask.sum(axis=1).tolist() == counts
    assert all(1 <= c <= 256 for c in counts)
    # the mask is a prefix of ones: padding is only ever on the right
    for row, c in zip(enc.attention_mask, counts, strict=True):
        assert row[:c].all() and not row[c:].any()


def test_normalize_inputs_follows_openai() -> None:
    assert normalize_inputs("one text") == ["one text"]
    assert normalize_inputs([1, 2, 3]) == [[1, 2, 3]]
    assert normalize_inputs(["a", "b"]) == ["a", "b"]
    assert normalize_inputs([[1, 2], [3]]) == [[1, 2], [3]]
    for bad in ([], {"text": "x"}, [["a"]], None):
        with pytest.raises(InvalidMessage):
            normalize_inputs(bad)


def test_word_counter() -> None:
    wc = WordCounter(max_tokens=256)
    assert wc.count(["a b  c", "", [1, 2, 3], "w " * 1000]) == [5, 2, 3, 256]
    with pytest.raises(InvalidMessage):
        wc.count([[]])

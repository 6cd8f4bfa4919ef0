"""The semantic index without sockets: written from MiniLM vectors computed here (the same
onnxruntime model the workers run), searched, verified, and every kind of tampering named."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from nacl.signing import SigningKey

from offchain.dataset import Anchor, DatasetWriter
from offchain.errors import DatasetError
from offchain.index import (
    EMBEDDINGS_FILE,
    INDEX_DIR,
    INDEX_FILE,
    VECTORS_FILE,
    ReceiptLine,
    SemanticIndex,
    index_digest,
    index_text,
    verify_index,
    write_index,
)
from offchain.index._index import write_index_anchor
from offchain.models import builtin_models, load_model, model_hash
from offchain.protocol.provenance import ProvenanceRecord, body_hash, certificate_hash, sign_record

KEY = SigningKey(bytes([7]) * 32)
MODEL = "all-MiniLM-L6-v2"
PAGES = [
    ("https://news.example/harbour", "The old harbour opened to boats again after two years of repairs."),
    ("https://news.example/corals", "A research ship mapped cold water corals on the sea floor."),
    ("https://docs.example/install", "This page explains how to install the command line tool."),
    ("https://shop.example/kettle", "Our stainless steel kettle boils a litre of water in four minutes."),
    ("https://docs.example/empty", ""),
]


@pytest.fixture(scope="module")
def model():  # type: ignore[no-untyped-def]
    return load_model(builtin_models()[MODEL])


def _dataset(directory: Path) -> None:
    w = DatasetWriter(directory, {"seeds": ["https://news.example/"]}, shard_size=2)
    for i, (url, text) in enumerate(PAGES):
        body = text.encode()
        w.add(sign_record(KEY, ProvenanceRecord(
            url=url, final_url=url, status=200, fetched_at=1_790_000_000 + i, cert_sha256=certificate_hash(b"c"),
            body_sha256=body_hash(body), content_type="text/html", byte_count=len(body),
            provider="0:" + "ab" * 32, main_text=text, validator_key=KEY.verify_key.encode())))
    w.finish([KEY])


def _receipts(n: int, batch: int = 2) -> list[ReceiptLine]:
    return [ReceiptLine(first=i, count=min(batch, n - i), worker="0:" + "cd" * 32, worker_key="ee" * 32, request=i,
                        units=10, cost=1000, result_hash="00" * 32, signature="11" * 64) for i in range(0, n, batch)]


@pytest.fixture
def pkg(tmp_path: Path, model) -> Path:  # type: ignore[no-untyped-def]
    d = tmp_path / "pkg"
    _dataset(d)
    vectors = model.embed([index_text(u, t) for u, t in PAGES])
    write_index(d, vectors, model=MODEL, model_hash=model_hash(MODEL), receipts=_receipts(len(PAGES)),
                compute_cost=5000)
    return d


def test_written_index_verifies_and_recomputed_vectors_agree(pkg: Path, model) -> None:  # type: ignore[no-untyped-def]
    m = verify_index(pkg, embed=model.embed, sample=len(PAGES), seed=1)
    assert m.count == len(PAGES) and m.dim == 384 and m.model_hash == model_hash(MODEL).hex()
    table = pq.read_table(pkg / INDEX_DIR / EMBEDDINGS_FILE)  # loads as-is
    assert table.column("url").to_pylist() == [u for u, _ in PAGES]
    assert index_text(*PAGES[4]) == PAGES[4][0]  # a page without text is embedded by its URL


def test_search_finds_the_page_that_says_it_first(pkg: Path, model) -> None:  # type: ignore[no-untyped-def]
    index = SemanticIndex.open(pkg)
    hits = index.search(model.embed(["coral reefs at the bottom of the ocean"])[0], k=3)
    assert [h.rank for h in hits] == [1, 2, 3]
    assert hits[0].url == PAGES[1][0] and hits[0].score > hits[1].score
    assert hits[0].fetched_at == 1_790_000_001 and hits[0].node == "0:" + "ab" * 32 and len(hits[0].cert_sha256) == 64


def test_the_digest_leaves_the_anchor_out(pkg: Path) -> None:
    m = json.loads((pkg / INDEX_DIR / INDEX_FILE).read_text())
    before = verify_index(pkg)
    a = Anchor(network="localnet", address="0:" + "11" * 32, lt=5, tx_hash="22" * 32)
    after = write_index_anchor(pkg, a, index_digest(before))
    assert after.anchor == a and index_digest(after) == index_digest(before)
    with pytest.raises(DatasetError, match="changed while"):
        write_index_anchor(pkg, a, b"\0" * 32)
    assert m["format"] == "cocoon-index/1"


def _rewrite_vector(pkg: Path, row: int, vector: np.ndarray) -> None:
    path = pkg / INDEX_DIR / EMBEDDINGS_FILE
    t = pq.read_table(path)
    v = np.array(t.column("vector").combine_chunks().flatten(), dtype=np.float32).reshape(t.num_rows, -1)
    v[row] = vector
    col = pa.FixedSizeListArray.from_arrays(pa.array(v.reshape(-1), pa.float32()), v.shape[1])
    pq.write_table(t.set_column(3, "vector", col), path)


def test_a_tampered_embeddings_file_is_named(pkg: Path) -> None:
    _rewrite_vector(pkg, 1, np.eye(384, dtype=np.float32)[0])
    with pytest.raises(DatasetError, match="sha256") as e:
        verify_index(pkg)
    assert e.value.where == EMBEDDINGS_FILE


def test_a_tampered_vector_index_is_named(pkg: Path) -> None:
    path = pkg / INDEX_DIR / VECTORS_FILE
    data = bytearray(path.read_bytes())
    data[-5] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(DatasetError, match="sha256") as e:
        verify_index(pkg)
    assert e.value.where == VECTORS_FILE


def test_a_worker_that_answered_wrong_is_caught_by_recomputing(tmp_path: Path, model) -> None:  # type: ignore[no-untyped-def]
    d = tmp_path / "pkg"
    _dataset(d)
    vectors = model.embed([index_text(u, t) for u, t in PAGES])
    vectors[2] = model.embed(["something else entirely: a recipe for bread"])[0]  # one wrong answer
    write_index(d, vectors, model=MODEL, model_hash=model_hash(MODEL), receipts=_receipts(len(PAGES)),
                compute_cost=5000)
    verify_index(d)  # consistent files: only recomputing shows it
    with pytest.raises(DatasetError, match="record 2's vector is not what"):
        verify_index(d, embed=model.embed, sample=len(PAGES))


def test_an_index_over_another_dataset_or_with_gaps_is_refused(pkg: Path, tmp_path: Path, model) -> None:  # type: ignore[no-untyped-def]
    other = tmp_path / "other"
    _dataset(other)
    shutil.copytree(pkg / INDEX_DIR, other / INDEX_DIR)
    verify_index(other)  # the same records signed by the same key: the same dataset digest
    m = json.loads((pkg / INDEX_DIR / INDEX_FILE).read_text())
    m["receipts"] = m["receipts"][1:]
    (pkg / INDEX_DIR / INDEX_FILE).write_text(json.dumps(m))
    with pytest.raises(DatasetError, match="do not cover record 0"):
        verify_index(pkg)
    m["dataset"] = "00" * 32
    (pkg / INDEX_DIR / INDEX_FILE).write_text(json.dumps(m))
    with pytest.raises(DatasetError, match="another dataset"):
        verify_index(pkg)


def test_vectors_that_do_not_fit_the_dataset_are_refused(tmp_path: Path) -> None:
    d = tmp_path / "pkg"
    _dataset(d)
    with pytest.raises(ValueError, match="vectors for 5 records"):
        write_index(d, np.ones((4, 8), np.float32), model=MODEL, model_hash=b"\0" * 32, receipts=[], compute_cost=0)
    with pytest.raises(ValueError, match="non-finite"):
        write_index(d, np.full((5, 8), np.nan, np.float32), model=MODEL, model_hash=b"\0" * 32, receipts=[],
                    compute_cost=0)
    with pytest.raises(DatasetError, match="no semantic index"):
        SemanticIndex.open(d)

"""A semantic index over a verified dataset: files, manifest, search and verification.

No network here: `write_index` writes the files from vectors it is given, `SemanticIndex`
searches them, `verify_index` re-checks them (and, given an `embed` function, recomputes a
sample of vectors to catch a worker that answered wrong).
"""

from __future__ import annotations

import hashlib
import os
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import faiss
import msgspec
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from offchain.dataset import Anchor, Dataset, manifest_digest
from offchain.errors import DatasetError
from offchain.fsutil import temp_path, write_atomic

__all__ = [
    "EMBEDDINGS_FILE",
    "INDEX_DIR",
    "INDEX_FILE",
    "VECTORS_FILE",
    "Hit",
    "IndexManifest",
    "ReceiptLine",
    "SemanticIndex",
    "index_digest",
    "index_text",
    "verify_index",
    "write_index",
    "write_index_anchor",
]

INDEX_DIR = "index"  # under the dataset's folder: the records' shards stay alone at its top
EMBEDDINGS_FILE = "embeddings.parquet"
VECTORS_FILE = "vectors.faiss"
INDEX_FILE = "index.json"
MAX_TEXT_CHARS = 2000  # the model reads 256 tokens: more characters than that only cost units
SAMPLE_COSINE = 0.99  # a recomputed vector must be at least this close to the stored one
_DOMAIN = b"cocoon-index/1\0"


def index_text(url: str, main_text: str) -> str:
    """What is embedded for a page: its main text (the URL if it has none), cut at MAX_TEXT_CHARS."""
    return (main_text.strip() or url)[:MAX_TEXT_CHARS]


class ReceiptLine(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """One embedding request: which records it covered and the worker's signed receipt
    (evidence a client can show if the vectors turn out wrong)."""

    first: int  # record index of the batch's first text
    count: int
    worker: str  # the worker's Provider
    worker_key: str  # hex: its node key, which signed the receipt
    request: int
    units: int
    cost: int  # nanoTON charged for it
    result_hash: str  # hex, as signed
    signature: str  # hex


class IndexManifest(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    format: Literal["cocoon-index/1"]
    dataset: str  # hex: the dataset manifest's digest (what its validators signed)
    model: str
    model_hash: str  # hex: what Root's model allowlist holds for it
    dim: int
    count: int  # vectors = the dataset's records, in record order
    metric: Literal["inner_product"]  # vectors are L2-normalised: inner product = cosine
    embeddings_sha256: str
    vectors_sha256: str
    receipts: list[ReceiptLine]
    compute_cost: int  # nanoTON the embeddings cost
    anchor: Anchor | None = None  # where `index_digest` was put on chain (outside the digest)


def index_digest(m: IndexManifest) -> bytes:
    """sha256 over a domain tag and the manifest without its anchor (what is anchored)."""
    body = msgspec.json.encode(msgspec.structs.replace(m, anchor=None), order="deterministic")
    return hashlib.sha256(_DOMAIN + body).digest()


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _schema(dim: int) -> pa.Schema:
    return pa.schema([("record", pa.int64()), ("url", pa.string()), ("record_hash", pa.string()),
                      ("vector", pa.list_(pa.float32(), dim))])


def write_index(directory: str | os.PathLike[str], vectors: np.ndarray, *, model: str, model_hash: bytes,
                receipts: Sequence[ReceiptLine], compute_cost: int) -> IndexManifest:
    """Write `directory`/index/ for the dataset in `directory`: one L2-normalised vector per
    record, in record order (row i of `vectors` is record i), and its manifest.

    Raises:
        ValueError: the vectors do not match the dataset (count, shape, non-finite values).
    """
    ds = Dataset.open(directory)
    rows = list(ds.rows())
    v = np.asarray(vectors, dtype=np.float32)
    if v.ndim != 2 or v.shape[0] != len(rows) or v.shape[1] < 1:
        raise ValueError(f"{v.shape} vectors for {len(rows)} records")
    if not np.isfinite(v).all():
        raise ValueError("a vector has a non-finite value")
    norms = np.linalg.norm(v, axis=1, keepdims=True)
    v = v / np.where(norms > 0, norms, 1.0)
    out = Path(directory) / INDEX_DIR
    out.mkdir(exist_ok=True)
    dim = int(v.shape[1])
    table = pa.table({
        "record": pa.array([r.index for r in rows], pa.int64()),
        "url": pa.array([r.signed.record.url for r in rows], pa.string()),
        "record_hash": pa.array([r.stored_hash for r in rows], pa.string()),
        "vector": pa.FixedSizeListArray.from_arrays(pa.array(v.reshape(-1), pa.float32()), dim),
    }, schema=_schema(dim))
    tmp = temp_path(out / EMBEDDINGS_FILE)
    pq.write_table(table, tmp)
    os.replace(tmp, out / EMBEDDINGS_FILE)
    flat = faiss.IndexFlatIP(dim)  # exact search: deterministic, and a few thousand pages need no more
    flat.add(v)
    write_atomic(out / VECTORS_FILE, faiss.serialize_index(flat).tobytes())
    manifest = IndexManifest(
        format="cocoon-index/1", dataset=manifest_digest(ds.manifest).hex(), model=model,
        model_hash=model_hash.hex(), dim=dim, count=len(rows), metric="inner_product",
        embeddings_sha256=_sha256(out / EMBEDDINGS_FILE), vectors_sha256=_sha256(out / VECTORS_FILE),
        receipts=list(receipts), compute_cost=compute_cost,
    )
    write_atomic(out / INDEX_FILE, msgspec.json.format(msgspec.json.encode(manifest)) + b"\n")
    return manifest


def read_manifest(directory: str | os.PathLike[str]) -> IndexManifest:
    path = Path(directory) / INDEX_DIR / INDEX_FILE
    try:
        return msgspec.json.decode(path.read_bytes(), type=IndexManifest)
    except OSError as err:
        raise DatasetError(f"no semantic index here: {err.strerror}", where=f"{INDEX_DIR}/{INDEX_FILE}") from err
    except msgspec.DecodeError as err:
        raise DatasetError(f"not an index manifest: {err}", where=f"{INDEX_DIR}/{INDEX_FILE}") from err


def write_index_anchor(directory: str | os.PathLike[str], anchor: Anchor, digest: bytes) -> IndexManifest:
    """Record `anchor` in index.json, if the manifest's digest is still `digest`."""
    m = read_manifest(directory)
    if index_digest(m) != digest:
        raise DatasetError("the index manifest changed while it was being anchored", where=INDEX_FILE)
    m = msgspec.structs.replace(m, anchor=anchor)
    write_atomic(Path(directory) / INDEX_DIR / INDEX_FILE, msgspec.json.format(msgspec.json.encode(m)) + b"\n")
    return m


@dataclass(frozen=True)
class Hit:
    rank: int
    record: int
    score: float  # cosine similarity
    url: str
    fetched_at: int
    node: str  # the data node (Provider) that relayed the page
    cert_sha256: str  # the site's leaf certificate, as the validator saw it
    body_sha256: str


class SemanticIndex:
    """An index folder opened for search (`SemanticIndex.open(dataset_dir)`)."""

    def __init__(self, directory: Path, manifest: IndexManifest, faiss_index: faiss.Index,
                 dataset: Dataset) -> None:
        self.directory = directory
        self.manifest = manifest
        self._index = faiss_index
        self._records = list(dataset.records())

    @classmethod
    def open(cls, directory: str | os.PathLike[str]) -> SemanticIndex:
        """Raises: DatasetError: no index, or its files are unreadable."""
        path = Path(directory)
        m = read_manifest(path)
        try:
            data = np.frombuffer((path / INDEX_DIR / VECTORS_FILE).read_bytes(), dtype=np.uint8)
            index = faiss.deserialize_index(data)
        except (OSError, RuntimeError) as err:
            raise DatasetError(f"cannot read the vector index: {err}", where=VECTORS_FILE) from err
        return cls(path, m, index, Dataset.open(path))

    def search(self, vector: np.ndarray, k: int = 5) -> list[Hit]:
        q = np.asarray(vector, dtype=np.float32).reshape(1, -1)
        q = q / max(float(np.linalg.norm(q)), 1e-12)
        scores, ids = self._index.search(q, min(k, self._index.ntotal))
        hits = []
        for rank, (score, i) in enumerate(zip(scores[0], ids[0], strict=True)):
            if i < 0:
                continue
            r = self._records[int(i)].record
            hits.append(Hit(rank + 1, int(i), float(score), r.url, r.fetched_at, r.provider, r.cert_sha256.hex(),
                            r.body_sha256.hex()))
        return hits


def verify_index(directory: str | os.PathLike[str], *, embed: Callable[[list[str]], np.ndarray] | None = None,
                 sample: int = 4, seed: int | None = None) -> IndexManifest:
    """Check the index folder against its manifest and the dataset it names; with `embed`
    (texts -> vectors, the same model run locally), recompute `sample` random records'
    vectors and compare them (cosine >= SAMPLE_COSINE). The dataset itself is checked by
    `verify_dataset` (this does not repeat it).

    Raises:
        DatasetError: the first thing that does not hold, named.
    """
    path = Path(directory)
    m = read_manifest(path)
    ds = Dataset.open(path)
    where = INDEX_DIR
    if manifest_digest(ds.manifest).hex() != m.dataset:
        raise DatasetError("the index was built over another dataset (its manifest digest differs)", where=where)
    if m.count != len(ds):
        raise DatasetError(f"the index has {m.count} vectors for {len(ds)} records", where=where)
    for name, want in ((EMBEDDINGS_FILE, m.embeddings_sha256), (VECTORS_FILE, m.vectors_sha256)):
        try:
            got = _sha256(path / INDEX_DIR / name)
        except OSError as err:
            raise DatasetError(f"cannot read it: {err.strerror}", where=name) from err
        if got != want:
            raise DatasetError(f"its sha256 is {got}, the manifest says {want}", where=name)
    table = pq.read_table(path / INDEX_DIR / EMBEDDINGS_FILE)
    if table.schema != _schema(m.dim) or table.num_rows != m.count:
        raise DatasetError("not the embeddings the manifest describes (schema or row count)", where=EMBEDDINGS_FILE)
    vectors = np.asarray(table.column("vector").combine_chunks().flatten(), dtype=np.float32).reshape(-1, m.dim)
    rows = list(ds.rows())
    for i, (r, rec, url, h) in enumerate(zip(rows, table.column("record").to_pylist(), table.column("url").to_pylist(),
                                             table.column("record_hash").to_pylist(), strict=True)):
        if (rec, url, h) != (r.index, r.signed.record.url, r.stored_hash):
            raise DatasetError(f"embedding row {i} is not record {r.index} ({r.signed.record.url})",
                               where=EMBEDDINGS_FILE)
    if not np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-3):
        raise DatasetError("a vector is not L2-normalised", where=EMBEDDINGS_FILE)
    flat = faiss.deserialize_index(np.frombuffer((path / INDEX_DIR / VECTORS_FILE).read_bytes(), dtype=np.uint8))
    if flat.ntotal != m.count or flat.d != m.dim or not np.array_equal(flat.reconstruct_n(0, flat.ntotal), vectors):
        raise DatasetError("the vector index does not hold the embeddings file's vectors", where=VECTORS_FILE)
    covered = sorted((x.first, x.count) for x in m.receipts)
    at = 0
    for first, count in covered:
        if first != at or count < 1:
            raise DatasetError(f"the receipts do not cover record {at} exactly once", where=INDEX_FILE)
        at += count
    if at != m.count:
        raise DatasetError(f"the receipts cover {at} of {m.count} records", where=INDEX_FILE)
    if embed is not None and m.count:
        picks = random.Random(seed).sample(range(m.count), min(sample, m.count))
        texts = [index_text(rows[i].signed.record.url, rows[i].signed.record.main_text) for i in picks]
        fresh = np.asarray(embed(texts), dtype=np.float32)
        fresh = fresh / np.linalg.norm(fresh, axis=1, keepdims=True)
        for i, f in zip(picks, fresh, strict=True):
            cos = float(np.dot(f, vectors[i]))
            if cos < SAMPLE_COSINE:
                raise DatasetError(
                    f"record {i}'s vector is not what {m.model} gives for its text (cosine {cos:.3f} "
                    f"< {SAMPLE_COSINE}): the worker of that request answered wrong", where=EMBEDDINGS_FILE)
    return m

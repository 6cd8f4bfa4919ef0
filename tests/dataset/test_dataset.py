"""Datasets: write, load with plain pyarrow, verify; every kind of tampering has its own error."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import msgspec
import pyarrow as pa
import pyarrow.dataset as pads
import pyarrow.parquet as pq
import pytest
from nacl.signing import SigningKey

from offchain.dataset import (
    Anchor,
    Dataset,
    DatasetError,
    DatasetMalformed,
    DatasetWriter,
    InclusionProofInvalid,
    Manifest,
    ManifestMismatch,
    ManifestSignatureInvalid,
    RecordHashMismatch,
    RecordSignatureInvalid,
    UntrustedValidator,
    manifest_digest,
    verify_dataset,
)
from offchain.errors import InvalidSignature
from offchain.protocol import rfc6962
from offchain.protocol.provenance import (
    ProvenanceRecord,
    SignedRecord,
    body_hash,
    certificate_hash,
    record_hash,
    sign_record,
)

V1, V2, EVIL = (SigningKey(bytes([n]) * 32) for n in (1, 2, 3))
TRUSTED = {V1.verify_key.encode(), V2.verify_key.encode()}
SPEC = {"seeds": ["https://a.example/"], "max_pages": 25, "allow": ["a.example", "b.example"], "render": False}
N, SHARD = 25, 10
HOSTS = ("a.example", "b.example", "c.example", "d.example")


def _signed(i: int, key: SigningKey = V1) -> SignedRecord:
    body = f"<html><p>page {i}</p></html>".encode()
    host = HOSTS[i % len(HOSTS)]
    r = ProvenanceRecord(
        url=f"http://{host}/p/{i}",
        final_url=f"https://{host.upper()}/p/{i}",
        status=200,
        fetched_at=1_760_000_000 + i,
        cert_sha256=certificate_hash(host.encode()),
        body_sha256=body_hash(body),
        content_type="text/html",
        byte_count=len(body),
        provider="0:" + f"{i % 3:02x}" * 32,
        main_text=f"page {i} main text",
        validator_key=key.verify_key.encode(),
    )
    return sign_record(key, r)


def _write(directory: Path, n: int = N, *, signers: list[SigningKey] | None = None) -> Manifest:
    w = DatasetWriter(directory, SPEC, shard_size=SHARD)
    for i in range(n):
        assert w.add(_signed(i, V1 if i % 2 == 0 else V2)) == i
    return w.finish([V1, V2] if signers is None else signers)


@pytest.fixture
def ds(tmp_path: Path) -> Path:
    _write(tmp_path / "ds")
    return tmp_path / "ds"


def _rewrite_cell(path: Path, column: str, row: int, change: Callable[[Any], Any]) -> None:
    """Change one Parquet cell and write the shard back with pyarrow, as a tamperer would."""
    table = pq.read_table(path)
    i = table.schema.get_field_index(column)
    values = table.column(column).to_pylist()
    values[row] = change(values[row])
    table = table.set_column(i, table.schema.field(i), pa.array(values, table.schema.field(i).type))
    pq.write_table(table, path)


def _edit_manifest(
    directory: Path, change: Callable[[dict[str, Any]], None], *, resign: list[SigningKey] | None
) -> None:
    """Edit manifest.json; with `resign`, those keys sign the edited manifest (a validator that signed a lie)."""
    path = directory / "manifest.json"
    doc = json.loads(path.read_text())
    change(doc)
    if resign is not None:
        m = msgspec.convert(doc, Manifest)
        digest = manifest_digest(m)
        doc["signatures"] = [{"validator": k.verify_key.encode().hex(), "signature": k.sign(digest).signature.hex()}
                             for k in resign]
    path.write_text(json.dumps(doc))


def _expect(err: type[DatasetError], ds: Path, **kw: Any) -> DatasetError:
    with pytest.raises(err) as info:
        verify_dataset(ds, **kw)
    assert type(info.value) is err
    return info.value


def test_written_dataset_verifies(ds: Path) -> None:
    report = verify_dataset(ds, trusted_validators=TRUSTED)
    assert (report.records, report.shards, report.hosts) == (N, 3, len(HOSTS))
    assert report.bytes == sum(_signed(i).record.byte_count for i in range(N))
    assert report.signers == (V1.verify_key.encode(), V2.verify_key.encode())
    assert report.record_validators == frozenset(TRUSTED)
    leaves = [record_hash(_signed(i, V1 if i % 2 == 0 else V2).record) for i in range(N)]
    assert report.root == rfc6962.root(leaves)
    assert report.spec == SPEC and report.anchor is None
    assert sorted(p.name for p in ds.iterdir()) == [
        "manifest.json", "proofs.jsonl", "records-00000.parquet", "records-00001.parquet", "records-00002.parquet",
    ]


def test_shards_load_as_is_with_pyarrow(ds: Path) -> None:
    t = pq.read_table(ds / "records-00001.parquet")
    assert t.num_rows == SHARD
    assert t.column_names == [*ProvenanceRecord.__struct_fields__, "record_hash", "signature"]
    assert t.column("url")[0].as_py() == "http://c.example/p/10"
    whole = pads.dataset(ds, format="parquet", exclude_invalid_files=True).to_table()
    assert whole.num_rows == N
    assert sorted(whole.column("record_hash").to_pylist()) == sorted(
        record_hash(r.record).hex() for r in Dataset.open(ds))
    proofs = [json.loads(line) for line in (ds / "proofs.jsonl").read_text().splitlines()]
    assert [p["index"] for p in proofs] == list(range(N))
    doc = json.loads((ds / "manifest.json").read_text())
    assert doc["merkle"]["tree"] == "rfc6962-sha256" and doc["counts"]["records"] == N and doc["anchor"] is None


def test_dataset_open_reads_records_in_order(ds: Path) -> None:
    d = Dataset.open(ds)
    assert len(d) == N and d.manifest.spec == SPEC
    assert [s.record.url for s in d] == [_signed(i).record.url for i in range(N)]
    assert [r.shard for r in d.rows()][SHARD] == "records-00001.parquet"
    assert list(d.records())[3] == _signed(3, V2)


def test_empty_dataset_and_anchor_are_carried(tmp_path: Path) -> None:
    anchor = Anchor(network="testnet", address="0:" + "11" * 32, lt=123, tx_hash="22" * 32)
    w = DatasetWriter(tmp_path / "e", {"seeds": []}, anchor=anchor)
    w.finish([V1])
    report = verify_dataset(tmp_path / "e")
    assert report.records == 0 and report.root == rfc6962.EMPTY_ROOT and report.anchor == anchor
    # the anchor is written after the validators sign: changing it leaves the signatures valid
    _edit_manifest(tmp_path / "e", lambda d: d.update(anchor=None), resign=None)
    assert verify_dataset(tmp_path / "e").anchor is None


def test_writer_refuses_bad_input(tmp_path: Path) -> None:
    w = DatasetWriter(tmp_path / "w", SPEC)
    good = _signed(0)
    with pytest.raises(InvalidSignature):
        w.add(SignedRecord(good.record, _signed(1).signature))
    with pytest.raises(ValueError):
        w.finish([])
    with pytest.raises(ValueError):
        w.finish([V1, V1])
    w.add(good)
    w.finish([V1])
    with pytest.raises(RuntimeError):
        w.add(good)
    with pytest.raises(FileExistsError):
        DatasetWriter(tmp_path / "w", SPEC)
    with pytest.raises(ValueError):
        DatasetWriter(tmp_path / "f", {"rate": 0.5})


def test_tampered_main_text_is_a_hash_mismatch_naming_the_record(ds: Path) -> None:
    _rewrite_cell(ds / "records-00001.parquet", "main_text", 3, lambda s: "P" + s[1:])
    err = _expect(RecordHashMismatch, ds)
    assert (err.index, err.shard, err.row, err.url) == (13, "records-00001.parquet", 3, "http://b.example/p/13")
    assert str(err).startswith("record 13 (records-00001.parquet row 3, http://b.example/p/13): ")


def test_first_failing_record_is_named(ds: Path) -> None:
    _rewrite_cell(ds / "records-00002.parquet", "main_text", 1, lambda s: s + "!")
    _rewrite_cell(ds / "records-00000.parquet", "status", 7, lambda s: 404)
    assert _expect(RecordHashMismatch, ds).index == 7


def test_rehashed_tampered_record_fails_its_signature(ds: Path) -> None:
    path = ds / "records-00000.parquet"
    _rewrite_cell(path, "main_text", 4, lambda s: s.upper())
    rec = next(r for r in Dataset.open(ds).rows() if r.index == 4).signed.record
    _rewrite_cell(path, "record_hash", 4, lambda _: record_hash(rec).hex())
    err = _expect(RecordSignatureInvalid, ds)
    assert (err.index, err.row) == (4, 4)


def test_forged_record_signature(ds: Path) -> None:
    forged = EVIL.sign(b"anything").signature.hex()
    _rewrite_cell(ds / "records-00002.parquet", "signature", 0, lambda _: forged)
    err = _expect(RecordSignatureInvalid, ds)
    assert (err.index, err.shard, err.row) == (20, "records-00002.parquet", 0)


def test_record_by_untrusted_validator(tmp_path: Path) -> None:
    w = DatasetWriter(tmp_path / "u", SPEC, shard_size=SHARD)
    for i in range(5):
        w.add(_signed(i, EVIL if i == 2 else V1))
    w.finish([V1])
    verify_dataset(tmp_path / "u")
    err = _expect(UntrustedValidator, tmp_path / "u", trusted_validators=TRUSTED)
    assert err.index == 2 and err.validator == EVIL.verify_key.encode().hex()


def test_tampered_proof_names_the_record(ds: Path) -> None:
    path = ds / "proofs.jsonl"
    lines = path.read_text().splitlines()
    line = json.loads(lines[7])
    line["proof"][1] = ("0" if line["proof"][1][0] != "0" else "1") + line["proof"][1][1:]
    lines[7] = json.dumps(line)
    path.write_text("\n".join(lines) + "\n")
    err = _expect(InclusionProofInvalid, ds)
    assert (err.index, err.shard, err.row, err.url) == (7, "records-00000.parquet", 7, "http://d.example/p/7")


def test_missing_proofs_are_malformed(ds: Path) -> None:
    path = ds / "proofs.jsonl"
    path.write_text("\n".join(path.read_text().splitlines()[:-1]) + "\n")
    assert _expect(DatasetMalformed, ds).index == N - 1


@pytest.mark.parametrize(
    ("field", "change"),
    [
        ("merkle.root", lambda d: d["merkle"].update(root="ab" * 32)),
        ("counts.bytes", lambda d: d["counts"].update(bytes=d["counts"]["bytes"] + 1)),
        ("counts.hosts", lambda d: d["counts"].update(hosts=3)),
        ("counts.records", lambda d: d["counts"].update(records=24)),
        ("shards[2].rows", lambda d: d["shards"][2].update(rows=4)),
    ],
)
def test_manifest_that_lies_about_the_records_is_a_mismatch(
    ds: Path, field: str, change: Callable[[dict[str, Any]], None]
) -> None:
    _edit_manifest(ds, change, resign=[V1, V2])  # validly signed, yet wrong
    err = _expect(ManifestMismatch, ds, trusted_validators=TRUSTED)
    assert err.field == field
    assert str(err).startswith(f"manifest.json: {field} is ")


def test_tampered_manifest_breaks_its_signatures(ds: Path) -> None:
    _edit_manifest(ds, lambda d: d["counts"].update(hosts=9), resign=None)
    err = _expect(ManifestSignatureInvalid, ds)
    assert err.validator == V1.verify_key.encode().hex()


def test_forged_validator_signature(ds: Path) -> None:
    def forge(d: dict[str, Any]) -> None:
        sig = d["signatures"][1]["signature"]
        d["signatures"][1]["signature"] = ("f" if sig[0] != "f" else "e") + sig[1:]

    _edit_manifest(ds, forge, resign=None)
    assert _expect(ManifestSignatureInvalid, ds).validator == V2.verify_key.encode().hex()


def test_missing_validator_signatures(ds: Path) -> None:
    _edit_manifest(ds, lambda d: d.update(signatures=[]), resign=None)
    err = _expect(ManifestSignatureInvalid, ds)
    assert "no validator signed" in str(err)


def test_untrusted_manifest_signer(tmp_path: Path) -> None:
    _write(tmp_path / "x", signers=[V1, EVIL])
    verify_dataset(tmp_path / "x")
    err = _expect(UntrustedValidator, tmp_path / "x", trusted_validators=TRUSTED)
    assert err.validator == EVIL.verify_key.encode().hex() and err.index is None
    verify_dataset(tmp_path / "x", trusted_validators=TRUSTED | {EVIL.verify_key.encode()})


def test_missing_or_extra_shard_is_malformed(ds: Path, tmp_path: Path) -> None:
    (ds / "records-00003.parquet").write_bytes((ds / "records-00002.parquet").read_bytes())
    assert _expect(DatasetMalformed, ds).shard == "records-00003.parquet"
    (ds / "records-00003.parquet").unlink()
    (ds / "records-00001.parquet").unlink()
    assert _expect(DatasetMalformed, ds).shard == "records-00001.parquet"
    with pytest.raises(DatasetMalformed, match=r"manifest\.json"):
        verify_dataset(tmp_path / "nowhere")


def test_invalid_cell_value_is_malformed_naming_the_record(ds: Path) -> None:
    _rewrite_cell(ds / "records-00000.parquet", "provider", 2, lambda s: "EQ" + s)
    err = _expect(DatasetMalformed, ds)
    assert (err.index, err.url) == (2, "http://c.example/p/2")


def test_error_line_escapes_control_characters_in_urls() -> None:
    err = RecordHashMismatch("x", index=1, shard="records-00000.parquet", row=1, url="http://a/\nerror: fake")
    assert str(err) == "record 1 (records-00000.parquet row 1, http://a/\\nerror: fake): x"
    assert err.url == "http://a/\nerror: fake"


def test_manifest_of_is_what_the_writer_writes_and_a_signature_made_elsewhere_is_carried(tmp_path: Path) -> None:
    """A crawl's validator signs `manifest_of(records)`; its client writes the same records and
    carries that signature, which must verify over what it wrote."""
    from offchain.dataset._format import ValidatorSignature
    from offchain.dataset._writer import manifest_of

    records = [_signed(i) for i in range(5)]
    spec = {"seeds": ["https://a.test/"]}
    digest = manifest_digest(manifest_of(spec, records, shard_size=2))
    w = DatasetWriter(tmp_path / "d", spec, shard_size=2)
    for r in records:
        w.add(r)
    assert manifest_digest(w.manifest()) == digest
    sig = ValidatorSignature(validator=V1.verify_key.encode().hex(), signature=V1.sign(digest).signature.hex())
    m = w.finish(signatures=[sig])
    assert m.signatures == [sig]
    assert verify_dataset(tmp_path / "d", trusted_validators={V1.verify_key.encode()}).records == 5
    w2 = DatasetWriter(tmp_path / "e", spec, shard_size=2)
    for r in records[:4]:
        w2.add(r)
    with pytest.raises(ValueError, match="does not verify over these records"):
        w2.finish(signatures=[sig])

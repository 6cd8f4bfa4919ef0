"""`cocoon dataset verify DIR`: a table and exit 0 when valid, one line and exit 1 otherwise."""

from __future__ import annotations

from pathlib import Path

import pyarrow.parquet as pq
import pytest

from offchain.cli import main
from tests.dataset.test_dataset import TRUSTED, V1, N, _rewrite_cell, _write


def test_valid_dataset_prints_a_table_and_exits_0(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    m = _write(tmp_path / "ds")
    assert main(["dataset", "verify", str(tmp_path / "ds")]) == 0
    out = capsys.readouterr().out
    assert "valid" in out and m.merkle.root in out and f"{N}" in out
    assert V1.verify_key.encode().hex() in out


def test_trust_option_accepts_known_signers(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _write(tmp_path / "ds")
    args = [a for k in sorted(TRUSTED) for a in ("--trust", k.hex())]
    assert main(["dataset", "verify", str(tmp_path / "ds"), *args]) == 0
    assert main(["dataset", "verify", str(tmp_path / "ds"), "--trust", "11" * 32]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    v1 = V1.verify_key.encode().hex()
    assert err == [f"error: manifest.json: validator {v1} signed the manifest but is not trusted"]


def test_bad_record_exits_1_with_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _write(tmp_path / "ds")
    shard = tmp_path / "ds" / "records-00001.parquet"
    _rewrite_cell(shard, "main_text", 2, lambda s: s.replace("main", "mane"))
    assert pq.read_table(shard).column("main_text")[2].as_py() == "page 12 mane text"
    capsys.readouterr()
    assert main(["dataset", "verify", str(tmp_path / "ds")]) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("error: record 12 (records-00001.parquet row 2, http://a.example/p/12): ")
    assert "record_hash" in lines[0]


def test_missing_dataset_exits_1(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["dataset", "verify", str(tmp_path / "none")]) == 1
    assert capsys.readouterr().err.startswith("error: manifest.json: cannot read it")


def test_bad_trust_key_is_a_usage_error(tmp_path: Path) -> None:
    with pytest.raises(SystemExit) as info:
        main(["dataset", "verify", str(tmp_path), "--trust", "xyz"])
    assert info.value.code == 2

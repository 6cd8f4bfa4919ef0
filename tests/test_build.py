"""`cocoon build`: Blueprint artifacts, skipping unchanged sources, compiler errors with file:line."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from offchain.errors import BuildError
from offchain.ton.build import build_entries, contract_name

GOOD = """tolk 1.3
import "common/consts.tolk"
fun onInternalMessage(in: InMessage) {}
get fun answer(): int { return ANSWER; }
"""


def _project(tmp_path: Path) -> Path:
    contracts = tmp_path / "contracts"
    (contracts / "common").mkdir(parents=True)
    (contracts / "common" / "consts.tolk").write_text("const ANSWER = 42\n")
    (contracts / "my_thing.tolk").write_text(GOOD)
    return contracts


def test_contract_name_is_pascal_case():
    assert contract_name(Path("reward_pool.tolk")) == "RewardPool"
    assert contract_name(Path("root.tolk")) == "Root"


def test_build_writes_blueprint_artifact_and_skips_unchanged(tmp_path):
    contracts = _project(tmp_path)
    out = tmp_path / "build"
    first = build_entries([contracts / "my_thing.tolk"], out_dir=out, root=tmp_path)["MyThing"]
    assert first.fresh
    artifact = json.loads((out / "MyThing.compiled.json").read_text())
    assert set(artifact) >= {"hash", "hashBase64", "hex"}
    assert artifact["hash"] == first.hash_hex == first.code.hash.hex()
    assert (out / "MyThing.fif").read_text().startswith('"Asm.fif" include')
    assert {s["filename"] for s in artifact["sources"]} == {"contracts/my_thing.tolk", "contracts/common/consts.tolk"}

    again = build_entries([contracts / "my_thing.tolk"], out_dir=out, root=tmp_path)["MyThing"]
    assert not again.fresh and again.hash_hex == first.hash_hex

    # an edit of an *imported* file makes the artifact stale
    (contracts / "common" / "consts.tolk").write_text("const ANSWER = 43\n")
    changed = build_entries([contracts / "my_thing.tolk"], out_dir=out, root=tmp_path)["MyThing"]
    assert changed.fresh and changed.hash_hex != first.hash_hex


def test_compile_error_has_file_and_line(tmp_path):
    contracts = _project(tmp_path)
    (contracts / "my_thing.tolk").write_text("tolk 1.3\nfun onInternalMessage(in: InMessage) {\n  val x: int = ;\n}\n")
    with pytest.raises(BuildError) as err:
        build_entries([contracts / "my_thing.tolk"], out_dir=tmp_path / "build", root=tmp_path)
    assert "contracts/my_thing.tolk:3:" in err.value.compiler_message


def _cli_build(contracts: Path, out: Path) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, "-m", "offchain.cli", "build", "--contracts-dir", str(contracts), "--out-dir", str(out)]
    return subprocess.run(cmd, capture_output=True, text=True)


def test_cli_build_fails_nonzero_with_compiler_message(tmp_path):
    contracts = _project(tmp_path)
    (contracts / "broken.tolk").write_text("tolk 1.3\nfun onInternalMessage(in: InMessage) { return nope; }\n")
    proc = _cli_build(contracts, tmp_path / "b")
    assert proc.returncode == 1
    assert "contracts/broken.tolk:2:" in proc.stderr
    assert proc.stderr.strip().splitlines()[-1] == "error: build failed: contracts/broken.tolk"


def test_cli_build_prints_hashes(tmp_path):
    contracts = _project(tmp_path)
    proc = _cli_build(contracts, tmp_path / "b")
    assert proc.returncode == 0, proc.stderr
    artifact = json.loads((tmp_path / "b" / "MyThing.compiled.json").read_text())
    assert f"MyThing   {artifact['hash']}" in proc.stdout or artifact["hash"] in proc.stdout

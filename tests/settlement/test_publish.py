"""Published epochs: epochs/N/{inputs,result,tree}.json, verify_published, `cocoon epoch verify`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from offchain.cli import main
from offchain.protocol.merkle import proof_from_json
from offchain.settlement import publish, read_inputs, settle, verify_published
from tests.settlement.helpers import addr, crawl, gpu, inputs, ledger, redeemed_for, relay

G0, G1, B0, V0 = addr("g0"), addr("g1"), addr("b0"), addr("v0")


def _published(tmp_path: Path, epoch: int = 1):
    g = ledger(addr("router"), [gpu(G0, 3, 3000), gpu(G1, 1, 1000), relay(B0, 5, 500), crawl(V0, 2, 100)])
    bad = ledger(addr("liar"), [gpu(G1, 99, 99)])
    inp = inputs([g, bad], compute=1_000_003, data=200_001, epoch=epoch, redeemed=redeemed_for(g))
    result = settle(inp)
    folder = publish(result, inp, tmp_path / "epochs")
    return inp, result, folder


def _row(doc, provider: str, model: str) -> dict:
    """The inputs.json row of `provider` and `model` (in the honest router's ledger)."""
    return next(r for g in doc["ledgers"] if g["router"] == addr("router") for r in g["rows"]
                if r["provider"] == provider and r["model"] == model)


def _edit(path: Path, fn) -> None:
    doc = json.loads(path.read_text())
    fn(doc)
    path.write_text(json.dumps(doc, indent=2))


def test_publish_writes_the_three_files_and_they_verify(tmp_path: Path):
    _, result, folder = _published(tmp_path)
    assert folder == tmp_path / "epochs" / "1"
    assert sorted(p.name for p in folder.iterdir()) == ["inputs.json", "result.json", "tree.json"]
    assert settle(read_inputs(folder)).canonical() == result.canonical()
    doc = json.loads((folder / "result.json").read_text())
    assert doc["merkle_root"] == result.tree.root_hash.hex() and doc["root_total"] == result.tree.root_total
    assert [r["router"] for r in doc["refused"]] == [addr("liar")]
    for entry, a in zip(doc["providers"], result.allocations, strict=True):
        assert (entry["provider"], entry["role"], entry["amount"], entry["cumulative"]) == (
            a.provider, a.role, a.amount, a.cumulative,
        )
        proof = proof_from_json(entry["proof"])  # what `cocoon provider claim --proof` reads
        assert proof.verify(result.tree.root_hash, result.tree.root_total) and proof.cumulative == a.cumulative
    tree = json.loads((folder / "tree.json").read_text())
    assert len(tree["leaves"]) == len(result.allocations) and tree["role_totals"] == list(result.tree.role_totals)
    assert verify_published(folder) == []
    assert verify_published(folder, result.tree.root_hash, result.tree.root_total) == []
    assert verify_published(folder, int.from_bytes(result.tree.root_hash, "big")) == []
    # a publish of a result from other inputs is refused
    other = inputs([], compute=1, data=1)
    with pytest.raises(ValueError, match="not settled from these inputs"):
        publish(result, other, tmp_path / "epochs")


def test_a_tampered_inputs_json_is_named(tmp_path: Path):
    _, result, folder = _published(tmp_path)

    def more_units(doc):
        _row(doc, G0, "all-MiniLM-L6-v2")["units"] = 30

    _edit(folder / "inputs.json", more_units)
    problems = verify_published(folder)
    assert any(p.startswith("inputs.json: its digest is ") and "inputs.json was changed after the result" in p
               for p in problems), problems
    assert any(p.startswith("result.json: merkle_root is ") for p in problems)
    assert any(p.startswith("tree.json: merkle_root is ") for p in problems)
    assert any(f"providers[{G0} (gpu)].cumulative is" in p for p in problems)
    # the adopted root is the published one, not what these inputs give
    problems = verify_published(folder, result.tree.root_hash)
    assert any(p.startswith("chain: the pool adopted root ") for p in problems)


def test_a_tampered_result_json_is_named(tmp_path: Path):
    _, result, folder = _published(tmp_path)
    i = next(i for i, a in enumerate(result.allocations) if a.provider == G1)

    def richer(doc):
        doc["providers"][i]["cumulative"] += 1
        doc["providers"][i]["proof"]["cumulative"] += 1

    _edit(folder / "result.json", richer)
    problems = verify_published(folder)
    want = result.allocations[i].cumulative
    assert problems == [
        f"result.json: providers[{G1} (gpu)].cumulative is {want + 1}, recomputed from inputs.json: {want}",
        f"result.json: providers[{G1} (gpu)].proof.cumulative is {want + 1}, recomputed from inputs.json: {want}",
    ]

    def drop_and_add(doc):
        doc["providers"][i]["cumulative"] -= 1
        doc["providers"][i]["proof"]["cumulative"] -= 1
        gone = doc["providers"].pop(0)
        doc["providers"].append({**gone, "provider": addr("stranger")})

    _edit(folder / "result.json", drop_and_add)
    problems = verify_published(folder)
    first = result.allocations[0]
    assert any(f"lacks {first.provider} (gpu)" in p for p in problems), problems
    assert any(f"names {addr('stranger')} (gpu), which the inputs do not give a leaf" in p for p in problems)


def test_a_missing_or_broken_file_is_named(tmp_path: Path):
    _, _, folder = _published(tmp_path)
    (folder / "tree.json").write_text("{not json")
    assert [p.split(" (")[0] for p in verify_published(folder)] == ["tree.json: not JSON"]
    (folder / "tree.json").unlink()
    assert verify_published(folder)[0].startswith("tree.json: cannot read it")
    (folder / "inputs.json").write_text('{"epoch": "one"}')
    assert "not epoch inputs" in verify_published(folder)[0]


# ---- the command --------------------------------------------------------------------------------


def test_cli_verify_passes_on_a_published_epoch(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    _, result, _ = _published(tmp_path, epoch=3)
    assert main(["epoch", "verify", "3", "--dir", str(tmp_path / "epochs")]) == 0
    out = capsys.readouterr().out
    assert "epoch 3" in out and "valid" in out and result.tree.root_hash.hex() in out
    assert "not checked (offline)" in out and "gpu" in out and "protocol" in out
    assert "refused" in out


def test_cli_verify_fails_on_a_tampered_epoch_naming_what_differs(tmp_path: Path, capsys: pytest.CaptureFixture):
    _, _, folder = _published(tmp_path)

    def fewer_bytes(doc):
        _row(doc, B0, "relay")["units"] = 1

    _edit(folder / "inputs.json", fewer_bytes)
    capsys.readouterr()
    assert main(["epoch", "verify", "1", "--dir", str(tmp_path / "epochs")]) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith(f"error: epoch 1 ({folder}) does not verify: inputs.json: its digest is ")
    # B0 is the only data node: its share is the same, the role's weight is not
    assert "result.json: roles[bandwidth].weight is 5000000, recomputed from inputs.json: 1000000" in lines[0]


def test_cli_verify_usage_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    assert main(["epoch", "verify", "9", "--dir", str(tmp_path)]) == 1
    assert capsys.readouterr().err.startswith(f"error: {tmp_path / '9' / 'inputs.json'}: cannot read it")
    assert main(["epoch", "verify", "1", "--dir", str(tmp_path), "--root", addr("root")]) == 1
    assert capsys.readouterr().err.strip() == (
        "error: --root and --url need --network (the chain to read the adopted root from)"
    )
    with pytest.raises(SystemExit) as info:
        main(["epoch", "verify", "one"])
    assert info.value.code == 2


def test_cli_show_lists_the_epochs_and_details_the_latest(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    _published(tmp_path, epoch=1)
    _, result, _ = _published(tmp_path, epoch=2)
    (tmp_path / "epochs" / "3").mkdir()  # being written: no result.json yet, not listed
    assert main(["epoch", "show", "--dir", str(tmp_path / "epochs")]) == 0
    out = capsys.readouterr().out
    assert "published epochs" in out and "epoch 2: the split per role" in out
    gpu_line = next(r for r in result.summary.roles if r.name == "gpu")
    assert f"{gpu_line.allocated:,}" in out and f"{result.summary.protocol:,}" in out
    g0 = next(a for a in result.summary.allocations if a.provider == G0)
    assert G0 in out and f"{g0.amount:,}" in out and "75.0%" in out  # 3 of 4 units
    assert "refused ledger of router" in out and "cocoon epoch verify 2" in out


def test_cli_show_json_is_the_signed_summary_without_proofs(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    _, result, _ = _published(tmp_path, epoch=4)
    assert main(["epoch", "show", "4", "--dir", str(tmp_path / "epochs"), "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["epoch"] == 4 and doc["merkle_root"] == result.tree.root_hash.hex()
    assert {(p["provider"], p["amount"]) for p in doc["providers"]} == {
        (a.provider, a.amount) for a in result.summary.allocations}
    assert all("proof" not in p for p in doc["providers"]) and "report" not in doc


def test_cli_show_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    assert main(["epoch", "show", "--dir", str(tmp_path / "nope")]) == 1
    assert "no such epochs folder" in capsys.readouterr().err
    (tmp_path / "e").mkdir()
    assert main(["epoch", "show", "--dir", str(tmp_path / "e")]) == 1
    assert "no epoch published yet" in capsys.readouterr().err
    _published(tmp_path, epoch=1)
    assert main(["epoch", "show", "7", "--dir", str(tmp_path / "epochs")]) == 1
    assert capsys.readouterr().err.strip().endswith("epoch 7 is not published under "
                                                    f"{tmp_path / 'epochs'} (published: 1..1)")
    (tmp_path / "epochs" / "1" / "result.json").write_text("[]")
    assert main(["epoch", "show", "--dir", str(tmp_path / "epochs")]) == 1
    assert "not an epoch result" in capsys.readouterr().err

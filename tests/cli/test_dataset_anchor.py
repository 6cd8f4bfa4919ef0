"""`cocoon dataset anchor` and `cocoon dataset verify --network` against a real localnet process
with Root deployed by the foundation's deploy script (the devnet code), its validator set one
validator's node key: the dataset's records and manifest are signed with that key."""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from nacl.signing import SigningKey

from offchain.agentkit import node_key
from offchain.cli import main
from offchain.dataset import Anchor, Dataset, DatasetWriter, Manifest, manifest_digest, write_anchor
from offchain.devnet import Devnet, DevnetConfig
from offchain.devnet._network import wallet_env
from offchain.ton.network import LocalnetProvider
from offchain.ton.transaction import raw
from tests.dataset.test_dataset import SPEC, V1, _edit_manifest, _signed
from wrappers.opcodes import Op

N, SHARD = 12, 5
ANCHOR_WALLET = 3  # a spare funded wallet: anyone may anchor, not only the foundation


@dataclass
class Net:
    url: str
    root: str  # raw
    validator: SigningKey  # in Root's validator set

    def cli(self, *args: str) -> int:
        return main([*args, "--network", "localnet", "--url", self.url])


@pytest.fixture(scope="module")
def net(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Net]:
    work = tmp_path_factory.mktemp("devnet")
    d = Devnet(work, DevnetConfig(workers=0, gateway=False, validators=1))
    try:
        d.start_localnet()
        d.deploy()
        yield Net(url=d.api_url, root=raw(d.root) or "", validator=node_key(work / "validator0" / "node.key"))
    finally:
        d.close()


@pytest.fixture(autouse=True)
def _anchor_wallet(monkeypatch: pytest.MonkeyPatch) -> None:
    for k, v in wallet_env(ANCHOR_WALLET).items():
        monkeypatch.setenv(k, v)
    monkeypatch.delenv("COCOON_LOCALNET_URL", raising=False)


def write(directory: Path, records: SigningKey, signers: list[SigningKey]) -> Manifest:
    w = DatasetWriter(directory, SPEC, shard_size=SHARD)
    for i in range(N):
        w.add(_signed(i, records))
    return w.finish(signers)


def anchored(net: Net, directory: Path, capsys: pytest.CaptureFixture[str]) -> Anchor:
    assert net.cli("dataset", "anchor", str(directory), "--root", net.root) == 0
    out = capsys.readouterr().out
    a = Dataset.open(directory).manifest.anchor
    assert a is not None and (a.network, a.address) == ("localnet", net.root)
    assert "anchored" in out and a.tx_hash in out
    return a


def one_error(capsys: pytest.CaptureFixture[str]) -> str:
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert captured.out == "" and len(lines) == 1, captured
    return lines[0]


def test_anchor_then_verify_online_and_offline(net: Net, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ds = tmp_path / "ds"
    m = write(ds, net.validator, [net.validator])
    a = anchored(net, ds, capsys)
    assert Dataset.open(ds).manifest.signatures == m.signatures  # the anchor is outside the digest

    assert main(["dataset", "verify", str(ds)]) == 0
    out = capsys.readouterr().out
    assert "not checked (offline)" in out and "valid" in out

    assert net.cli("dataset", "verify", str(ds)) == 0
    out = capsys.readouterr().out
    assert f"checked: localnet, lt {a.lt}" in out and a.tx_hash in out and net.root in out
    assert "1 validators, threshold 1; 1 of them signed the manifest" in out
    assert net.cli("dataset", "verify", str(ds), "--root", net.root) == 0
    capsys.readouterr()

    # Root's transaction: AnchorDataset in, DatasetAnchored out, the excess back to the wallet
    async def tx():
        chain = LocalnetProvider(net.url)
        try:
            return (await chain.get_transactions(net.root, limit=1, lt=a.lt, hash=bytes.fromhex(a.tx_hash)))[0]
        finally:
            await chain.close()

    t = asyncio.run(tx())
    assert t.success and t.op == Op.ANCHOR_DATASET
    assert [o.op for o in t.out_msgs if o.kind == "external-out"] == [Op.DATASET_ANCHORED]
    assert [o.op for o in t.out_msgs if o.kind == "internal"] == [Op.RETURN_EXCESS]

    # anchoring again needs --force, and gives a new anchor
    assert net.cli("dataset", "anchor", str(ds), "--root", net.root) == 1
    assert "is anchored already" in one_error(capsys)
    assert net.cli("dataset", "anchor", str(ds), "--root", net.root, "--force") == 0
    capsys.readouterr()
    assert Dataset.open(ds).manifest.anchor.lt > a.lt


def test_a_manifest_changed_after_anchoring_fails_naming_the_anchor(
    net: Net, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ds = tmp_path / "ds"
    write(ds, net.validator, [net.validator])
    anchored(net, ds, capsys)
    before = manifest_digest(Dataset.open(ds).manifest)
    _edit_manifest(ds, lambda d: d["spec"].update(max_pages=1000), resign=[net.validator])
    assert main(["dataset", "verify", str(ds)]) == 0  # re-signed: valid offline
    capsys.readouterr()
    assert net.cli("dataset", "verify", str(ds)) == 1
    line = one_error(capsys)
    after = manifest_digest(Dataset.open(ds).manifest)
    assert line.startswith("error: anchor: transaction lt ")
    assert line.endswith(f"anchors digest {before.hex()}, not the manifest's digest {after.hex()}")


def test_an_anchor_on_another_transaction_fails(net: Net, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ds = tmp_path / "ds"
    write(ds, net.validator, [net.validator])

    async def root_txs():
        chain = LocalnetProvider(net.url)
        try:
            return await chain.get_transactions(net.root, limit=100)
        finally:
            await chain.close()

    other = next(t for t in asyncio.run(root_txs()) if t.op not in (None, Op.ANCHOR_DATASET))  # an owner update
    write_anchor(ds, Anchor(network="localnet", address=net.root, lt=other.lt, tx_hash=other.hash.hex()))
    assert net.cli("dataset", "verify", str(ds)) == 1
    assert one_error(capsys) == (
        f"error: anchor: transaction lt {other.lt} on {net.root} is not an AnchorDataset "
        f"(its message has op 0x{other.op:08x})"
    )
    write_anchor(ds, Anchor(network="localnet", address=net.root, lt=other.lt, tx_hash="ab" * 32))
    assert net.cli("dataset", "verify", str(ds)) == 1
    assert one_error(capsys) == f"error: anchor: {net.root} has no transaction at lt {other.lt} with hash {'ab' * 32}"
    write_anchor(ds, None)
    assert net.cli("dataset", "verify", str(ds)) == 1
    assert one_error(capsys) == "error: anchor: the manifest has no anchor (anchor it with `cocoon dataset anchor`)"


def test_signers_outside_roots_validator_set_fail(net: Net, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    outsider = V1.verify_key.encode().hex()
    ds = tmp_path / "manifest-by-outsider"
    write(ds, net.validator, [net.validator, V1])
    anchored(net, ds, capsys)
    assert net.cli("dataset", "verify", str(ds)) == 1
    assert one_error(capsys) == (
        f"error: manifest.json: validator {outsider} signed the manifest but is not in Root {net.root}'s validator set"
    )
    ds = tmp_path / "records-by-outsider"
    write(ds, V1, [net.validator])
    anchored(net, ds, capsys)
    assert net.cli("dataset", "verify", str(ds)) == 1
    line = one_error(capsys)
    assert line.startswith("error: record 0 (records-00000.parquet row 0, http://a.example/p/0): ")
    assert line.endswith(f"validator {outsider} signed this record but is not in Root {net.root}'s validator set")
    # --root must be the anchor's Root
    shutil.rmtree(ds)
    ds = tmp_path / "ds"
    write(ds, net.validator, [net.validator])
    anchored(net, ds, capsys)
    elsewhere = "0:" + "42" * 32
    assert net.cli("dataset", "verify", str(ds), "--root", elsewhere) == 1
    assert one_error(capsys) == f"error: anchor: it is on {net.root}, not on Root {elsewhere}"


def test_too_little_value_is_refused(net: Net, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ds = tmp_path / "ds"
    write(ds, net.validator, [net.validator])
    assert net.cli("dataset", "anchor", str(ds), "--root", net.root, "--value", "0.009") == 1
    assert one_error(capsys) == f"error: AnchorDataset refused by {net.root}: ANCHOR_FEE"
    assert Dataset.open(ds).manifest.anchor is None


def test_offline_usage(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ds = tmp_path / "ds"
    write(ds, V1, [V1])
    assert main(["dataset", "verify", str(ds)]) == 0
    assert "no anchor" in capsys.readouterr().out
    assert main(["dataset", "verify", str(ds), "--root", "0:" + "42" * 32]) == 1
    assert one_error(capsys) == "error: --root and --url need --network (the chain to check the anchor on)"
    assert main(["dataset", "anchor", str(ds)]) == 1  # no --root and no deployment recorded
    assert "run `cocoon deploy --network localnet` first, or pass --root" in one_error(capsys)

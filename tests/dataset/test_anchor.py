"""anchor_manifest / check_anchor on the sandbox network (an in-process chain, a real wallet):
the anchor lands in the manifest and holds; every way it can fail is one sentence."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import msgspec
import pytest

from offchain.dataset import (
    Anchor,
    Dataset,
    DatasetError,
    anchor_manifest,
    check_anchor,
    manifest_digest,
    verify_dataset,
    write_anchor,
)
from offchain.errors import ContractRefused
from offchain.ton._wallet import WalletKey
from offchain.ton.blockchain import ton
from offchain.ton.build import code_cell
from offchain.ton.network import NetworkProvider, WalletSender, create_network_provider
from offchain.ton.transaction import raw
from tests.dataset.test_dataset import V1, V2, _edit_manifest, _write
from wrappers.errors import ExitCode
from wrappers.root import ANCHOR_FEE, Root, RootConfig


@dataclass
class Chain:
    net: NetworkProvider
    root: Root

    @property
    def root_raw(self) -> str:
        return raw(self.root.address) or ""


@pytest.fixture
async def chain() -> AsyncIterator[Chain]:
    net = await create_network_provider("sandbox", env={})
    owner = net.sender()
    root = Root.create_from_config(
        RootConfig(owner=owner.address, treasury=owner.address, provider_code=code_cell("Provider"),
                   validators=[int.from_bytes(V1.verify_key.encode(), "big")], threshold=1),
        code_cell("Root"),
    )
    sent = await owner.send(to=root.address, value=ton(1), init=root.init)
    await sent.wait_delivered()
    async with net:
        yield Chain(net, root)


async def test_anchor_is_written_into_the_manifest_and_holds(chain: Chain, tmp_path: Path) -> None:
    m = _write(tmp_path / "ds")
    signatures = (tmp_path / "ds" / "manifest.json").read_text()
    a = await anchor_manifest(chain.net, chain.root.address, tmp_path / "ds")
    assert (a.network, a.address) == ("sandbox", chain.root_raw) and len(a.tx_hash) == 64
    on_disk = Dataset.open(tmp_path / "ds").manifest
    assert on_disk.anchor == a and on_disk.signatures == m.signatures
    assert json.loads(signatures)["signatures"] == json.loads((tmp_path / "ds" / "manifest.json").read_text())[
        "signatures"]
    assert manifest_digest(on_disk) == manifest_digest(m)
    assert verify_dataset(tmp_path / "ds").anchor == a  # the signatures still verify
    assert await check_anchor(chain.net, on_disk) is None
    assert await check_anchor(chain.net.chain, on_disk, root=chain.root.address) is None


async def test_a_wallet_sender_anchors_too(chain: Chain, tmp_path: Path) -> None:
    _write(tmp_path / "ds")
    other = WalletSender(chain.net.chain, WalletKey.localnet(3, global_id=chain.net.chain.global_id))
    before = await other.balance()
    a = await anchor_manifest(other, chain.root_raw, tmp_path / "ds", value=ton(1), query_id=9)
    assert await check_anchor(chain.net, Dataset.open(tmp_path / "ds").manifest) is None
    spent = before - await other.balance()
    assert 0 < spent < ANCHOR_FEE  # the wallet's and Root's fees only: 1 TON went out, nearly all came back
    assert a.network == "sandbox"


async def test_a_tampered_manifest_fails_naming_the_digests(chain: Chain, tmp_path: Path) -> None:
    _write(tmp_path / "ds")
    await anchor_manifest(chain.net, chain.root.address, tmp_path / "ds")
    before = manifest_digest(Dataset.open(tmp_path / "ds").manifest)
    _edit_manifest(tmp_path / "ds", lambda d: d["spec"].update(max_pages=26), resign=[V1, V2])
    m = verify_dataset(tmp_path / "ds") and Dataset.open(tmp_path / "ds").manifest  # re-signed: valid offline
    why = await check_anchor(chain.net, m)
    assert why is not None and "not the manifest's digest" in why
    assert before.hex() in why and manifest_digest(m).hex() in why


async def test_an_anchor_on_a_transaction_that_is_no_anchor_fails(chain: Chain, tmp_path: Path) -> None:
    m = _write(tmp_path / "ds")
    deploy = (await chain.net.chain.get_transactions(chain.root.address, limit=10))[-1]  # the deploy
    bogus = Anchor(network="sandbox", address=chain.root_raw, lt=deploy.lt, tx_hash=deploy.hash.hex())
    why = await check_anchor(chain.net, write_anchor(tmp_path / "ds", bogus))
    where = f"transaction lt {deploy.lt} on {chain.root_raw}"
    assert why == f"{where} is not an AnchorDataset (its message has an empty body)"
    assert write_anchor(tmp_path / "ds", None).anchor is None and m.anchor is None


async def test_every_other_way_an_anchor_fails_is_one_sentence(chain: Chain, tmp_path: Path) -> None:
    _write(tmp_path / "ds")
    a = await anchor_manifest(chain.net, chain.root.address, tmp_path / "ds")
    m = Dataset.open(tmp_path / "ds").manifest

    async def why(**change: object) -> str | None:
        return await check_anchor(chain.net, write_anchor(tmp_path / "ds", msgspec.structs.replace(a, **change)))

    assert await why(network="testnet") == "it is on testnet, not on sandbox"
    assert await why(tx_hash="00" * 32) == f"{a.address} has no transaction at lt {a.lt} with hash {'00' * 32}"
    assert await why(lt=a.lt + 1) == f"{a.address} has no transaction at lt {a.lt + 1} with hash {a.tx_hash}"
    assert await why(address="not an address") == "'not an address' is not a TON address"
    elsewhere = "0:" + "42" * 32
    assert await check_anchor(chain.net, m, root=elsewhere) == f"it is on {a.address}, not on Root {elsewhere}"
    assert await check_anchor(chain.net, write_anchor(tmp_path / "ds", None)) == (
        "the manifest has no anchor (anchor it with `cocoon dataset anchor`)")


async def test_too_little_value_is_refused_and_the_manifest_keeps_no_anchor(chain: Chain, tmp_path: Path) -> None:
    _write(tmp_path / "ds")
    with pytest.raises(ContractRefused) as info:
        await anchor_manifest(chain.net, chain.root.address, tmp_path / "ds", value=ANCHOR_FEE - 1)
    assert info.value.exit_code == ExitCode.ANCHOR_FEE
    assert "ANCHOR_FEE" in str(info.value)
    assert Dataset.open(tmp_path / "ds").manifest.anchor is None


async def test_an_address_that_is_no_root_gives_no_anchor(chain: Chain, tmp_path: Path) -> None:
    """A wallet takes any message and logs nothing: no anchor is written."""
    _write(tmp_path / "ds")
    wallet = WalletKey.localnet(1, global_id=chain.net.chain.global_id, with_secret=False).address
    with pytest.raises(DatasetError) as info:
        await anchor_manifest(chain.net, wallet, tmp_path / "ds")
    assert info.value.where == "anchor" and "logged no DatasetAnchored" in str(info.value)
    assert Dataset.open(tmp_path / "ds").manifest.anchor is None


async def test_a_dataset_that_does_not_verify_is_not_anchored(chain: Chain, tmp_path: Path) -> None:
    _write(tmp_path / "ds")
    _edit_manifest(tmp_path / "ds", lambda d: d["counts"].update(bytes=1), resign=None)
    with pytest.raises(DatasetError):
        await anchor_manifest(chain.net, chain.root.address, tmp_path / "ds")
    assert len(await chain.net.chain.get_transactions(chain.root.address, limit=10)) == 1  # the deploy only


def test_a_changed_manifest_is_not_given_the_anchor(tmp_path: Path) -> None:
    m = _write(tmp_path / "ds")
    a = Anchor(network="sandbox", address="0:" + "11" * 32, lt=5, tx_hash="22" * 32)
    _edit_manifest(tmp_path / "ds", lambda d: d["spec"].update(max_pages=1), resign=[V1])
    with pytest.raises(DatasetError, match="manifest changed"):
        write_anchor(tmp_path / "ds", a, digest=manifest_digest(m))
    assert Dataset.open(tmp_path / "ds").manifest.anchor is None

"""The worker's evidence at start: dev (declared, signed) and tdx (a quote from configfs-tsm,
here a folder laid out as configfs-tsm lays it out, holding a real quote)."""

from __future__ import annotations

from pathlib import Path

import pytest
from nacl.public import PrivateKey
from nacl.signing import SigningKey

from offchain.attestation import DevVerifier, decode_evidence, report_data_binding
from offchain.errors import ConfigError
from offchain.worker._evidence import make_evidence, tdx_quote

DATA = Path(__file__).resolve().parents[1] / "attestation" / "data"


def test_dev_evidence_binds_this_boots_keys_and_verifies() -> None:
    key, enc = SigningKey.generate(), PrivateKey.generate()
    image = bytes([3]) * 32
    ev = decode_evidence(make_evidence("dev", node_key=key, encryption_key=enc, image=image.hex()))
    assert ev.kind == "dev" and ev.encryption_key == bytes(enc.public_key)
    got = DevVerifier(allow_dev=True).verify(ev, node_key=bytes(key.verify_key), now=0, allowed_images={image})
    assert got.measurement == image


def test_tdx_evidence_asks_configfs_tsm_for_a_quote_over_the_binding(tmp_path: Path) -> None:
    key, enc = SigningKey.generate(), PrivateKey.generate()
    entry = tmp_path / "q1"
    entry.mkdir()
    quote = (DATA / "tdx_quote").read_bytes()
    (entry / "outblob").write_bytes(quote)  # what the TDX module would produce
    assert (
        tdx_quote(report_data_binding(bytes(key.verify_key), bytes(enc.public_key)), tsm=tmp_path, name="q1") == quote
    )
    assert (entry / "inblob").read_bytes() == report_data_binding(bytes(key.verify_key), bytes(enc.public_key))


def test_tdx_evidence_outside_a_td_fails_with_one_line(tmp_path: Path) -> None:
    key, enc = SigningKey.generate(), PrivateKey.generate()
    collateral = tmp_path / "pcs.json"
    collateral.write_text("{}")
    with pytest.raises(ConfigError, match="no TDX quote interface"):
        make_evidence(
            "tdx",
            node_key=key,
            encryption_key=enc,
            image=None,
            collateral_file=str(collateral),
            tsm=tmp_path / "absent",
        )
    with pytest.raises(ConfigError, match="collateral_file"):
        make_evidence("tdx", node_key=key, encryption_key=enc, image=None)
    with pytest.raises(ConfigError, match="use tdx or dev"):
        make_evidence("sgx", node_key=key, encryption_key=enc, image=None)

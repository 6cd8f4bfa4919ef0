"""What a worker shows to prove its environment: its attestation evidence, made at start.

- `tdx`: a real TD asks its TDX module for a quote through Linux's configfs-tsm interface
  (`/sys/kernel/config/tsm/report`, kernel 6.7+): write the 64-byte report data (the binding
  of this boot's node key and encryption key) to `inblob`, read the quote from `outblob`.
  Collateral is not fetched at run time: the operator supplies Intel PCS's collateral JSON
  for the platform (`collateral_file`), and it travels with the quote.
- `dev`: no hardware; the measurement is declared (`image`) and signed with the node key.
  Only accepted where Root allows dev attestation (localnet).

Not exercised here: `tdx_quote` on a real TD (no TDX machine); it is tested against a
directory laid out as configfs-tsm lays it out.
"""

from __future__ import annotations

import contextlib
import os
import uuid
from pathlib import Path

from nacl.public import PrivateKey
from nacl.signing import SigningKey

from offchain.attestation import Evidence, encode_evidence, make_dev_evidence, report_data_binding
from offchain.errors import ConfigError

__all__ = ["TSM_REPORT_DIR", "make_evidence", "tdx_quote"]

TSM_REPORT_DIR = Path("/sys/kernel/config/tsm/report")


def tdx_quote(report_data: bytes, *, tsm: Path = TSM_REPORT_DIR, name: str | None = None) -> bytes:
    """A TDX quote over `report_data` (64 bytes) from configfs-tsm (`name`: the report
    entry to create, unique by default).

    Raises:
        ConfigError: no configfs-tsm here (not a TD, or an older kernel), or it refused.
    """
    if len(report_data) != 64:
        raise ValueError("TDX report data is 64 bytes")
    if not tsm.is_dir():
        raise ConfigError(f"no TDX quote interface at {tsm}: is this a TDX guest with configfs-tsm (Linux 6.7+)?")
    entry = tsm / (name or f"cocoon-{os.getpid()}-{uuid.uuid4().hex[:8]}")
    try:
        entry.mkdir(exist_ok=True)
        (entry / "inblob").write_bytes(report_data)
        provider = entry / "provider"
        if provider.exists() and provider.read_text().strip() not in ("tdx_guest", ""):
            raise ConfigError(f"configfs-tsm provider is {provider.read_text().strip()!r}, not tdx_guest")
        quote = (entry / "outblob").read_bytes()
    except OSError as err:
        raise ConfigError(f"configfs-tsm refused the quote request: {err}") from err
    finally:
        with contextlib.suppress(OSError):  # configfs removes the entry; anything else keeps it
            entry.rmdir()
    if not quote:
        raise ConfigError("configfs-tsm returned an empty quote")
    return quote


def make_evidence(
    kind: str,
    *,
    node_key: SigningKey,
    encryption_key: PrivateKey,
    image: str | None,
    collateral_file: str | None = None,
    tsm: Path = TSM_REPORT_DIR,
) -> bytes:
    """The encoded evidence for this boot's keys (what the worker's Offer carries)."""
    enc = bytes(encryption_key.public_key)
    if kind == "dev":
        if not image:
            raise ConfigError("dev attestation declares a measurement: set `image` (hex)")
        return encode_evidence(make_dev_evidence(node_key, enc, bytes.fromhex(image)))
    if kind == "tdx":
        if not collateral_file:
            raise ConfigError("tdx attestation needs `collateral_file` (Intel PCS collateral JSON for this platform)")
        quote = tdx_quote(report_data_binding(bytes(node_key.verify_key), enc), tsm=tsm)
        return encode_evidence(
            Evidence(kind="tdx", quote=quote, encryption_key=enc, collateral=Path(collateral_file).read_bytes())
        )
    raise ConfigError(f"attestation = {kind!r}: use tdx or dev")

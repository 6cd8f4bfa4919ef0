"""Real Intel quotes and collateral (tests/attestation/data/README.md) and keys for them."""

from __future__ import annotations

from pathlib import Path

import pytest

DATA = Path(__file__).resolve().parent / "data"

TDX_NOW = 1751328000  # 2025-07-01T00:00:00Z, inside the TDX collateral's window
TDX_WINDOW = (1750329147, 1752919234)  # first and last second at which tdx_quote verifies
OUTDATED_NOW = 1772323200  # 2026-03-01T00:00:00Z, inside the outdated collateral's window
TDX_FMSPC = bytes.fromhex("B0C06F000000")

# TD report offsets in the quote file: 48-byte header, then the TD10 report.
OFF_TD_ATTRIBUTES = 48 + 120  # td_attributes[0]: bit 0 is DEBUG
OFF_MR_TD = 48 + 136  # 184
OFF_REPORT_DATA = 48 + 520  # 568, 64 bytes to 632 (end of the signed body)
# After the body: u32 signature data length (632), ECDSA signature of the body (636..700),
# attestation public key (700..764), cert data type u16 + size u32 (764..770), QE report
# (770..1154), the PCK key's signature over the QE report (1154..1218).
OFF_BODY_SIGNATURE = 636
OFF_QE_REPORT_SIGNATURE = 1154

NODE_KEY = bytes(range(32))
ENCRYPTION_KEY = bytes(range(32, 64))


def read(name: str) -> bytes:
    return (DATA / name).read_bytes()


def flip(data: bytes, offset: int, mask: int = 0x01) -> bytes:
    b = bytearray(data)
    b[offset] ^= mask
    return bytes(b)


@pytest.fixture(scope="session")
def tdx_quote() -> bytes:
    return read("tdx_quote")


@pytest.fixture(scope="session")
def tdx_collateral() -> bytes:
    return read("tdx_quote_collateral.json")


@pytest.fixture(scope="session")
def tdx_report_data(tdx_quote: bytes) -> bytes:
    return tdx_quote[OFF_REPORT_DATA : OFF_REPORT_DATA + 64]

"""Vouchers: the fast digest is the Voucher cell's hash, signatures check, and a voucher
signed for one channel is worth nothing on another."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from nacl.signing import SigningKey
from pytoniq_core import Address

from offchain.errors import InvalidSignature
from offchain.protocol.voucher import SignedVoucher, sign_voucher, verify_voucher, voucher_digest
from wrappers.messages import Voucher

MAX_COINS = 2**120 - 1

channels = st.builds(lambda wc, h: Address((wc, h)), st.sampled_from([0, -1]), st.binary(min_size=32, max_size=32))
# edges of the coins encoding (byte-length boundaries) weigh as much as uniform draws
amounts = st.one_of(
    st.integers(0, MAX_COINS),
    st.sampled_from([0, 1, 255, 256, 2**64 - 1, 2**64, MAX_COINS]),
    st.integers(0, 120).map(lambda b: 2**b - 1),
)
KEY = SigningKey(b"\x11" * 32)


@settings(max_examples=300, deadline=None)
@given(channel=channels, compute=amounts, data=amounts)
def test_voucher_digest_equals_voucher_cell_hash(channel: Address, compute: int, data: int) -> None:
    assert voucher_digest(channel, compute, data) == Voucher(channel=channel, compute=compute, data=data).to_cell().hash


@pytest.mark.parametrize(("compute", "data"), [(2**120, 0), (0, 2**120), (-1, 0), (0, -1)])
def test_voucher_digest_amount_out_of_coins_range_is_refused(compute: int, data: int) -> None:
    with pytest.raises(ValueError, match="coins"):
        voucher_digest(Address((0, b"\x00" * 32)), compute, data)


@settings(max_examples=50, deadline=None)
@given(channel=channels, compute=amounts, data=amounts)
def test_verify_signed_voucher_is_accepted(channel: Address, compute: int, data: int) -> None:
    v = sign_voucher(KEY, channel, compute=compute, data=data)
    assert v.total == compute + data
    assert v.message_hash() == voucher_digest(channel, compute, data)
    verify_voucher(v, bytes(KEY.verify_key))


def test_verify_voucher_for_another_channel_is_rejected() -> None:
    mine, other = Address((0, b"\x01" * 32)), Address((0, b"\x02" * 32))
    v = sign_voucher(KEY, other, compute=100, data=5)
    moved = SignedVoucher(mine, v.compute, v.data, v.signature)
    with pytest.raises(InvalidSignature):
        verify_voucher(moved, bytes(KEY.verify_key))


def test_verify_voucher_same_hash_other_workchain_is_rejected() -> None:
    base = sign_voucher(KEY, Address((0, b"\x05" * 32)), compute=1, data=0)
    moved = SignedVoucher(Address((-1, b"\x05" * 32)), 1, 0, base.signature)
    with pytest.raises(InvalidSignature):
        verify_voucher(moved, bytes(KEY.verify_key))


@pytest.mark.parametrize(
    "change",
    [
        pytest.param({"compute": 101}, id="compute"),
        pytest.param({"data": 6}, id="data"),
        pytest.param({"signature": bytes(64)}, id="signature"),
    ],
)
def test_verify_tampered_voucher_is_rejected(change: dict[str, object]) -> None:
    v = sign_voucher(KEY, Address((0, b"\x01" * 32)), compute=100, data=5)
    fields = {"channel": v.channel, "compute": v.compute, "data": v.data, "signature": v.signature, **change}
    with pytest.raises(InvalidSignature):
        verify_voucher(SignedVoucher(**fields), bytes(KEY.verify_key))  # type: ignore[arg-type]


def test_verify_voucher_other_key_is_rejected() -> None:
    v = sign_voucher(KEY, Address((0, b"\x01" * 32)), compute=1, data=1)
    with pytest.raises(InvalidSignature):
        verify_voucher(v, bytes(SigningKey(b"\x22" * 32).verify_key))


def test_sign_voucher_negative_total_is_refused() -> None:
    with pytest.raises(ValueError):
        sign_voucher(KEY, Address((0, b"\x01" * 32)), compute=-1, data=0)

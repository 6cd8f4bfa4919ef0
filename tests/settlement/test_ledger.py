"""The router's ledger frame: signed over its rows in any order, refused under another key."""

from __future__ import annotations

import msgspec
import pytest
from nacl.signing import SigningKey

from offchain.protocol import wire
from offchain.settlement import SettlementError, ledger_of, settle, sign_ledger
from tests.settlement.helpers import USAGE_EPOCH, addr, crawl, gpu, inputs, relay


def test_a_signed_ledger_comes_back_as_the_router_ledger_settle_reads() -> None:
    key = SigningKey.generate()
    rows = [relay(addr("b0"), 10, 100), gpu(addr("g0"), 3, 3000), crawl(addr("v0"), 2, 20)]
    store_rows = [tuple(msgspec.structs.astuple(r)) for r in rows]  # the router store's tuples
    frame = sign_ledger(key, 5, epoch=USAGE_EPOCH, router=addr("router"), provider=addr("router-p"), rows=store_rows)
    frame = wire.decode(wire.encode(frame))  # over the wire
    got = ledger_of(frame, bytes(key.verify_key))
    assert got.router == addr("router") and got.provider == addr("router-p") and got.epoch == USAGE_EPOCH
    assert sorted(got.rows, key=lambda r: r.provider) == sorted(rows, key=lambda r: r.provider)
    result = settle(inputs([got], compute=3000, data=120))
    assert result.refused == [] and result.tree.root_total > 0


def test_a_ledger_under_another_key_or_altered_is_refused() -> None:
    key = SigningKey.generate()
    frame = sign_ledger(key, 1, epoch=7, router=addr("r"), provider=addr("rp"), rows=[gpu(addr("g"), 1, 10, epoch=7)])
    with pytest.raises(SettlementError, match="not signed by the router"):
        ledger_of(frame, bytes(SigningKey.generate().verify_key))
    inflated = msgspec.structs.replace(frame, rows=[msgspec.structs.replace(frame.rows[0], earned=10**9)])
    with pytest.raises(SettlementError):
        ledger_of(inflated, bytes(key.verify_key))
    with pytest.raises(ValueError, match="epoch 8"):
        sign_ledger(key, 1, epoch=7, router=addr("r"), provider=addr("rp"), rows=[gpu(addr("g"), 1, 10, epoch=8)])

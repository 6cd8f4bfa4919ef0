"""A router's usage ledger on the mesh: the `Ledger` frame signed by the router's node key,
and back to the `RouterLedger` settlement reads.

    frame = sign_ledger(key, request_id, epoch=e, router=wallet, provider=router_p, rows=store.usage(e))
    ledger = ledger_of(frame, router_key)   # SettlementError unless the router's key signed it
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from nacl.exceptions import BadSignatureError
from nacl.signing import SigningKey, VerifyKey

from offchain.protocol.wire import Ledger, LedgerRow, ledger_digest, wire_address
from offchain.settlement._inputs import RouterLedger, SettlementError, UsageRow

__all__ = ["ledger_of", "sign_ledger"]


def sign_ledger(
    key: SigningKey, request_id: int, *, epoch: int, router: str, provider: str, rows: Iterable[Any]
) -> Ledger:
    """The `Ledger` frame of `rows` (the router store's `usage(epoch)` tuples, or UsageRows),
    every row of `epoch`, signed by the router's node key."""
    out = []
    for r in rows:
        row = r if isinstance(r, UsageRow) else UsageRow.of(r)
        if row.epoch != epoch:
            raise ValueError(f"a usage row of epoch {row.epoch} in the ledger of epoch {epoch}")
        out.append(
            LedgerRow(
                provider=wire_address(row.provider), model=row.model, units=row.units, requests=row.requests,
                failures=row.failures, latency_ms=row.latency_ms, earned=row.earned,
            )
        )
    out.sort(key=lambda x: (x.provider, x.model))
    router, provider = wire_address(router), wire_address(provider)
    digest = ledger_digest(epoch=epoch, router=router, provider=provider, rows=out)
    return Ledger(
        id=request_id, epoch=epoch, router=router, provider=provider, rows=out, signature=key.sign(digest).signature
    )


def ledger_of(frame: Ledger, router_key: bytes) -> RouterLedger:
    """The settlement's view of a `Ledger` frame that `router_key` signed.

    Raises:
        SettlementError: the signature is not the router's.
    """
    digest = ledger_digest(epoch=frame.epoch, router=frame.router, provider=frame.provider, rows=frame.rows)
    try:
        VerifyKey(router_key).verify(digest, frame.signature)
    except (BadSignatureError, ValueError) as err:
        raise SettlementError(f"the ledger of epoch {frame.epoch} is not signed by the router's node key") from err
    rows = [
        UsageRow(frame.epoch, r.provider, r.model, r.units, r.requests, r.failures, r.latency_ms, r.earned)
        for r in frame.rows
    ]
    return RouterLedger(router=frame.router, provider=frame.provider, epoch=frame.epoch, rows=rows)

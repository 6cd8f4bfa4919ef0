"""Builders for settlement tests: addresses from tags, rows, ledgers, inputs."""

from __future__ import annotations

import hashlib
from typing import Any

from pytoniq_core import Address

from offchain.models import model_hash
from offchain.settlement import EpochInputs, Redeemed, RouterLedger, UsageRow
from wrappers.messages import ComputeSplit, DataSplit
from wrappers.reward_pool import ZERO_ROLES

SPLIT_C = ComputeSplit(gpu=7000, router=1500, validator=1000, protocol=500)
SPLIT_D = DataSplit(bandwidth=7000, router=1500, validator=1000, protocol=500)
USAGE_EPOCH = 486_111
MODEL = "all-MiniLM-L6-v2"
MODEL_HASH = model_hash(MODEL).hex()  # what Root allowlists for it (the model file's hash)


def addr(tag: str) -> str:
    """A raw address made from `tag` (workchain 0)."""
    return f"0:{hashlib.sha256(tag.encode()).hexdigest()}"


def friendly(raw: str) -> str:
    return Address(raw).to_str()


POOL = addr("pool")


def gpu(provider: str, units: int, earned: int, *, model: str = MODEL, epoch: int = USAGE_EPOCH, **kw: int) -> UsageRow:
    return UsageRow(epoch, provider, model, units=units, requests=kw.pop("requests", 1), earned=earned, **kw)


def relay(provider: str, units: int, earned: int, *, epoch: int = USAGE_EPOCH, **kw: int) -> UsageRow:
    return UsageRow(epoch, provider, "relay", units=units, requests=kw.pop("requests", 1), earned=earned, **kw)


def crawl(validator: str, pages: int, earned: int, *, epoch: int = USAGE_EPOCH) -> UsageRow:
    return UsageRow(epoch, validator, "crawl", units=pages, requests=1, earned=earned)


def ledger(router: str, rows: list[UsageRow], *, provider: str | None = None, epoch: int = USAGE_EPOCH) -> RouterLedger:
    return RouterLedger(router=router, provider=provider or addr(f"{router}-provider"), epoch=epoch, rows=rows)


def redeemed_for(*ledgers: RouterLedger, extra: int = 0) -> dict[str, Redeemed]:
    """Exactly what each ledger's rows earned (plus `extra`), as redeemed on chain."""
    out = {}
    for g in ledgers:
        c = sum(r.earned for r in g.rows if r.model not in ("relay", "crawl"))
        d = sum(r.earned for r in g.rows if r.model in ("relay", "crawl"))
        out[g.router] = Redeemed(compute=c + extra, data=d + extra)
    return out


def inputs(
    ledgers: list[RouterLedger],
    *,
    compute: int,
    data: int,
    epoch: int = 1,
    redeemed: dict[str, Redeemed] | None = None,
    **kw: Any,
) -> EpochInputs:
    fields: dict[str, Any] = {"role_totals": ZERO_ROLES, "carries": ZERO_ROLES}
    fields.update(kw)
    return EpochInputs(
        epoch=epoch,
        pool=fields.pop("pool", POOL),
        usage_epoch=fields.pop("usage_epoch", USAGE_EPOCH),
        compute_pot=compute,
        data_pot=data,
        compute_split=fields.pop("compute_split", SPLIT_C),
        data_split=fields.pop("data_split", SPLIT_D),
        ledgers=ledgers,
        redeemed=redeemed_for(*ledgers) if redeemed is None else redeemed,
        **fields,
    )

"""What one epoch's settlement reads: `EpochInputs` and its parts, in one canonical JSON form.

Every address is kept in the raw `wc:hex` form; `canonical_inputs` normalizes the
addresses and sorts every list and map, so two validators holding the same facts in any
order encode them to the same bytes (`encode_inputs`) and the same digest.
"""

from __future__ import annotations

import hashlib
from typing import Any

import msgspec
from pytoniq_core import Address

from offchain.errors import CocoonError
from wrappers.messages import ComputeSplit, DataSplit
from wrappers.reward_pool import RoleAmounts

__all__ = [
    "CRAWL_MODEL",
    "FULL_REPUTATION_PPM",
    "RELAY_MODEL",
    "ROLE_NAMES",
    "Cumulative",
    "EpochInputs",
    "Redeemed",
    "RouterLedger",
    "SettlementError",
    "UsageRow",
    "canonical_inputs",
    "decode_inputs",
    "encode_inputs",
    "inputs_digest",
    "raw_address",
    "reputation_ppm",
]

RELAY_MODEL = "relay"  # a data node's relayed bytes: units are data units (KiB)
CRAWL_MODEL = "crawl"  # a validator's crawled pages: units are pages
FULL_REPUTATION_PPM = 1_000_000  # reputation 1.0 in parts per million
ROLE_NAMES = ("gpu", "bandwidth", "router", "validator")  # by Role number


class SettlementError(CocoonError):
    """The settlement's inputs are not whole (a bad split table, totals that do not match
    the pool's books, a malformed address outside a ledger), or a published epoch does not
    verify. A router's bad ledger is not an error: `settle` refuses it and says why."""


def raw_address(text: str) -> str:
    """`text` (raw or user-friendly) as the raw `wc:hex` form; ValueError if it is none."""
    if not isinstance(text, str):
        raise ValueError(f"{text!r} is not an address")
    try:
        a = Address(text)
    except Exception as err:  # pytoniq-core's own error types
        raise ValueError(f"{text!r} is not an address") from err
    return f"{a.wc}:{a.hash_part.hex()}"


def reputation_ppm(score: float) -> int:
    """A spot-check reputation in 0..1 as the integer weight settlement uses (0..10^6)."""
    if score != score:  # NaN
        return 0
    return max(0, min(FULL_REPUTATION_PPM, round(score * FULL_REPUTATION_PPM)))


class UsageRow(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """One row of a router's `usage` table (offchain/router/_store.py): per epoch, provider
    and model. `model` 'relay' rows are a data node's bytes (units = data units), 'crawl'
    rows a validator's pages (units = pages, `provider` its wallet), any other model a gpu
    worker's compute units; `earned` is what clients were charged for it, in nanoTON."""

    epoch: int
    provider: str
    model: str
    units: int = 0
    requests: int = 0
    failures: int = 0
    latency_ms: int = 0
    earned: int = 0

    @classmethod
    def of(cls, row: Any) -> UsageRow:
        """From the router store's tuple (epoch, provider, model, units, requests, failures,
        latency_ms, earned)."""
        return cls(*row)


class RouterLedger(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """A router's usage ledger for one usage epoch.

    `router` is the router's wallet (its channels' router: what VoucherRedeemed names);
    `provider` its ROUTER Provider contract (the leaf its share of routing goes to);
    `epoch` the routers' own epoch number (clock // epoch_seconds) the rows belong to."""

    router: str
    provider: str
    epoch: int
    rows: list[UsageRow] = msgspec.field(default_factory=list)


class Redeemed(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """What a router's channels paid into the pool in the epoch (the sum of its
    VoucherRedeemed events' `compute` / `data`)."""

    compute: int = 0
    data: int = 0


class Cumulative(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """A provider's cumulative total for a role: its leaf in the adopted tree."""

    provider: str
    role: int
    total: int


class EpochInputs(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Everything one epoch's settlement depends on (and nothing else).

    - `epoch`: the report's epoch number, the pool's `epoch` + 1 (the pool takes only that).
    - `pool`: the RewardPool's address.
    - `usage_epoch`: the routers' epoch whose ledgers are settled (their rows' `epoch`).
    - `compute_pot` / `data_pot`: the pool's pots (get_pool_data) as read at the epoch's
      close: the most the report may consume (the pool asks consumed <= pot). What it
      consumes is what the ledgers earned (`settle`); the rest waits for later ledgers.
    - `compute_split` / `data_split`: the split tables the pool checks against: its synced
      copy of Root's (get_pool_config), not Root's own if a newer one was not pushed yet.
    - `role_totals` / `carries`: the pool's per-role books (get_pool_roles): the adopted
      tree's role sums and what each role was allocated and not yet put into its subtree.
    - `previous`: the adopted tree's leaves; per role they sum to `role_totals`.
    - `ledgers`: the routers' usage ledgers as fetched; `redeemed`: per router wallet, the
      VoucherRedeemed totals of the epoch on chain (a ledger may not claim more).
    - `reputations`: spot-check reputations per gpu / bandwidth Provider in parts per
      million (`reputation_ppm`); a Provider not named has `default_reputation_ppm`.
    - `verifications`: per VALIDATOR Provider, verifications done outside the ledgers
      (probes, spot checks), counted with its crawled pages.
    - `validator_providers`: validator wallet -> its VALIDATOR Provider (crawl rows and
      `verifications` may name the wallet; a name not in this map is taken as the Provider).
    - `model_hashes`: the models Root allows (hex sha256 of the model name); a gpu row of a
      model not in it is an unknown model. None: gpu model names are not checked.
    """

    epoch: int
    pool: str
    usage_epoch: int
    compute_pot: int
    data_pot: int
    compute_split: ComputeSplit
    data_split: DataSplit
    role_totals: RoleAmounts
    carries: RoleAmounts
    previous: list[Cumulative] = msgspec.field(default_factory=list)
    ledgers: list[RouterLedger] = msgspec.field(default_factory=list)
    redeemed: dict[str, Redeemed] = msgspec.field(default_factory=dict)
    reputations: dict[str, int] = msgspec.field(default_factory=dict)
    default_reputation_ppm: int = FULL_REPUTATION_PPM
    verifications: dict[str, int] = msgspec.field(default_factory=dict)
    validator_providers: dict[str, str] = msgspec.field(default_factory=dict)
    model_hashes: list[str] | None = None


def _raw_or_fail(text: Any, what: str) -> str:
    try:
        return raw_address(text)
    except ValueError as err:
        raise SettlementError(f"{what}: {err}") from err


def _raw_or_keep(text: Any) -> Any:
    """A ledger's addresses: normalized when they parse, else kept for check_ledger to name."""
    try:
        return raw_address(text)
    except ValueError:
        return text


def _map(d: dict[str, Any], what: str, value: Any = None) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in d.items():
        key = _raw_or_fail(k, f"{what} key")
        if key in out:
            raise SettlementError(f"{what}: {key} is named twice")
        out[key] = value(v) if value else v
    return dict(sorted(out.items()))


def _sort_key(x: Any) -> bytes:
    return msgspec.json.encode(x)


def canonical_inputs(inputs: EpochInputs) -> EpochInputs:
    """The same inputs with every address raw and every list and map in a fixed order.

    Raises:
        SettlementError: an address outside a ledger does not parse, or two names of a map
            are the same address.
    """
    ledgers = []
    for ledger in inputs.ledgers:
        rows = [msgspec.structs.replace(r, provider=_raw_or_keep(r.provider)) for r in ledger.rows]
        rows.sort(key=lambda r: (str(r.provider), str(r.model), _sort_key(r)))
        ledgers.append(
            msgspec.structs.replace(
                ledger, router=_raw_or_keep(ledger.router), provider=_raw_or_keep(ledger.provider), rows=rows
            )
        )
    ledgers.sort(key=lambda g: (str(g.router), str(g.provider), _sort_key(g)))
    previous = [
        msgspec.structs.replace(c, provider=_raw_or_fail(c.provider, "previous cumulative total"))
        for c in inputs.previous
    ]
    previous.sort(key=lambda c: (c.role, c.provider, _sort_key(c)))
    hashes = None
    if inputs.model_hashes is not None:
        hashes = sorted({h.lower() for h in inputs.model_hashes})
    return msgspec.structs.replace(
        inputs,
        pool=_raw_or_fail(inputs.pool, "pool"),
        previous=previous,
        ledgers=ledgers,
        redeemed=_map(inputs.redeemed, "redeemed"),
        reputations=_map(inputs.reputations, "reputations"),
        verifications=_map(inputs.verifications, "verifications"),
        validator_providers=_map(
            inputs.validator_providers, "validator_providers", lambda v: _raw_or_fail(v, "validator_providers value")
        ),
        model_hashes=hashes,
    )


def encode_inputs(inputs: EpochInputs) -> bytes:
    """The canonical bytes of `inputs` (compact JSON of `canonical_inputs`)."""
    return msgspec.json.encode(canonical_inputs(inputs), order="deterministic")


def inputs_digest(inputs: EpochInputs) -> bytes:
    """sha256 of `encode_inputs(inputs)`."""
    return hashlib.sha256(encode_inputs(inputs)).digest()


def decode_inputs(data: bytes | str) -> EpochInputs:
    """Read inputs.json (any field order, any list order); msgspec.ValidationError /
    DecodeError if it is not EpochInputs."""
    return msgspec.json.decode(data, type=EpochInputs)

"""Money units of the mesh, defined once (DESIGN.md, "Money units").

Prices come from Root: `compute_unit_price` and `data_unit_price`, in nanoTON per unit.
One compute unit is one input token (embeddings) or one generated token; one data unit is
one KiB relayed through a data node, both directions counted; a crawled page also costs
`PAGE_DATA_UNITS` data units (the validator's fetch, extraction and signature). A worker scales Root's
compute price by its announced coefficient (Cocoon's `worker_coefficient`): 1000 is 1.0x.

Every price is rounded *up* to a whole nanoTON, so that the sum of what a router charges
is never below what the units are worth; the rounding is at most 1 nanoTON a request.
"""

from __future__ import annotations

__all__ = [
    "COEFFICIENT_ONE",
    "DATA_UNIT_BYTES",
    "MAX_COEFFICIENT",
    "PAGE_DATA_UNITS",
    "compute_price",
    "data_price",
    "data_units",
    "page_price",
]

COEFFICIENT_ONE = 1000
"""A worker coefficient of 1000 charges exactly Root's compute price."""

MAX_COEFFICIENT = 1_000_000
"""The largest coefficient a worker may announce (1000x Root's price): bounds every price."""

DATA_UNIT_BYTES = 1024
"""One data unit: a KiB relayed (both directions counted)."""

PAGE_DATA_UNITS = 16
"""What one page delivered in a crawl costs on top of its bytes, in data units."""


def compute_price(units: int, unit_price: int, coefficient: int = COEFFICIENT_ONE) -> int:
    """nanoTON for `units` compute units at Root's `unit_price` scaled by `coefficient`/1000.

    Raises:
        ValueError: a negative amount or a coefficient outside 1..MAX_COEFFICIENT.
    """
    if units < 0 or unit_price < 0:
        raise ValueError("units and unit price are non-negative")
    if not 1 <= coefficient <= MAX_COEFFICIENT:
        raise ValueError(f"coefficient {coefficient} is outside 1..{MAX_COEFFICIENT}")
    return -(-units * unit_price * coefficient // COEFFICIENT_ONE)


def data_units(nbytes: int) -> int:
    """Data units for `nbytes` relayed (a started KiB counts whole)."""
    if nbytes < 0:
        raise ValueError("byte count is non-negative")
    return -(-nbytes // DATA_UNIT_BYTES)


def data_price(nbytes: int, unit_price: int) -> int:
    """nanoTON for relaying `nbytes` at Root's data unit price."""
    return data_units(nbytes) * unit_price


def page_price(unit_price: int) -> int:
    """nanoTON for one crawled page delivered (besides its bytes), at Root's data unit price."""
    if unit_price < 0:
        raise ValueError("unit price is non-negative")
    return PAGE_DATA_UNITS * unit_price

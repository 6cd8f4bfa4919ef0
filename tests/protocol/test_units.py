"""Money units: prices round up to whole nanoTON and scale by the worker's coefficient."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from offchain.protocol.units import (
    COEFFICIENT_ONE,
    DATA_UNIT_BYTES,
    MAX_COEFFICIENT,
    compute_price,
    data_price,
    data_units,
)


def test_compute_price_at_coefficient_one_is_exact() -> None:
    assert compute_price(12, 100) == 1200
    assert compute_price(12, 100, COEFFICIENT_ONE) == 1200


@pytest.mark.parametrize(
    ("units", "price", "coefficient", "expected"),
    [
        (1, 1, 1, 1),  # 0.001 rounds up to 1
        (1, 1, 1001, 2),  # 1.001
        (3, 1, 333, 1),  # 0.999
        (3, 1, 334, 2),  # 1.002
        (10, 7, 1500, 105),  # exact
        (0, 100, 1000, 0),
        (5, 0, 2000, 0),
        (1, 1, MAX_COEFFICIENT, 1000),
    ],
)
def test_compute_price_with_coefficient_rounds_up(units: int, price: int, coefficient: int, expected: int) -> None:
    assert compute_price(units, price, coefficient) == expected


@given(units=st.integers(0, 10**9), price=st.integers(0, 10**9), coefficient=st.integers(1, MAX_COEFFICIENT))
def test_compute_price_is_the_ceiling_of_the_scaled_price(units: int, price: int, coefficient: int) -> None:
    p = compute_price(units, price, coefficient)
    exact = units * price * coefficient
    assert p * COEFFICIENT_ONE >= exact
    assert (p - 1) * COEFFICIENT_ONE < exact or p == 0


@given(units=st.integers(0, 10**6), price=st.integers(0, 10**6), c=st.integers(1, MAX_COEFFICIENT - 1))
def test_compute_price_grows_with_coefficient(units: int, price: int, c: int) -> None:
    assert compute_price(units, price, c) <= compute_price(units, price, c + 1)


@pytest.mark.parametrize("coefficient", [0, -1, MAX_COEFFICIENT + 1])
def test_compute_price_bad_coefficient_is_refused(coefficient: int) -> None:
    with pytest.raises(ValueError, match="coefficient"):
        compute_price(1, 1, coefficient)


@pytest.mark.parametrize(("units", "price"), [(-1, 1), (1, -1)])
def test_compute_price_negative_amount_is_refused(units: int, price: int) -> None:
    with pytest.raises(ValueError):
        compute_price(units, price)


@pytest.mark.parametrize(
    ("nbytes", "units"),
    [(0, 0), (1, 1), (DATA_UNIT_BYTES - 1, 1), (DATA_UNIT_BYTES, 1), (DATA_UNIT_BYTES + 1, 2), (10 * 1024, 10)],
)
def test_data_units_started_kib_counts_whole(nbytes: int, units: int) -> None:
    assert data_units(nbytes) == units
    assert data_price(nbytes, 7) == 7 * units


def test_data_units_negative_bytes_is_refused() -> None:
    with pytest.raises(ValueError):
        data_units(-1)

"""The router's sans-I/O core: an Account's money invariants and the choice of a worker.

No sockets, no store: `Account` is driven with signed vouchers directly, and a hypothesis
state machine runs random sequences of admit / settle / release / redeem against it.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule
from nacl.signing import SigningKey
from pytoniq_core import Address

from offchain.errors import RequestFailed
from offchain.protocol.voucher import SignedVoucher, sign_voucher
from offchain.protocol.wire import ErrorCode
from offchain.router._core import Account, Reservation, WorkerState, choose_worker

KEY = SigningKey(b"\x07" * 32)
OTHER_KEY = SigningKey(b"\x08" * 32)
CHANNEL = Address((0, b"\x0c" * 32))
OTHER_CHANNEL = Address((0, b"\x0d" * 32))
DEPOSIT = 10_000


def account(deposit: int = DEPOSIT) -> Account:
    return Account(channel=CHANNEL, client_key=bytes(KEY.verify_key), deposit=deposit)


def voucher(compute: int, data: int = 0, *, key: SigningKey = KEY, channel: Address = CHANNEL) -> SignedVoucher:
    return sign_voucher(key, channel, compute=compute, data=data)


def snapshot(a: Account) -> dict[str, Any]:
    d = dataclasses.asdict(a)
    d["pending"] = list(a.pending)
    return d


def refused(a: Account, v: SignedVoucher, code: ErrorCode, *, compute: int, data: int = 0) -> None:
    """Assert that admitting `v` fails with `code` and leaves `a` exactly as it was."""
    before = snapshot(a)
    with pytest.raises(RequestFailed) as err:
        a.admit(v, compute=compute, data=data)
    assert err.value.code == code
    assert snapshot(a) == before


# ---- admit --------------------------------------------------------------------------------
def test_admit_first_voucher_is_new_and_reserves() -> None:
    a = account()
    v = voucher(100)
    r, new = a.admit(v, compute=100)
    assert new
    assert r == Reservation(a.address, 100, 0)
    assert (a.reserved_compute, a.reserved_data) == (100, 0)
    assert a.latest == v
    assert a.pending == [v]
    assert a.redeemable is None
    assert a.in_flight


def test_admit_lower_voucher_is_stale() -> None:
    a = account()
    r, _ = a.admit(voucher(100, 10), compute=100, data=10)
    a.settle(r, compute=100, data=10)
    refused(a, voucher(90, 10), ErrorCode.VOUCHER_STALE, compute=0)
    refused(a, voucher(200, 9), ErrorCode.VOUCHER_STALE, compute=0)  # one component lower


def test_admit_equal_totals_other_signature_is_stale() -> None:
    a = account()
    a.admit(voucher(100), compute=10)
    forged = SignedVoucher(CHANNEL, 100, 0, bytes(64))
    refused(a, forged, ErrorCode.VOUCHER_STALE, compute=0)


def test_admit_forged_signature_is_refused() -> None:
    a = account()
    refused(a, voucher(100, key=OTHER_KEY), ErrorCode.VOUCHER_BAD_SIGNATURE, compute=10)
    a.admit(voucher(100), compute=10)
    refused(a, SignedVoucher(CHANNEL, 200, 0, voucher(100).signature), ErrorCode.VOUCHER_BAD_SIGNATURE, compute=10)


def test_admit_voucher_for_another_channel_is_refused() -> None:
    a = account()
    refused(a, voucher(100, channel=OTHER_CHANNEL), ErrorCode.VOUCHER_BAD_SIGNATURE, compute=10)


def test_admit_over_deposit_is_refused() -> None:
    a = account(deposit=1000)
    refused(a, voucher(900, 101), ErrorCode.VOUCHER_OVER_DEPOSIT, compute=10)
    r, _ = a.admit(voucher(900, 100), compute=900, data=100)  # exactly the deposit is fine
    assert r.compute == 900


def test_admit_underpaid_counts_charged_reserved_and_request() -> None:
    a = account()
    r1, _ = a.admit(voucher(100), compute=100)
    a.settle(r1, compute=60)  # charged 60, credit 40
    a.admit(voucher(100), compute=30)  # reserved 30: 60 + 30 <= 100
    refused(a, voucher(100), ErrorCode.VOUCHER_UNDERPAID, compute=11)  # 60 + 30 + 11 > 100
    refused(a, voucher(190), ErrorCode.VOUCHER_UNDERPAID, compute=101)  # new but short by 1
    r, new = a.admit(voucher(191), compute=101)
    assert new and r.compute == 101


def test_admit_underpaid_data_is_checked_on_its_own() -> None:
    a = account()
    refused(a, voucher(1000, 4), ErrorCode.VOUCHER_UNDERPAID, compute=10, data=5)  # compute credit is no help


def test_admit_same_voucher_is_accepted_while_it_covers() -> None:
    a = account()
    v = voucher(100)
    a.admit(v, compute=50)
    r2, new = a.admit(v, compute=50)
    assert not new
    assert a.pending == [v]
    assert a.reserved_compute == 100
    refused(a, v, ErrorCode.VOUCHER_UNDERPAID, compute=1)
    a.release(r2)
    _, new = a.admit(v, compute=1)  # covers again once the reservation is gone
    assert not new


def test_admit_negative_request_is_refused() -> None:
    a = account()
    before = snapshot(a)
    with pytest.raises(ValueError):
        a.admit(voucher(100), compute=-1)
    assert snapshot(a) == before


# ---- settle / release / redeemable ----------------------------------------------------------
def test_settle_charges_at_most_the_reservation() -> None:
    a = account()
    r, _ = a.admit(voucher(100), compute=100)
    before = snapshot(a)
    for charge in (101, -1):
        with pytest.raises(ValueError):
            a.settle(r, compute=charge)
        assert snapshot(a) == before
    assert a.settle(r, compute=100)
    assert (a.charged_compute, a.reserved_compute) == (100, 0)


def test_settle_below_reservation_leaves_credit_unredeemable() -> None:
    a = account()
    v = voucher(100)
    r, _ = a.admit(v, compute=100)
    moved = a.settle(r, compute=40)
    assert not moved
    assert a.charged_compute == 40
    assert a.redeemable is None  # 100 > 40 charged: not earned
    assert a.unredeemed == 0
    assert not a.in_flight


def test_release_charges_nothing_and_voucher_is_not_redeemable() -> None:
    a = account()
    r, _ = a.admit(voucher(100), compute=100)
    a.release(r)
    assert (a.charged_compute, a.charged_data, a.reserved_compute) == (0, 0, 0)
    assert a.redeemable is None
    assert a.unredeemed == 0
    assert not a.in_flight


def test_release_twice_is_refused() -> None:
    a = account()
    r, _ = a.admit(voucher(100), compute=100)
    a.release(r)
    with pytest.raises(ValueError):
        a.release(r)
    assert a.reserved_compute == 0


def test_redeemable_is_the_newest_voucher_within_charged() -> None:
    a = account()
    v1, v2, v3 = voucher(100), voucher(200), voucher(300)
    r1, _ = a.admit(v1, compute=100)
    r2, _ = a.admit(v2, compute=100)
    r3, _ = a.admit(v3, compute=100)
    assert a.pending == [v1, v2, v3]
    assert a.settle(r1, compute=100) and a.redeemable == v1
    assert a.settle(r2, compute=100) and a.redeemable == v2
    assert a.unredeemed == 200
    a.redeemed_compute = 200
    assert a.unredeemed == 0
    assert not a.settle(r3, compute=99)  # 299 < 300: v3 is not earned
    assert a.redeemable == v2
    assert a.pending == [v3]


def test_redeemable_skips_to_the_newest_earned() -> None:
    a = account()
    vs = [voucher(10 * i) for i in range(1, 6)]
    rs = [a.admit(v, compute=10)[0] for v in vs]
    for r in rs[:-1]:
        a.release(r)
    big, _ = a.admit(vs[-1], compute=40)
    a.release(rs[-1])
    a.settle(big, compute=40)  # charged 40: v1..v4 earned, v4 newest
    assert a.redeemable == vs[3]
    assert a.pending == [vs[4]]


# ---- random sequences ----------------------------------------------------------------------
class AccountMachine(RuleBasedStateMachine):
    """Random admit / settle / release / redeem; the money invariants hold after each step."""

    def __init__(self) -> None:
        super().__init__()
        self.deposit = 2_000
        self.a = account(self.deposit)
        self.flight: list[Reservation] = []
        self.accepted: list[SignedVoucher] = []  # every new voucher adopted, in order
        self.charged = (0, 0)

    def _expect(self, v: SignedVoucher, c: int, d: int, forged: bool) -> ErrorCode | None:
        latest = self.a.latest
        same = latest is not None and (v.compute, v.data, v.signature) == (
            latest.compute,
            latest.data,
            latest.signature,
        )
        if not same:
            if latest is not None and (v.compute < latest.compute or v.data < latest.data or v.total <= latest.total):
                return ErrorCode.VOUCHER_STALE
            if forged:
                return ErrorCode.VOUCHER_BAD_SIGNATURE
            if v.total > self.deposit:
                return ErrorCode.VOUCHER_OVER_DEPOSIT
        reserved_c = sum(r.compute for r in self.flight)
        reserved_d = sum(r.data for r in self.flight)
        if v.compute < self.charged[0] + reserved_c + c or v.data < self.charged[1] + reserved_d + d:
            return ErrorCode.VOUCHER_UNDERPAID
        return None

    @rule(
        c=st.integers(0, 400),
        d=st.integers(0, 40),
        extra_c=st.integers(-50, 600),
        extra_d=st.integers(-5, 60),
        kind=st.sampled_from(["fresh", "fresh", "fresh", "same", "forged"]),
    )
    def admit(self, c: int, d: int, extra_c: int, extra_d: int, kind: str) -> None:
        latest = self.a.latest
        if kind == "same" and latest is not None:
            v = latest
        else:
            base_c, base_d = (latest.compute, latest.data) if latest else (0, 0)
            vc, vd = max(0, base_c + extra_c), max(0, base_d + extra_d)
            v = voucher(vc, vd, key=OTHER_KEY if kind == "forged" else KEY)
        expected = self._expect(v, c, d, forged=kind == "forged")
        before = snapshot(self.a)
        try:
            r, new = self.a.admit(v, compute=c, data=d)
        except RequestFailed as err:
            assert err.code == expected, (err, expected)
            assert snapshot(self.a) == before
            return
        assert expected is None
        assert new == (v != latest)
        if new:
            self.accepted.append(v)
        self.flight.append(r)

    @precondition(lambda self: self.flight)
    @rule(i=st.integers(0, 10**6), frac=st.floats(0, 1))
    def settle(self, i: int, frac: float) -> None:
        r = self.flight.pop(i % len(self.flight))
        c, d = int(r.compute * frac), int(r.data * frac)
        self.a.settle(r, compute=c, data=d)
        self.charged = (self.charged[0] + c, self.charged[1] + d)

    @precondition(lambda self: self.flight)
    @rule(i=st.integers(0, 10**6))
    def release(self, i: int) -> None:
        self.a.release(self.flight.pop(i % len(self.flight)))

    @precondition(lambda self: self.a.redeemable is not None)
    @rule()
    def redeem(self) -> None:
        assert self.a.redeemable is not None
        self.a.redeemed_compute, self.a.redeemed_data = self.a.redeemable.compute, self.a.redeemable.data

    @invariant()
    def charged_within_latest_within_deposit(self) -> None:
        a = self.a
        assert (a.charged_compute, a.charged_data) == self.charged
        if a.latest is None:
            assert self.charged == (0, 0)
        else:
            assert a.charged_compute <= a.latest.compute and a.charged_data <= a.latest.data
            assert a.latest.total <= a.deposit

    @invariant()
    def redeemable_is_newest_earned(self) -> None:
        a = self.a
        earned = [v for v in self.accepted if v.compute <= a.charged_compute and v.data <= a.charged_data]
        assert a.redeemable == (earned[-1] if earned else None)
        if a.redeemable is not None:
            assert a.redeemable.compute <= a.charged_compute and a.redeemable.data <= a.charged_data
        assert a.unredeemed >= 0

    @invariant()
    def reserved_matches_flight(self) -> None:
        a = self.a
        assert a.reserved_compute == sum(r.compute for r in self.flight) >= 0
        assert a.reserved_data == sum(r.data for r in self.flight) >= 0
        assert a.in_flight == any(r.compute or r.data for r in self.flight)
        if not self.flight:
            assert (a.reserved_compute, a.reserved_data) == (0, 0)


AccountMachine.TestCase.settings = settings(
    max_examples=60, stateful_step_count=30, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
test_account_random_sequences_keep_invariants = AccountMachine.TestCase


# ---- worker choice -----------------------------------------------------------------------
def worker(session: str, **kw: Any) -> WorkerState:
    fields: dict[str, Any] = {
        "session": session,
        "provider": "0:" + session.encode().hex().ljust(64, "0"),
        "node_key": b"\x00" * 32,
        "models": {"bge": b"\x01" * 32},
        "coefficient": 1000,
        "capacity": 4,
    }
    fields.update(kw)
    return WorkerState(**fields)


def test_choose_worker_filters_model_capacity_coefficient_and_exclusion() -> None:
    other_model = worker("a", models={"e5": b"\x02" * 32})
    full = worker("b", in_flight=4)
    pricey = worker("c", coefficient=2000)
    excluded = worker("d")
    ok = worker("e", latency=10.0)  # slowest, but the only one that qualifies
    ws = [other_model, full, pricey, excluded, ok]
    assert choose_worker(ws, model="bge", max_coefficient=1500, exclude=frozenset({"d"})) is ok
    assert choose_worker(ws, model="bge", max_coefficient=2000, exclude=frozenset({"d", "e"})) is pricey
    assert choose_worker(ws, model="missing", max_coefficient=10**6) is None
    assert choose_worker([], model="bge", max_coefficient=1000) is None


@pytest.mark.parametrize(
    ("better", "worse"),
    [
        pytest.param({"queued": 0}, {"queued": 5}, id="queue"),
        pytest.param({"in_flight": 1}, {"in_flight": 3}, id="in-flight"),
        pytest.param({"latency": 0.01}, {"latency": 0.2}, id="latency"),
        pytest.param({"coefficient": 900}, {"coefficient": 1100}, id="coefficient"),
        pytest.param({"reputation": 1.0}, {"reputation": 0.3}, id="reputation"),
    ],
)
def test_choose_worker_prefers_lower_score(better: dict[str, Any], worse: dict[str, Any]) -> None:
    b, w = worker("better", **better), worker("worse", **worse)
    assert b.score() < w.score()
    assert choose_worker([w, b], model="bge", max_coefficient=10**6) is b
    assert choose_worker([b, w], model="bge", max_coefficient=10**6) is b


def test_choose_worker_trades_queue_against_price() -> None:
    cheap_busy = worker("a", coefficient=500, queued=3)  # 4 x 500 = 2000
    dear_idle = worker("b", coefficient=1500, queued=0)  # 1 x 1500 = 1500
    assert choose_worker([cheap_busy, dear_idle], model="bge", max_coefficient=10**6) is dear_idle


def test_observe_failure_lowers_reputation_and_success_recovers() -> None:
    w = worker("a")
    w.observe(ok=False)
    assert w.reputation == 0.5
    for _ in range(20):
        w.observe(ok=False)
    assert w.reputation == pytest.approx(0.05)  # floored, never 0
    low = w.reputation
    w.observe(ok=True, seconds=1.0)
    assert w.reputation > low
    assert w.latency == pytest.approx(0.8 * 0.05 + 0.2 * 1.0)
    for _ in range(100):
        w.observe(ok=True)
    assert w.reputation == 1.0


def test_observe_failure_moves_choice_to_another_worker() -> None:
    a, b = worker("a"), worker("b", latency=0.06)
    assert choose_worker([a, b], model="bge", max_coefficient=1000) is a
    a.observe(ok=False)
    assert choose_worker([a, b], model="bge", max_coefficient=1000) is b


def test_worker_price_scales_by_its_coefficient() -> None:
    assert worker("a", coefficient=1500).price(10, 100) == 1500

"""The router's decisions, with no I/O: what a client owes, what a voucher must cover, which
worker serves a request. The asyncio layer (`_server.py`) moves frames and calls these.

Money, per channel (`Account`):

- `charged` is what the client owes for work done: the sum, over served requests, of the
  chosen worker's price for the units it signed for. It only grows.
- A request reserves its *maximum* price (its declared units at the client's maximum
  coefficient) while it is in flight; the voucher it carries must cover
  `charged + reserved + that maximum`. A served request turns its reservation into its real
  price (never more); a failed one releases it: the client is not charged for failed work.
- Vouchers are cumulative and never go down (a lower one is stale). Because a reservation
  is an upper bound, the newest voucher can exceed `charged`; the excess is the client's
  credit, spent by later requests (the client re-sends the same voucher while it covers).
- The router redeems on chain only a voucher it has *earned*: the newest one whose totals
  are at or below `charged` (`redeemable`). So neither a failed request nor an unused
  reservation is ever redeemed; the exact final total is settled by the close approval the
  router signs for `charged` (cooperative close).

Worker choice: among connected workers that serve the model, have room and cost at most the
client's maximum coefficient, the lowest `(queued + 1) x recent latency x coefficient /
reputation` wins (Cocoon picks the lowest running x average time; price and reputation
weigh in here too).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Iterable
from dataclasses import dataclass, field

from pytoniq_core import Address

from offchain.errors import InvalidSignature, RequestFailed
from offchain.protocol.units import compute_price
from offchain.protocol.voucher import SignedVoucher, verify_voucher
from offchain.protocol.wire import ErrorCode

__all__ = ["Account", "Reservation", "WorkerState", "choose_worker"]


@dataclass(frozen=True)
class Reservation:
    """One admitted request's hold on the channel."""

    channel: str
    compute: int
    data: int = 0


@dataclass
class Account:
    """A client's channel as the router books it. Not safe for concurrent use: the router
    calls it from one event loop, and never awaits between a check and its update."""

    channel: Address
    client_key: bytes
    deposit: int
    charged_compute: int = 0
    charged_data: int = 0
    latest: SignedVoucher | None = None
    redeemable: SignedVoucher | None = None
    pending: list[SignedVoucher] = field(default_factory=list)  # held, newer than `redeemable`
    reserved_compute: int = 0
    reserved_data: int = 0
    redeemed_compute: int = 0  # on chain
    redeemed_data: int = 0

    @functools.cached_property
    def address(self) -> str:
        """The channel in wire form (cached: every request names it)."""
        return self.channel.to_str(is_user_friendly=False)

    def admit(self, voucher: SignedVoucher, *, compute: int, data: int = 0) -> tuple[Reservation, bool]:
        """Check `voucher` for a request that may cost up to (`compute`, `data`); reserve it.

        Returns the reservation and whether the voucher is new (to be persisted before the
        request is forwarded).

        Raises:
            RequestFailed: VOUCHER_STALE, VOUCHER_BAD_SIGNATURE (also for a voucher that
                names another channel), VOUCHER_OVER_DEPOSIT or VOUCHER_UNDERPAID; nothing
                changed.
            ValueError: a negative (`compute`, `data`); nothing changed.
        """
        if compute < 0 or data < 0:
            raise ValueError(f"a request's maximum ({compute}, {data}) is non-negative")
        if voucher.channel != self.channel:
            # its signature may well check (the digest names its own channel), but it is not
            # redeemable on this one
            raise RequestFailed(
                ErrorCode.VOUCHER_BAD_SIGNATURE,
                f"voucher names channel {voucher.channel.to_str(is_user_friendly=False)}, not {self.address}",
            )
        latest = self.latest
        same = latest is not None and (voucher.compute, voucher.data, voucher.signature) == (
            latest.compute,
            latest.data,
            latest.signature,
        )
        if not same:
            if latest is not None and (
                voucher.compute < latest.compute or voucher.data < latest.data or voucher.total <= latest.total
            ):
                raise RequestFailed(
                    ErrorCode.VOUCHER_STALE,
                    f"voucher ({voucher.compute}, {voucher.data}) is below the newest one held "
                    f"({latest.compute}, {latest.data})",
                )
            try:
                verify_voucher(voucher, self.client_key)
            except InvalidSignature as err:
                raise RequestFailed(ErrorCode.VOUCHER_BAD_SIGNATURE, str(err)) from err
            if voucher.total > self.deposit:
                raise RequestFailed(
                    ErrorCode.VOUCHER_OVER_DEPOSIT,
                    f"voucher total {voucher.total} exceeds the channel's deposit {self.deposit}",
                )
        need_c = self.charged_compute + self.reserved_compute + compute
        need_d = self.charged_data + self.reserved_data + data
        if voucher.compute < need_c or voucher.data < need_d:
            raise RequestFailed(
                ErrorCode.VOUCHER_UNDERPAID,
                f"voucher ({voucher.compute}, {voucher.data}) does not cover ({need_c}, {need_d}): "
                f"charged ({self.charged_compute}, {self.charged_data}), in flight "
                f"({self.reserved_compute}, {self.reserved_data}), this request ({compute}, {data})",
            )
        if not same:
            self.latest = voucher
            self.pending.append(voucher)
            self.advance()  # earned already only when it adds nothing (a first (0, 0) voucher)
        self.reserved_compute += compute
        self.reserved_data += data
        return Reservation(self.address, compute, data), not same

    def refund(self, compute: int) -> None:
        """Take back a charge proven wrong (a disputed answer): it becomes the client's credit.

        A voucher earned only thanks to that charge is no longer earned: it goes back among
        the held ones until the charge passes it again, so the router never redeems it.

        Raises:
            ValueError: more than is charged.
        """
        if not 0 <= compute <= self.charged_compute:
            raise ValueError(f"refund {compute} is outside 0..{self.charged_compute}")
        self.charged_compute -= compute
        while self.redeemable is not None and (self.redeemable.compute > self.charged_compute
                                               or self.redeemable.data > self.charged_data):
            self.pending.insert(0, self.redeemable)
            self.redeemable = None

    def release(self, r: Reservation) -> None:
        """A request failed: its reservation goes, nothing is charged.

        Raises:
            ValueError: `r` is more than is reserved (released or settled already); nothing
                changed.
        """
        if r.compute > self.reserved_compute or r.data > self.reserved_data:
            raise ValueError(
                f"reservation ({r.compute}, {r.data}) exceeds what is reserved "
                f"({self.reserved_compute}, {self.reserved_data}): released twice?"
            )
        self.reserved_compute -= r.compute
        self.reserved_data -= r.data

    def settle(self, r: Reservation, *, compute: int, data: int = 0) -> bool:
        """A request was served at (`compute`, `data`) (at most its reservation).

        Returns whether `redeemable` moved (a newer voucher is now earned).

        Raises:
            ValueError: a negative charge, or one over the reservation; nothing changed.
        """
        if not (0 <= compute <= r.compute and 0 <= data <= r.data):
            raise ValueError(f"charge ({compute}, {data}) exceeds the reservation ({r.compute}, {r.data})")
        self.release(r)
        self.charged_compute += compute
        self.charged_data += data
        return self.advance()

    def advance(self) -> bool:
        moved = False
        while (
            self.pending
            and self.pending[0].compute <= self.charged_compute
            and self.pending[0].data <= self.charged_data
        ):
            self.redeemable = self.pending.pop(0)
            moved = True
        return moved

    @property
    def unredeemed(self) -> int:
        """What `redeemable` would add on chain now."""
        if self.redeemable is None:
            return 0
        return max(0, self.redeemable.compute - self.redeemed_compute) + max(
            0, self.redeemable.data - self.redeemed_data
        )

    @property
    def in_flight(self) -> bool:
        return bool(self.reserved_compute or self.reserved_data)


@dataclass
class WorkerState:
    """What the router knows of one connected, authenticated worker."""

    session: str
    provider: str  # its Provider address
    node_key: bytes
    models: dict[str, bytes]  # name -> model hash it serves (allowlisted)
    coefficient: int
    capacity: int
    queued: int = 0  # as the worker last reported
    in_flight: int = 0  # what the router has sent it and not heard back
    latency: float = 0.05  # seconds, exponentially averaged
    reputation: float = 1.0  # 0 < r <= 1: falls on failures, recovers on success
    encryption_key: bytes = b""  # X25519: what sealed requests name it by
    evidence: bytes = b""  # its attestation, passed on to clients

    def price(self, units: int, unit_price: int) -> int:
        return compute_price(units, unit_price, self.coefficient)

    def score(self) -> float:
        load = max(self.queued, self.in_flight) + 1
        return load * max(self.latency, 1e-4) * self.coefficient / max(self.reputation, 0.01)

    def observe(self, *, ok: bool, seconds: float | None = None) -> None:
        if ok:
            if seconds is not None:
                self.latency = 0.8 * self.latency + 0.2 * seconds
            self.reputation = min(1.0, self.reputation + 0.02)
        else:
            self.reputation = max(0.05, self.reputation * 0.5)


def choose_worker(
    workers: Iterable[WorkerState],
    *,
    model: str,
    max_coefficient: int,
    exclude: frozenset[str] = frozenset(),
    keys: frozenset[bytes] | None = None,
) -> WorkerState | None:
    """The best worker for `model` (see the module doc), or None if none qualifies.

    `keys`: for a sealed request, the encryption keys of the workers it is sealed to."""
    best: WorkerState | None = None
    best_score = math.inf
    for w in workers:
        if model not in w.models or w.coefficient > max_coefficient or w.session in exclude:
            continue
        if keys is not None and w.encryption_key not in keys:
            continue
        if w.in_flight >= w.capacity:
            continue
        s = w.score()
        if s < best_score:
            best, best_score = w, s
    return best

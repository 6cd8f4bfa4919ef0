"""The router's data-path decisions without I/O: which data node relays a fetch, and what a
crawl's budget lets it spend (never more than the client's max_cost)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from offchain.protocol.units import data_price, page_price
from offchain.router._data import CrawlBooks, NodeState, choose_node

A, B, C = ("0:" + c * 64 for c in "abc")


def nodes() -> list[NodeState]:
    return [NodeState(f"s{i}", p, bytes(32)) for i, p in enumerate((A, B, C))]


def test_choose_node_spreads_load_and_skips_avoided_and_full_nodes() -> None:
    ns = nodes()
    ns[0].open_streams = 2
    assert choose_node(ns).provider in (B, C)
    assert choose_node(ns, avoid=[B, C]).provider == A
    ns[0].open_streams = ns[0].max_streams
    assert choose_node(ns, avoid=[B, C]) is None
    assert choose_node([], avoid=[]) is None


def test_choose_node_never_repeats_the_last_node_of_a_host_when_another_can_take_it() -> None:
    ns = nodes()
    assert choose_node(ns, last_for_host=A).provider != A
    only = [ns[0]]
    assert choose_node(only, last_for_host=A) is ns[0], "the only node still serves"


def test_choose_node_weighs_reputation_and_ties_go_to_the_least_used() -> None:
    ns = nodes()
    ns[0].reputation, ns[1].reputation, ns[2].reputation = 0.1, 1.0, 1.0
    ns[1].relayed = 10
    assert choose_node(ns).provider == C
    ns[2].open_streams = 3
    assert choose_node(ns).provider == B


def books(max_cost: int, price: int = 10, page_bytes: int = 16 * 1024) -> CrawlBooks:
    return CrawlBooks(max_cost=max_cost, max_page_bytes=page_bytes, data_unit_price=price)


def test_a_clean_stream_is_charged_its_bytes_and_a_record_its_page_fee() -> None:
    b = books(10**9)
    assert b.open(1)
    assert b.add_bytes(1, 3000)
    assert b.close(1, ok=True) == data_price(3000, 10)
    assert b.page() == page_price(10)
    assert b.page() == 0, "one page fee per cleanly ended stream"
    assert b.finish() == data_price(3000, 10) + page_price(10)


def test_a_failed_stream_costs_nothing_and_a_stream_past_the_page_cap_is_cut() -> None:
    b = books(10**9, page_bytes=16 * 1024)
    b.open(1)
    assert not b.add_bytes(1, 16 * 1024 + 1)
    assert b.close(1, ok=False) == 0
    assert b.page() == 0 and b.finish() == 0


def test_streams_are_refused_once_the_budget_cannot_cover_another_page() -> None:
    b = books(0)
    reserve = b.stream_reserve
    b = books(2 * reserve)
    assert b.open(1) and b.open(2)
    assert not b.open(3), "two held reserves fill the budget"
    b.close(1, ok=False)
    assert b.open(3)


@given(st.lists(st.tuples(st.booleans(), st.integers(0, 40_000), st.booleans()), max_size=40),
       st.integers(0, 5_000_000))
def test_charges_never_exceed_max_cost(steps: list[tuple[bool, int, bool]], max_cost: int) -> None:
    b = books(max_cost, page_bytes=32 * 1024)
    for i, (ok, nbytes, record) in enumerate(steps):
        if not b.open(i):
            continue
        within = b.add_bytes(i, nbytes)
        b.close(i, ok=ok and within)
        if record:
            b.page()
        assert b.charged + b.held <= max_cost
    assert b.finish() <= max_cost

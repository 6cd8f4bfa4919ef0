"""The router's data-path decisions, with no I/O: which data node relays a page, and what a
crawl may still spend.

Node choice (`choose_node`): among connected data nodes with a free stream slot and not in
the validator's `avoid` list (nodes that already failed this page), the lowest
`(open streams + 1) / reputation` wins, with two spreading rules on top: a node is not
picked for a host it relayed the last fetch of when another node can take it (never the
same node for every page of a site), and ties go to the node that relayed least. Grass
weighs nodes the same way: availability and completeness (the validators' reputation) and
load.

Money of one crawl (`CrawlBooks`), all nanoTON:

- The client's `Crawl` reserves `max_cost` on its channel (the voucher covers it).
- Each stream the validator opens holds `stream_reserve` = the page fee plus the price of
  `max_page_bytes` relayed, while it is open: a stream is refused (`BUDGET`) when what is
  charged plus every hold would pass `max_cost`. So charges never exceed what the client
  allowed, whatever the validator does.
- A stream that ends cleanly is charged `data_price(bytes relayed)`; its page-fee part stays
  held as a credit until a `CrawlRecord` turns it into a charged page fee (a robots.txt or
  redirect fetch leaves an unused credit, released at the end). A stream that ends on an
  error (a relay failure, a node gone, a byte cap) costs the client nothing: the node is
  not paid for it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from offchain.protocol.units import data_price, page_price

__all__ = ["CrawlBooks", "NodeState", "choose_node"]


@dataclass(eq=False)
class NodeState:
    """A connected data node as the router sees it."""

    session: str
    provider: str
    node_key: bytes
    reputation: float = 1.0
    open_streams: int = 0
    max_streams: int = 16  # the router's own cap per node (the node refuses beyond its own)
    relayed: int = 0  # bytes of every finished stream, both ways, metered here
    streams: int = 0
    failures: int = 0

    @property
    def has_room(self) -> bool:
        return self.open_streams < self.max_streams


def choose_node(
    nodes: Iterable[NodeState],
    *,
    avoid: Iterable[str] = (),
    last_for_host: str | None = None,
) -> NodeState | None:
    """The data node to relay the next fetch (see the module doc); None if none can."""
    shunned = set(avoid)
    fit = [n for n in nodes if n.has_room and n.provider not in shunned]
    if not fit:
        return None
    if last_for_host is not None and any(n.provider != last_for_host for n in fit):
        fit = [n for n in fit if n.provider != last_for_host]
    return min(fit, key=lambda n: ((n.open_streams + 1) / max(n.reputation, 0.01), n.relayed, n.session))


@dataclass
class _Hold:
    nbytes: int = 0


@dataclass
class CrawlBooks:
    """What one crawl has charged and holds (see the module doc). No I/O; one event loop."""

    max_cost: int
    max_page_bytes: int
    data_unit_price: int
    charged: int = 0  # bytes relayed + page fees, for this crawl
    pages: int = 0  # page fees charged
    relayed: int = 0  # bytes of charged streams
    credits: int = 0  # page fees held by cleanly ended streams, not yet used by a record
    _open: dict[int, _Hold] = field(default_factory=dict)

    @property
    def page_fee(self) -> int:
        return page_price(self.data_unit_price)

    @property
    def stream_reserve(self) -> int:
        return self.page_fee + data_price(self.max_page_bytes, self.data_unit_price)

    @property
    def held(self) -> int:
        return len(self._open) * self.stream_reserve + self.credits * self.page_fee

    @property
    def open_streams(self) -> int:
        return len(self._open)

    def can_open(self) -> bool:
        return self.charged + self.held + self.stream_reserve <= self.max_cost

    def open(self, stream: int) -> bool:
        """Hold a stream's reserve; False (nothing held) when the budget cannot cover it."""
        if stream in self._open or not self.can_open():
            return False
        self._open[stream] = _Hold()
        return True

    def add_bytes(self, stream: int, n: int) -> bool:
        """Count `n` bytes relayed on `stream`; False once the stream passes `max_page_bytes`
        (the caller closes it: it will cost nothing)."""
        hold = self._open.get(stream)
        if hold is None:
            return False
        hold.nbytes += n
        return hold.nbytes <= self.max_page_bytes

    def close(self, stream: int, *, ok: bool) -> int:
        """End `stream`: its bytes are charged if `ok` (and its page fee kept as a credit);
        returns what was charged (0 for a failed stream or one not open)."""
        hold = self._open.pop(stream, None)
        if hold is None or not ok:
            return 0
        cost = data_price(hold.nbytes, self.data_unit_price)
        self.charged += cost
        self.relayed += hold.nbytes
        self.credits += 1
        return cost

    def stream_bytes(self, stream: int) -> int:
        hold = self._open.get(stream)
        return hold.nbytes if hold else 0

    def page(self) -> int:
        """A record was delivered: charge one page fee from a credit; returns what was charged
        (0 when no cleanly ended stream holds one: the page is then not charged)."""
        if self.credits <= 0:
            return 0
        self.credits -= 1
        self.charged += self.page_fee
        self.pages += 1
        return self.page_fee

    def finish(self) -> int:
        """The crawl is over: every hold is released; returns the final charge."""
        self._open.clear()
        self.credits = 0
        return self.charged

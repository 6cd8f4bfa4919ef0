"""Every nanoTON that moved on a chain over a window: each account's balance change and every
fee paid, which together sum to zero (TON is only ever moved or burnt as fees).

`mark(chain, seeds)` finds every account the seeds' transactions ever reached (following
internal messages) and records its balance and last transaction; `flows(chain, marks)`
later follows the transactions after those marks (and of accounts created since) and sums

    sum(balance changes) + gas and storage fees (each transaction's total_fees)
                         + forwarding fees (each internal message's fwd_fee) = 0

on the localnet, where messages land at once. On a live chain a message still in flight at
the second read breaks the sum until it lands; `settled_flows` rereads until it holds (bounded).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

__all__ = ["Flows", "Mark", "flows", "mark", "settled_flows"]


@dataclass(frozen=True)
class Mark:
    balance: int
    lt: int


def _raw(addr: Any) -> str:
    return addr if isinstance(addr, str) else addr.to_str(False)


async def _reach(chain: Any, seeds: Iterable[str], after: dict[str, Mark]) -> tuple[set[str], list[Any]]:
    """The accounts reachable from `seeds` through transactions newer than their mark in
    `after` (all transactions of an unmarked account), and those transactions."""
    seen = set(seeds) | set(after)
    queue = list(seen)
    txs: list[Any] = []
    while queue:
        account = queue.pop()
        since = after.get(account)
        for tx in await chain.get_transactions(account, limit=10_000, to_lt=since.lt if since else 0):
            txs.append(tx)
            for m in (tx.in_msg, *tx.out_msgs):
                for other in (m.src, m.dest) if m is not None and m.kind == "internal" else ():
                    if other and other not in seen:
                        seen.add(other)
                        queue.append(other)
    return seen, txs


async def mark(chain: Any, seeds: Iterable[Any]) -> dict[str, Mark]:
    """Balance and last transaction of every account the seeds' history reaches."""
    accounts, _ = await _reach(chain, [_raw(s) for s in seeds], {})
    out = {}
    for a in sorted(accounts):
        st = await chain.get_account(a)
        out[a] = Mark(st.balance, st.last_lt)
    return out


@dataclass
class Flows:
    deltas: dict[str, int]  # raw address -> balance change over the window
    gas: int  # total_fees of the window's transactions (gas, storage, actions, imports)
    forward: int  # fwd_fee of the window's internal messages
    transactions: int

    @property
    def fees(self) -> int:
        return self.gas + self.forward

    @property
    def balanced(self) -> bool:
        return sum(self.deltas.values()) + self.fees == 0


async def flows(chain: Any, marks: dict[str, Mark]) -> Flows:
    """What moved since `marks` (see the module's docstring)."""
    accounts, txs = await _reach(chain, list(marks), marks)
    deltas = {}
    for a in sorted(accounts):
        st = await chain.get_account(a)
        d = st.balance - (marks[a].balance if a in marks else 0)
        if d:
            deltas[a] = d
    forward = sum(m.fwd_fee for t in txs for m in t.out_msgs if m.kind == "internal")
    return Flows(deltas, sum(t.total_fees for t in txs), forward, len(txs))


async def settled_flows(chain: Any, marks: dict[str, Mark], *, timeout: float = 10.0) -> Flows:
    """`flows` once the sum holds (messages in flight have landed), or the last reading."""
    deadline = time.monotonic() + timeout
    while True:
        got = await flows(chain, marks)
        if got.balanced or time.monotonic() > deadline:
            return got
        await asyncio.sleep(0.3)

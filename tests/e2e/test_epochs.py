"""Epochs close by themselves, as real processes: localnet, router, one validator (Root's
threshold 1) settling every router epoch, two data nodes and the local web.

A client pays for a crawl through its channel and closes it cooperatively. At the next epoch boundaries the validator
asks the router for its signed ledger (the router redeems first), settles, posts the report
from its wallet and publishes the epoch; the pool adopts it; `cocoon epoch verify` passes on
the published folder against the chain; the data nodes find their proofs there and claim by
themselves; and the money adds up to the nanoTON: what the channel redeemed into the pool =
the providers' claims + the protocol's fees + the allocated-but-unclaimed leaves (below the
claim threshold) + the roles' carries + the pots.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pytoniq_core import Address

from offchain.devnet import Devnet
from offchain.protocol.wire import CrawlSpec
from wrappers.channel import Channel
from wrappers.events import EpochReported, RevenueDeposited, default_registry

from ._helpers import buy, chain, claimed, logs, pool_books, pool_of, published, settling_network, wait_until

NEWS = "news.cocoon.test"
TON = 10**9
EPOCH_SECONDS = 4
FLOOR = 50_000_000  # the claim threshold (0.05 TON, CLAIM_FEE)


@pytest.fixture(scope="module")
def net(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Devnet]:
    d = Devnet(
        tmp_path_factory.mktemp("epochs"),
        settling_network(epoch_seconds=EPOCH_SECONDS),
    )
    try:
        d.start()
        yield d
    finally:
        d.close()


def test_epochs_close_by_themselves_and_the_data_nodes_claim(net: Devnet, tmp_path: Path) -> None:
    spec = CrawlSpec(seeds=[f"https://{NEWS}/"], max_pages=6, max_depth=2, politeness_ms=20, max_page_bytes=256 * 1024)
    channel, charged = asyncio.run(buy(net, spec, tmp_path / "ds", tmp_path / "client.db"))
    assert charged > 4 * FLOOR

    # the epochs close by themselves: everything the crawl paid is redeemed and settled
    def settled() -> Any:
        data, _ = pool_books(net)
        # (revenue paid in before its work's epoch ended waits in the pots for the ledger
        # naming the work: empty pots mean every such ledger was settled)
        done = data.epoch >= 1 and data.compute_pot == 0 and data.data_pot == 0 and published(net)
        return data if done and data.root_total > 0 else None

    data = wait_until("the pool adopts the validator's reports", net, settled, timeout=90, interval=1.0)
    vlog = net.sup.procs["validator0"].output(2000)
    assert "adopted (usage epoch" in vlog and "bandwidth" in vlog, vlog[-3000:]  # the table per role is logged

    # every published epoch verifies against the root the pool adopted for it
    epochs = published(net)
    assert epochs[-1] == data.epoch and epochs == list(range(1, data.epoch + 1)), epochs
    for n in epochs:
        cli = subprocess.run(
            [sys.executable, "-m", "offchain.cli", "epoch", "verify", str(n), "--dir", str(net.epochs_dir),
             "--network", "localnet", "--url", net.api_url, "--root", net.root],
            capture_output=True, text=True, timeout=60,
        )
        assert cli.returncode == 0, cli.stdout + cli.stderr

    # the data nodes claim by themselves what the last tree gives them
    result = json.loads((Path(net.epochs_dir) / str(data.epoch) / "result.json").read_text())
    owed = {e["provider"]: e["cumulative"] for e in result["providers"] if e["role"] == 1}
    nodes = [p.info["provider"] for p in net.datanodes]
    assert set(owed) <= set(nodes) and owed, (owed, nodes)
    # (what is left below the threshold, 0.05 TON, waits in the tree for a later epoch)
    wait_until("the data nodes claim", net,
               lambda: all(0 < owed[p] - claimed(net, p) + 1 <= FLOOR + 1 or claimed(net, p) == owed[p] for p in owed)
               and all(claimed(net, p) > 0 for p in owed), timeout=60, interval=1.0)
    paid = {p: claimed(net, p) for p in owed}
    for p in set(nodes) - set(owed):  # a node that earned nothing is not in the tree and claims nothing
        assert claimed(net, p) == 0

    # the money, to the nanoTON, read from the chain
    async def chain_facts(n: Any) -> tuple[int, int, list[Any]]:
        ch = Channel.create_from_address(Address(channel))
        cd = await ch.get_channel_data(n.open(ch))
        pool = await pool_of(n, net.root)
        txs = await n.chain.get_transactions(pool.address.to_str(False), limit=100)
        reg = default_registry()
        events = [e for tx in txs for e in reg.decode(tx)]
        deposited = sum(e.compute + e.data for e in events if isinstance(e, RevenueDeposited))
        return cd.redeemed_compute + cd.redeemed_data, deposited, [e for e in events if isinstance(e, EpochReported)]

    redeemed, deposited, reports = chain(net, chain_facts)
    data, roles = pool_books(net)
    assert redeemed == deposited == charged, (redeemed, deposited, charged)
    docs = {n: json.loads((Path(net.epochs_dir) / str(n) / "result.json").read_text()) for n in epochs}
    assert sorted(e.epoch for e in reports) == epochs
    for e in reports:  # what the pool adopted is what was published; the treasury got at least the share
        doc = docs[e.epoch]
        assert (e.compute_consumed, e.data_consumed) == (doc["compute_consumed"], doc["data_consumed"])
        assert (f"{e.merkle_root:064x}", e.root_total) == (doc["merkle_root"], doc["root_total"])
        assert e.protocol_fee >= doc["protocol"]  # the share, with what was left of the report's value
    protocol = sum(doc["protocol"] for doc in docs.values())
    assert sum(e.compute_consumed + e.data_consumed for e in reports) + data.compute_pot + data.data_pot == redeemed
    unclaimed = data.root_total - data.claimed
    assert data.claimed == sum(paid.values())
    assert data.carry == sum(roles.carries.as_tuple())
    assert data.claimed + protocol + unclaimed + data.carry + data.compute_pot + data.data_pot == redeemed, logs(net)

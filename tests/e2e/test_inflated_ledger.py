"""A router's inflated ledger is refused, as real processes: the router
(tests/e2e/_inflating_router.py) signs ledgers that claim three times what it earned; one
validator (threshold 1) settles every epoch.

The validator names the router and what it claimed beyond its channels' deposits, the
published epoch lists the refused ledger, the tree pays nobody for it (the data node claims
nothing), the revenue waits in the roles' carries for an honest ledger, `cocoon epoch verify`
agrees against the chain, and the books balance to the nanoTON.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from offchain.devnet import Devnet
from offchain.protocol.wire import CrawlSpec

from ._helpers import buy, claimed, pool_books, published, settling_network, wait_until


@pytest.fixture(scope="module")
def net(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Devnet]:
    d = Devnet(
        tmp_path_factory.mktemp("inflated"),
        settling_network(datanodes=1, modules={"router": "tests.e2e._inflating_router"}),
    )
    try:
        d.start()
        yield d
    finally:
        d.close()


def test_an_inflated_ledger_is_refused_and_pays_nobody(net: Devnet, tmp_path: Path) -> None:
    spec = CrawlSpec(seeds=["https://news.cocoon.test/"], max_pages=4, max_depth=2, politeness_ms=20,
                     max_page_bytes=256 * 1024)
    _, charged = asyncio.run(buy(net, spec, tmp_path / "ds", tmp_path / "client.db"))
    assert charged > 0

    def refused_epoch() -> int | None:
        for n in published(net):
            doc = json.loads((Path(net.epochs_dir) / str(n) / "result.json").read_text())
            if doc["refused"]:
                return n
        return None

    n = wait_until("an epoch with the refused ledger is adopted", net, refused_epoch, timeout=90, interval=1.0)
    doc = json.loads((Path(net.epochs_dir) / str(n) / "result.json").read_text())
    (refusal,) = doc["refused"]
    assert refusal["router"] == net.router["address"]
    assert any("more than" in p or "redeemed" in p for p in refusal["problems"]), refusal
    assert doc["providers"] == [] and doc["root_total"] == 0  # nobody is paid for a refused ledger
    vlog = net.sup.procs["validator0"].output(2000)
    assert f"ledger of router {net.router['address']} refused" in vlog, vlog[-3000:]

    cli = subprocess.run(
        [sys.executable, "-m", "offchain.cli", "epoch", "verify", str(n), "--dir", str(net.epochs_dir),
         "--network", "localnet", "--url", net.api_url, "--root", net.root],
        capture_output=True, text=True, timeout=60,
    )
    assert cli.returncode == 0 and "refused" in cli.stdout, cli.stdout + cli.stderr

    data, roles = pool_books(net)
    node = net.datanodes[0].info["provider"]
    assert claimed(net, node) == 0 and data.root_total == 0 and data.claimed == 0
    # what came in: the protocol's shares, the rest carried per role (waiting for an honest ledger)
    protocol = sum(json.loads((Path(net.epochs_dir) / str(e) / "result.json").read_text())["protocol"]
                   for e in published(net))
    assert data.carry == sum(roles.carries.as_tuple()) > 0
    assert protocol + data.carry + data.compute_pot + data.data_pot == charged

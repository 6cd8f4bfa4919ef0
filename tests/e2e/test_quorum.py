"""The validators' quorum as real processes: Root's validator set is three validators with a
threshold of two; validator 2 dissents (tests/e2e/_dissenting_validator.py: it settles every
epoch without one ledger row, so it signs a tree the others do not compute).

- The two honest validators compute the same bytes, reach the quorum without the dissenter,
  and the pool adopts their report; both name the dissenter's key in their logs; the
  dissenter posts nothing; the published epoch verifies against the chain; the data nodes
  claim what the adopted tree gives them.
- With one honest validator stopped, the other cannot reach the quorum (the dissenter's
  signature does not count): the revenue waits in the pots, epoch after epoch, until the
  stopped one returns; then the blocked epoch itself is settled (validators settle, oldest
  first, every recent epoch no adopted report covers), its revenue pays its own work, and
  the books balance to the nanoTON.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from offchain.agentkit import node_key
from offchain.devnet import Devnet
from offchain.protocol.wire import CrawlSpec
from wrappers.events import RevenueDeposited, default_registry

from ._helpers import buy, chain, claimed, pool_books, pool_of, published, settling_network, wait_log, wait_until

FLOOR = 50_000_000  # the claim threshold (0.05 TON)
DISSENTER = "tests.e2e._dissenting_validator"


@pytest.fixture(scope="module")
def net(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Devnet]:
    d = Devnet(
        tmp_path_factory.mktemp("quorum"),
        settling_network(validators=3, validator_threshold=2, modules={"validator2": DISSENTER}),
    )
    try:
        d.start()
        yield d
    finally:
        d.close()


def _spec(host: str) -> CrawlSpec:
    return CrawlSpec(seeds=[f"https://{host}/"], max_pages=4, max_depth=2, politeness_ms=20,
                     max_page_bytes=256 * 1024)


def _key(net: Devnet, i: int) -> str:
    return bytes(node_key(net.workdir / f"validator{i}" / "node.key").verify_key).hex()


def _settled(net: Devnet, after: int, *, total_above: int = -1) -> object:
    """The pool's data once it adopted a report after epoch `after` whose tree holds more than
    `total_above`, with the pots empty and the epoch published; else None."""
    data, _ = pool_books(net)
    done = (data.epoch > after and data.compute_pot == 0 and data.data_pot == 0 and data.epoch in published(net)
            and data.root_total > total_above)
    return data if done else None


def test_two_honest_validators_outvote_the_dissenter(net: Devnet, tmp_path: Path) -> None:
    _, charged = asyncio.run(buy(net, _spec("news.cocoon.test"), tmp_path / "ds", tmp_path / "client.db"))
    assert charged > 2 * FLOOR
    data = wait_until("the pool adopts the honest validators' report", net, lambda: _settled(net, 0, total_above=0),
                      timeout=120, interval=1.0)
    dissenter = _key(net, 2)
    for i in (0, 1):  # each honest validator saw the report adopted, and named the dissenter, only it
        wait_log(net, f"validator{i}", f"epoch {data.epoch} adopted")
        # (the dissent may arrive after the honest quorum: it is named when it does)
        wait_log(net, f"validator{i}", f"validator {dissenter} signed another result")
        out = net.sup.procs[f"validator{i}"].output(4000)
        named = [line for line in out.splitlines() if "signed another result" in line]
        assert named and all(dissenter in line for line in named), out[-3000:]
    out2 = net.sup.procs["validator2"].output(4000)
    assert "dissenting: settling epoch" in out2 and "no report" in out2, out2[-3000:]
    assert f"epoch {data.epoch} adopted" not in out2  # it never saw its own tree adopted

    # what was published is what the pool adopted (`cocoon epoch verify` against the chain)
    cli = subprocess.run(
        [sys.executable, "-m", "offchain.cli", "epoch", "verify", str(data.epoch), "--dir", str(net.epochs_dir),
         "--network", "localnet", "--url", net.api_url, "--root", net.root],
        capture_output=True, text=True, timeout=60,
    )
    assert cli.returncode == 0, cli.stdout + cli.stderr
    # the data nodes claim what the honest tree gives them (above the threshold)
    nodes = [p.info["provider"] for p in net.datanodes]
    wait_until("a data node claims", net, lambda: any(claimed(net, p) > 0 for p in nodes), timeout=60, interval=1.0)


def test_a_stopped_validator_blocks_the_report_until_it_returns(net: Devnet, tmp_path: Path) -> None:
    before, before_roles = pool_books(net)
    net.sup.stop("validator1")
    v0 = net.sup.procs["validator0"]
    blocked_before = v0.output(100000).count("1 of 2 signatures")
    _, charged = asyncio.run(buy(net, _spec("docs.cocoon.test"), tmp_path / "ds", tmp_path / "client.db"))
    assert charged > 0

    # validator 0 settles, but alone (the dissenter's signature does not count): no report,
    # at two boundaries in a row, and the revenue waits in the pots
    wait_until("validator0 misses the quorum twice", net,
               lambda: v0.output(100000).count("1 of 2 signatures") >= blocked_before + 2, timeout=60, interval=0.5)
    data, _ = pool_books(net)
    assert data.epoch == before.epoch and data.data_pot > 0, data

    net.start_validator(1)
    after = wait_until("the blocked epoch is adopted once validator1 is back", net,
                       lambda: _settled(net, before.epoch), timeout=120, interval=1.0)
    # it was settled as itself: the usage epoch validator 0 could not get a quorum for is the one
    # adopted, and its revenue paid its own work
    blocked = {int(p.name) for p in (net.workdir / "validator0" / "unadopted").iterdir()}
    adopted = {json.loads((Path(net.epochs_dir) / str(e) / "inputs.json").read_text())["usage_epoch"]
               for e in range(before.epoch + 1, after.epoch + 1)}
    assert blocked & adopted, (blocked, adopted)
    data, roles = pool_books(net)
    # (the bandwidth role has relay work in every epoch with a crawl: only rounding dust carried)
    assert roles.totals.bandwidth > before_roles.totals.bandwidth and roles.carries.bandwidth <= 10, roles

    # the books, to the nanoTON: what every channel paid into the pool = claimed + owed in the
    # tree + the protocol's shares + the carries + the pots
    async def deposited(n: object) -> int:
        pool = await pool_of(n, net.root)
        txs = await n.chain.get_transactions(pool.address.to_str(False), limit=200)  # type: ignore[attr-defined]
        reg = default_registry()
        return sum(e.compute + e.data for tx in txs for e in reg.decode(tx) if isinstance(e, RevenueDeposited))

    protocol = sum(json.loads((Path(net.epochs_dir) / str(e) / "result.json").read_text())["protocol"]
                   for e in range(1, data.epoch + 1))
    assert data.carry == sum(roles.carries.as_tuple())
    unclaimed = data.root_total - data.claimed
    assert data.claimed + unclaimed + protocol + data.carry + data.compute_pot + data.data_pot == chain(net, deposited)

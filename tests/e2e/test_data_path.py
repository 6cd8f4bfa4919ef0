"""The data path end to end, as real processes: localnet, router, one validator, three data
nodes and the local HTTPS web. A client buys a crawl through its channel and gets a dataset
that verifies and loads with pyarrow; a data node that corrupts what it relays is caught by
TLS, its pages are fetched again through other nodes, and it is paid nothing."""

from __future__ import annotations

import asyncio
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow.dataset as pads
import pytest

from offchain.dataset import Dataset, verify_dataset
from offchain.devnet import Devnet, DevnetConfig
from offchain.errors import RequestFailed
from offchain.protocol.wire import CrawlDone, CrawlSpec, CrawlStop, ErrorCode

from ._helpers import fresh_client, read_db, router_db, wait_until

NEWS, DOCS, SHOP = "news.cocoon.test", "docs.cocoon.test", "shop.cocoon.test"


@pytest.fixture(scope="module")
def net(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Devnet]:
    d = Devnet(
        tmp_path_factory.mktemp("datapath"),
        DevnetConfig(
            workers=0,
            gateway=False,
            redeem_interval=600.0,
            redeem_threshold="1000",
            validators=1,
            datanodes=3,
            validator_extra={"probe_interval": 3600, "deposit": "0.5", "fetch_timeout": 10},
        ),
    )
    try:
        d.start()
        yield d
    finally:
        d.close()


def validator_key(net: Devnet) -> bytes:
    return bytes.fromhex(net.validators[0].info["node_key"])


async def buy(net: Devnet, spec: CrawlSpec, out: Path, store: Path, **kw: Any) -> tuple[Dataset, CrawlDone, int]:
    """One crawl from a fresh client on the spare wallet; (dataset, its CrawlDone, charged)."""
    async with fresh_client(net, store) as client:
        await client.open_channel(deposit=10**9)
        ds = await client.crawl(spec, out, **kw)
        assert client.last_crawl is not None
        return ds, client.last_crawl, client.charged_data


def providers(net: Devnet) -> list[str]:
    return [p.info["provider"] for p in net.datanodes]


def test_a_client_buys_a_crawl_and_gets_a_verified_dataset(net: Devnet, tmp_path: Path) -> None:
    spec = CrawlSpec(seeds=[f"https://{NEWS}/"], max_pages=6, max_depth=2, politeness_ms=20,
                     max_page_bytes=1024 * 1024)
    ds, done, charged = asyncio.run(buy(net, spec, tmp_path / "ds", tmp_path / "client.db"))
    assert done.stop in (CrawlStop.PAGE_LIMIT, CrawlStop.EXHAUSTED), done
    assert done.records == len(ds) >= 4
    report = verify_dataset(tmp_path / "ds", trusted_validators={validator_key(net)})
    assert report.records == done.records
    table = pads.dataset(tmp_path / "ds", format="parquet", exclude_invalid_files=True).to_table()
    assert table.num_rows == done.records
    urls = table.column("final_url").to_pylist()
    assert all(u.startswith(f"https://{NEWS}/") for u in urls), "same-site only"
    assert not any("/private/" in u for u in urls), "robots.txt forbids /private/"
    assert len(set(table.column("body_sha256").to_pylist())) == len(urls), "no body twice"
    relayed_by = set(table.column("provider").to_pylist())
    assert relayed_by <= set(providers(net)) and len(relayed_by) >= 2, "pages spread over the data nodes"
    assert all(t for t in table.column("main_text").to_pylist()[:3]), "main text extracted"
    # paid through the channel: the router's books agree with the client's, within the budget
    assert 0 < done.cost == charged
    assert router_db(net, "SELECT coalesce(max(charged_data), 0) FROM accounts")[0][0] >= charged
    relay_rows = router_db(net, "SELECT provider, sum(units) FROM usage WHERE model = 'relay' GROUP BY provider")
    assert {p for p, _ in relay_rows} >= relayed_by and all(units > 0 for _, units in relay_rows)
    # anchored on chain by the client; the command a buyer runs checks it against the network
    assert ds.manifest.anchor is not None
    cli = subprocess.run([sys.executable, "-m", "offchain.cli", "dataset", "verify", str(tmp_path / "ds"),
                          "--network", "localnet", "--url", net.api_url, "--root", net.root],
                         capture_output=True, text=True, timeout=60)
    assert cli.returncode == 0, cli.stdout + cli.stderr


def test_a_malformed_or_unaffordable_crawl_is_refused_and_costs_nothing(net: Devnet, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="malformed crawl spec"):
        asyncio.run(buy(net, {"seeds": ["ftp://x/"]}, tmp_path / "a", tmp_path / "a.db"))  # type: ignore[arg-type]
    spec = CrawlSpec(seeds=[f"https://{NEWS}/"], max_pages=2)
    with pytest.raises(RequestFailed) as err:
        asyncio.run(buy(net, spec, tmp_path / "b", tmp_path / "b.db", max_cost=1))
    assert err.value.code == ErrorCode.VOUCHER_UNDERPAID
    spec = CrawlSpec(seeds=["https://user@news.cocoon.test:8443/"], max_pages=2)
    with pytest.raises(RequestFailed) as err:
        asyncio.run(buy(net, spec, tmp_path / "c", tmp_path / "c.db"))
    assert err.value.code == ErrorCode.INVALID_INPUT


def test_a_corrupting_node_is_caught_and_its_pages_fetched_again_elsewhere(net: Devnet, tmp_path: Path) -> None:
    bad = net.start_datanode(3, module="tests.e2e._corrupting_datanode", env={"COCOON_TEST_CORRUPT": "1"})
    cheat = bad.info["provider"]
    spec = CrawlSpec(seeds=[f"https://{DOCS}/", f"https://{SHOP}/"], max_pages=8, max_depth=1, politeness_ms=20,
                     max_page_bytes=1024 * 1024)
    _, done, _ = asyncio.run(buy(net, spec, tmp_path / "ds", tmp_path / "client.db"))
    assert done.refetched >= 1, done
    table = pads.dataset(tmp_path / "ds", format="parquet", exclude_invalid_files=True).to_table()
    assert cheat not in table.column("provider").to_pylist(), "no record came through the corrupting node"
    verify_dataset(tmp_path / "ds", trusted_validators={validator_key(net)})
    vlog = net.sup.procs["validator0"].output(2000)
    assert re.search(rf"through node {cheat} failed \(SSL", vlog), vlog[-3000:]
    # it loses reputation at the router, and earns nothing for the streams it corrupted
    wait_until("the router lowers the cheat's reputation", net,
               lambda: re.search(rf"reputation of {cheat} set to 0\.\d+", net.sup.procs["router"].output(5000)))
    rows = router_db(net, "SELECT coalesce(sum(earned), 0), coalesce(sum(failures), 0) FROM usage "
                          "WHERE provider = ? AND model = 'relay'", cheat)
    assert rows[0][0] == 0 and rows[0][1] >= 1
    nodes = read_db(net.workdir / "validator0" / "validator.db", "SELECT provider, failures FROM nodes")
    assert dict(nodes).get(cheat, 0) >= 1

"""The agents' ops ports on a real network: the router's and the workers' `/healthz` and
`/metrics` (their URLs from the ready files), before and after one embedding request through
the gateway: the request is counted by the router's usage ledger and by the worker that
served it, and its cost by the router's charged total."""

from __future__ import annotations

import time
from typing import Any

import httpx
from prometheus_client.parser import text_string_to_metric_families

from offchain.devnet import Devnet

from ._helpers import MODEL, gateway, logs, wait_until


def metrics(url: str) -> dict[str, list[tuple[dict[str, str], float]]]:
    """`GET url/metrics`, as sample name -> [(labels, value)]."""
    r = httpx.get(f"{url}/metrics", timeout=10)
    assert r.status_code == 200, r.text
    out: dict[str, list[tuple[dict[str, str], float]]] = {}
    for family in text_string_to_metric_families(r.text):
        for s in family.samples:
            out.setdefault(s.name, []).append((s.labels, s.value))
    return out


def total(samples: dict[str, list[tuple[dict[str, str], float]]], name: str) -> float:
    return sum(v for _, v in samples.get(name, []))


def healthy(url: str, net: Devnet, timeout: float = 30.0) -> dict[str, Any]:
    """`GET url/healthz` until it is 200 (bounded); its JSON."""
    deadline = time.monotonic() + timeout
    while True:
        r = httpx.get(f"{url}/healthz", timeout=10)
        if r.status_code == 200:
            return dict(r.json())
        assert r.status_code == 503, r.text
        if time.monotonic() > deadline:
            raise AssertionError(f"{url}/healthz still {r.status_code} {r.text} after {timeout}s\n{logs(net)}")
        time.sleep(0.1)  # a poll interval, bounded by the deadline above


def test_router_and_worker_metrics_count_a_request(devnet: Devnet) -> None:
    router_ops = devnet.router["ops_url"]
    worker_ops = [p.info["ops_url"] for p in devnet.workers]
    assert router_ops and all(worker_ops)

    health = healthy(router_ops, devnet)
    assert health["status"] == "ok" and health["address"] == devnet.router["address"]
    for url in worker_ops:
        assert healthy(url, devnet)["models"] == [MODEL]
    # the workers joined the router before their ready files were written; the gateway's
    # client session is open once it served /v1/models
    c = gateway(devnet, "sk-test")
    assert [m.id for m in c.models.list().data] == [MODEL]

    before_router = metrics(router_ops)
    before_workers = [metrics(u) for u in worker_ops]
    assert total(before_router, "cocoon_router_model_workers") == len(worker_ops)
    assert total(before_router, "cocoon_router_client_sessions") >= 1
    for m in before_workers:
        assert total(m, "cocoon_worker_connected") == 1
        [(labels, one)] = m["cocoon_worker_model_info"]
        assert one == 1 and labels["model"] == MODEL and labels["execution_provider"].endswith("ExecutionProvider")

    raw = c.embeddings.with_raw_response.create(input=["metrics count this request"], model=MODEL)
    r = raw.parse()
    cost = int(raw.headers["x-cocoon-cost-nanoton"])
    assert cost > 0

    after_router = metrics(router_ops)
    same_epoch = total(after_router, "cocoon_router_epoch") == total(before_router, "cocoon_router_epoch")
    base = before_router if same_epoch else {}  # the usage metrics are per epoch
    assert total(after_router, "cocoon_router_epoch_requests") == total(base, "cocoon_router_epoch_requests") + 1
    assert (total(after_router, "cocoon_router_epoch_units")
            == total(base, "cocoon_router_epoch_units") + r.usage.prompt_tokens)
    assert (total(after_router, "cocoon_router_charged_nanoton_total")
            == total(before_router, "cocoon_router_charged_nanoton_total") + cost)
    assert total(after_router, "cocoon_router_store_commits_total") > total(before_router,
                                                                             "cocoon_router_store_commits_total")
    assert total(after_router, "cocoon_router_accounts") >= 1
    assert 0 <= total(after_router, "cocoon_router_directory_sync_age_seconds") < 5
    # the worker counts a request before it sends the answer the gateway waited for
    served = [total(metrics(u), "cocoon_worker_requests_served_total") - total(m, "cocoon_worker_requests_served_total")
              for u, m in zip(worker_ops, before_workers, strict=True)]
    assert sorted(served) == [0, 1]

    # the router redeems on a short timer in this devnet: the redeem is counted once it lands
    def redeemed() -> bool:
        redeems = metrics(router_ops)["cocoon_router_redeems_total"]
        return any(labels["status"] == "ok" and v >= 1 for labels, v in redeems)

    wait_until("a landed redeem counted", devnet, redeemed)

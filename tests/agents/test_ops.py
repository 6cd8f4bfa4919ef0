"""The agents' ops port: the router's and the worker's collectors over small fake states (the
router's over a real `RouterStore`), their health checks, and `offchain.ops`' HTTP server
(/healthz 200 and 503, /metrics in Prometheus' text format, port 0, -1, bind errors)."""

from __future__ import annotations

import asyncio
import math
import socket
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpx
import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from offchain.errors import ConfigError
from offchain.ops import running_ops
from offchain.router._ops import RouterCollector, router_health
from offchain.router._store import RouterStore
from offchain.worker._ops import WorkerCollector, worker_health

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def scrape(text: str) -> Samples:
    """Every sample of a Prometheus text page, by (name, labels)."""
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def collected(collector: Any) -> Samples:
    registry = CollectorRegistry()
    registry.register(collector)
    return scrape(generate_latest(registry).decode())


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples[(name, frozenset(labels.items()))]


# ---- the router ------------------------------------------------------------------------------
@dataclass
class FakeWorker:
    models: dict[str, bytes]
    in_flight: int = 0


@dataclass
class FakeAccount:
    unredeemed: int


@dataclass
class FakeRouter:
    store: RouterStore
    epoch_now: int = 7
    workers: dict[str, FakeWorker] = field(default_factory=dict)
    accounts: dict[str, FakeAccount] = field(default_factory=dict)
    client_sessions: int = 0
    directory: Any = field(default_factory=lambda: SimpleNamespace(synced_at=100.0))
    address: str = "0:" + "ab" * 32

    def epoch(self) -> int:
        return self.epoch_now


@pytest.fixture
def store(tmp_path: Path) -> Any:
    s = RouterStore(tmp_path / "router.db")
    yield s
    s.close()


async def test_router_collector_reads_state_and_books(store: RouterStore) -> None:
    router = FakeRouter(
        store,
        workers={
            "s1": FakeWorker({"mini": b"1", "big": b"2"}, in_flight=2),
            "s2": FakeWorker({"mini": b"1"}, in_flight=1),
            "s3": FakeWorker({}),  # joined with no allowed model
        },
        accounts={"c1": FakeAccount(40), "c2": FakeAccount(2)},
        client_sessions=2,
    )
    op = store.op_usage
    await store.write([
        store.op_account("c1", "0:01", b"k"), store.op_charge("c1", 100, 0),
        store.op_account("c2", "0:02", b"k"), store.op_charge("c2", 50, 7),
        op(epoch=7, provider="0:aa", model="mini", units=10, requests=1, latency_ms=5, earned=10_000),
        op(epoch=7, provider="0:aa", model="mini", units=5, requests=1, latency_ms=5, earned=5_000),
        op(epoch=7, provider="0:bb", model="mini", failures=1),
        op(epoch=6, provider="0:cc", model="mini", units=99, requests=9),  # an earlier epoch: not shown
        store.op_redeem("c1", 10, 0, 1.0, "ok"), store.op_redeem("c1", 20, 0, 2.0, "refused", "exit code 1201"),
    ])
    collector = RouterCollector(router, now=lambda: 102.5)
    try:
        s = collected(collector)
        assert value(s, "cocoon_router_workers") == 3
        assert value(s, "cocoon_router_model_workers", model="mini") == 2
        assert value(s, "cocoon_router_model_workers", model="big") == 1
        assert value(s, "cocoon_router_requests_in_flight") == 3
        assert value(s, "cocoon_router_client_sessions") == 2
        assert value(s, "cocoon_router_accounts") == 2
        assert value(s, "cocoon_router_unredeemed_nanoton") == 42
        assert value(s, "cocoon_router_charged_nanoton_total") == 157
        assert value(s, "cocoon_router_redeems_total", status="ok") == 1
        assert value(s, "cocoon_router_redeems_total", status="refused") == 1
        assert value(s, "cocoon_router_epoch") == 7
        assert value(s, "cocoon_router_epoch_units", provider="0:aa", model="mini") == 15
        assert value(s, "cocoon_router_epoch_requests", provider="0:aa", model="mini") == 2
        assert value(s, "cocoon_router_epoch_earned_nanoton", provider="0:aa", model="mini") == 15_000
        assert value(s, "cocoon_router_epoch_failures", provider="0:bb", model="mini") == 1
        assert not any(dict(labels).get("provider") == "0:cc" for _, labels in s)
        assert value(s, "cocoon_router_store_commits_total") == store.commits == 1
        assert value(s, "cocoon_router_directory_sync_age_seconds") == 2.5
    finally:
        collector.close()


async def test_router_collector_counts_redeems_incrementally(store: RouterStore) -> None:
    collector = RouterCollector(FakeRouter(store))
    try:
        s = collected(collector)
        assert value(s, "cocoon_router_redeems_total", status="ok") == 0  # both outcomes shown from the start
        assert value(s, "cocoon_router_redeems_total", status="refused") == 0
        await store.write([store.op_redeem("c", 1, 0, 1.0, "ok"), store.op_redeem("c", 1, 0, 2.0, "refused")])
        collected(collector)
        await store.write([store.op_redeem("c", 2, 0, 3.0, "ok"), store.op_redeem("c", 3, 0, 4.0, "ok")])
        s = collected(collector)
        assert value(s, "cocoon_router_redeems_total", status="ok") == 3
        assert value(s, "cocoon_router_redeems_total", status="refused") == 1
    finally:
        collector.close()


def test_router_collector_before_first_sync_reports_nan_age(store: RouterStore) -> None:
    router = FakeRouter(store, directory=SimpleNamespace(synced_at=None))
    collector = RouterCollector(router)
    try:
        assert math.isnan(value(collected(collector), "cocoon_router_directory_sync_age_seconds"))
    finally:
        collector.close()


def test_router_health_stale_or_unsynced_directory_is_unhealthy(store: RouterStore) -> None:
    router = FakeRouter(store, workers={"s": FakeWorker({"mini": b"1"})})
    now = [101.0]
    check = router_health(router, stale_after=3.0, now=lambda: now[0])
    ok, details = check()
    assert ok and details["workers"] == 1 and details["directory_sync_age_s"] == 1.0
    now[0] = 104.5
    ok, details = check()
    assert not ok and "for 4.5s" in details["reason"]
    router.directory.synced_at = None
    ok, details = check()
    assert not ok and "not synced" in details["reason"]


# ---- the worker ------------------------------------------------------------------------------
def fake_worker(*, connected: bool) -> Any:
    event = asyncio.Event()
    if connected:
        event.set()
    models = {
        "mini": SimpleNamespace(batcher=SimpleNamespace(queue_len=3)),
        "other": SimpleNamespace(batcher=SimpleNamespace(queue_len=0)),
    }
    return SimpleNamespace(connected=event, served=5, models=models,
                           config=SimpleNamespace(router_url="ws://127.0.0.1:1"))


def test_worker_collector_reads_connection_served_and_queues() -> None:
    w = fake_worker(connected=True)
    s = collected(WorkerCollector(w, {"mini": "CUDAExecutionProvider", "other": "CPUExecutionProvider"}))
    assert value(s, "cocoon_worker_connected") == 1
    assert value(s, "cocoon_worker_requests_served_total") == 5
    assert value(s, "cocoon_worker_queued_inputs", model="mini") == 3
    assert value(s, "cocoon_worker_queued_inputs", model="other") == 0
    assert value(s, "cocoon_worker_model_info", model="mini", execution_provider="CUDAExecutionProvider") == 1
    assert value(s, "cocoon_worker_model_info", model="other", execution_provider="CPUExecutionProvider") == 1
    w.connected.clear()
    w.served = 6
    s = collected(WorkerCollector(w, {}))
    assert value(s, "cocoon_worker_connected") == 0
    assert value(s, "cocoon_worker_requests_served_total") == 6
    assert value(s, "cocoon_worker_model_info", model="mini", execution_provider="unknown") == 1


def test_worker_health_disconnected_is_unhealthy() -> None:
    ok, details = worker_health(fake_worker(connected=True))()
    assert ok and details["served"] == 5 and details["models"] == ["mini", "other"]
    ok, details = worker_health(fake_worker(connected=False))()
    assert not ok and details["reason"] == "not connected to the router ws://127.0.0.1:1"


# ---- the HTTP server ---------------------------------------------------------------------------
async def test_ops_server_serves_healthz_and_metrics() -> None:
    registry = CollectorRegistry()
    w = fake_worker(connected=True)
    registry.register(WorkerCollector(w, {"mini": "CPUExecutionProvider"}))
    async with running_ops("127.0.0.1", 0, registry=registry, health=worker_health(w)) as url:
        assert url is not None and url.startswith("http://127.0.0.1:")
        async with httpx.AsyncClient(base_url=url, timeout=5) as http:
            r = await http.get("/healthz")
            assert r.status_code == 200
            assert r.json() == {"status": "ok", "router": "ws://127.0.0.1:1", "models": ["mini", "other"], "served": 5}
            w.connected.clear()
            r = await http.get("/healthz")
            assert r.status_code == 503
            assert r.json()["status"] == "unavailable"
            assert "not connected" in r.json()["reason"]
            r = await http.get("/metrics")
            assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
            families = {f.name: f for f in text_string_to_metric_families(r.text)}
            assert families["cocoon_worker_connected"].samples[0].value == 0
            assert families["cocoon_worker_requests_served"].type == "counter"
            assert (await http.get("/nothing")).status_code == 404
    with pytest.raises(httpx.ConnectError):
        async with httpx.AsyncClient(timeout=5) as http:
            await http.get(f"{url}/healthz")


async def test_ops_server_failing_health_check_is_503() -> None:
    def broken() -> tuple[bool, dict[str, Any]]:
        raise RuntimeError("boom")

    async with (running_ops("127.0.0.1", 0, registry=CollectorRegistry(), health=broken) as url,
                httpx.AsyncClient(timeout=5) as http):
        r = await http.get(f"{url}/healthz")
    assert r.status_code == 503 and "boom" in r.json()["reason"]


async def test_ops_server_negative_port_is_disabled() -> None:
    async with running_ops("127.0.0.1", -1, registry=CollectorRegistry(), health=lambda: (True, {})) as url:
        assert url is None


async def test_ops_server_busy_port_is_config_error() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        with pytest.raises(ConfigError, match="ops server cannot listen"):
            async with running_ops("127.0.0.1", taken.getsockname()[1], registry=CollectorRegistry(),
                                   health=lambda: (True, {})):
                pass

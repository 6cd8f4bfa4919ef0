"""The worker's `/metrics` and `/healthz` (served by `offchain.ops`), read at scrape time.

Metrics (all `cocoon_worker_*`), read from the `Worker` when Prometheus scrapes (nothing on
the request path updates them):

- `connected`: 1 while a session with the router is up, else 0.
- `requests_served_total`: requests answered with vectors and a signed receipt, since start.
- `queued_inputs{model}`: inputs waiting in or being computed by the model's batcher.
- `model_info{model,execution_provider}`: 1 per served model, with the onnxruntime
  execution provider it runs on (`CUDAExecutionProvider`, `CPUExecutionProvider`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Any

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, InfoMetricFamily, Metric
from prometheus_client.registry import Collector

__all__ = ["WorkerCollector", "worker_health"]

_P = "cocoon_worker_"


class WorkerCollector(Collector):
    """Prometheus collector over a `Worker` (see the module doc for what it yields).

    Args:
        worker: the worker (`connected`, `served`, `models` with their batchers).
        execution_providers: model name -> the execution provider its session runs on.
    """

    def __init__(self, worker: Any, execution_providers: Mapping[str, str]) -> None:
        self.worker = worker
        self.execution_providers = dict(execution_providers)

    def collect(self) -> Iterator[Metric]:
        w = self.worker
        yield GaugeMetricFamily(_P + "connected", "1 while connected to the router",
                                value=1 if w.connected.is_set() else 0)
        yield CounterMetricFamily(_P + "requests_served", "Requests answered with a signed receipt", value=w.served)
        q = GaugeMetricFamily(_P + "queued_inputs", "Inputs waiting in or computed by a model's batcher",
                              labels=["model"])
        info = InfoMetricFamily(_P + "model", "A model this worker serves", labels=["model"])
        for name, served in sorted(w.models.items()):
            q.add_metric([name], served.batcher.queue_len)
            info.add_metric([name], {"execution_provider": self.execution_providers.get(name, "unknown")})
        yield q
        yield info


def worker_health(worker: Any) -> Callable[[], tuple[bool, dict[str, Any]]]:
    """The worker's `/healthz` check: unhealthy while it is not connected to its router."""

    def check() -> tuple[bool, dict[str, Any]]:
        details: dict[str, Any] = {
            "router": worker.config.router_url,
            "models": sorted(worker.models),
            "served": worker.served,
        }
        if not worker.connected.is_set():
            return False, {**details, "reason": f"not connected to the router {worker.config.router_url}"}
        return True, details

    return check

"""The gateway's Prometheus metrics, in a registry of its own.

A registry per app (not prometheus-client's global one) lets one process run several
gateways, and lets tests build as many apps as they like without "Duplicated timeseries".
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

__all__ = ["CONTENT_TYPE", "GatewayMetrics"]

CONTENT_TYPE = CONTENT_TYPE_LATEST

_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)


class GatewayMetrics:
    """Requests by route and status, their latency, tokens served and nanoTON spent.

    `route` is the route's template (`/v1/models/{model}`), never the raw path, so that the
    number of series stays bounded whatever clients request.
    """

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter("cocoon_gateway_requests", "HTTP requests answered, by route, method and status",
                                ["route", "method", "status"], registry=self.registry)
        self.latency = Histogram("cocoon_gateway_request_duration_seconds", "Time to answer an HTTP request",
                                 ["route"], buckets=_LATENCY_BUCKETS, registry=self.registry)
        self.tokens = Counter("cocoon_gateway_tokens", "Input tokens embedded (the units the network billed)",
                              ["model"], registry=self.registry)
        self.inputs = Counter("cocoon_gateway_inputs", "Inputs embedded", ["model"], registry=self.registry)
        self.cost = Counter("cocoon_gateway_cost_nanoton", "nanoTON charged by the network for embeddings",
                            ["model"], registry=self.registry)

    def observe(self, route: str, method: str, status: int, seconds: float) -> None:
        self.requests.labels(route, method, str(status)).inc()
        self.latency.labels(route).observe(seconds)

    def served(self, model: str, *, inputs: int, units: int, cost: int) -> None:
        self.inputs.labels(model).inc(inputs)
        self.tokens.labels(model).inc(units)
        self.cost.labels(model).inc(cost)

    def render(self) -> bytes:
        return generate_latest(self.registry)

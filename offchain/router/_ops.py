"""The router's `/metrics` and `/healthz` (served by `offchain.ops`), read at scrape time.

Nothing on the request path updates a metric: `RouterCollector.collect()` reads the
router's in-memory state (workers, client sessions, accounts) and its SQLite books when
Prometheus scrapes. The books are read through a read-only connection of the collector's
own: in WAL mode a reader never waits for the router's commits (the store's connection and
its lock stay the request path's alone), and redeems are counted incrementally (rows after
the last one seen), so a scrape costs the same after a year of redeems as after one.

Metrics (all `cocoon_router_*`):

- `workers`, `model_workers{model}`, `requests_in_flight`, `client_sessions`, `accounts`:
  connected worker sessions, those serving each model, requests sent to workers and not yet
  answered, client sessions, channels with an account loaded since start.
- `charged_nanoton_total`: what clients were charged, ever (the books' accounts table).
- `unredeemed_nanoton`: charged and not yet redeemed on chain, over the loaded accounts.
- `redeems_total{status}`: redeems sent (`ok`, `refused`), since the store was created.
- `epoch`; `epoch_units{provider,model}`, `epoch_requests{...}`, `epoch_failures{...}`,
  `epoch_earned_nanoton{...}`: the usage ledger of the current epoch (what the epoch
  settlement will read), so these go back to 0 when an epoch starts.
- `store_commits_total`: SQLite commits since start (group commits: one per batch).
- `directory_sync_age_seconds`: since the directory's last completed poll round.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

__all__ = ["RouterCollector", "router_health"]

log = logging.getLogger("cocoon.router")

_P = "cocoon_router_"
_REDEEM_STATUSES = ("ok", "refused")


class _Books:
    """A read-only view of the router's SQLite file (opened on first use)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._db: sqlite3.Connection | None = None
        self._lock = threading.Lock()  # a scrape may come from any thread
        self._last_redeem = 0
        self.redeems: dict[str, int] = dict.fromkeys(_REDEEM_STATUSES, 0)

    def read(self, epoch: int) -> tuple[int, list[tuple[Any, ...]]]:
        """(charged total, [(provider, model, units, requests, failures, earned)] of `epoch`);
        updates `redeems`."""
        with self._lock:
            if self._db is None:
                self._db = sqlite3.connect(f"{self.path.resolve().as_uri()}?mode=ro", uri=True,
                                           isolation_level=None, check_same_thread=False)
            db = self._db
            rows = db.execute(
                "SELECT status, COUNT(*), MAX(id) FROM redeems WHERE id > ? GROUP BY status", (self._last_redeem,)
            ).fetchall()
            for status, n, last in rows:
                self.redeems[status] = self.redeems.get(status, 0) + n
                self._last_redeem = max(self._last_redeem, last)
            charged = db.execute(
                "SELECT COALESCE(SUM(charged_compute), 0) + COALESCE(SUM(charged_data), 0) FROM accounts"
            ).fetchone()[0]
            usage = db.execute(
                "SELECT provider, model, units, requests, failures, earned FROM usage WHERE epoch = ?"
                " ORDER BY provider, model",
                (epoch,),
            ).fetchall()
            return int(charged), usage

    def close(self) -> None:
        with self._lock:
            if self._db is not None:
                self._db.close()
                self._db = None


class RouterCollector(Collector):
    """Prometheus collector over a running `Router` (see the module doc for what it yields).

    Args:
        router: the router (`workers`, `accounts`, `store`, `directory`, `epoch()`).
        now: the clock the directory's `synced_at` is on (the event loop's: monotonic).
    """

    def __init__(self, router: Any, *, now: Callable[[], float] = time.monotonic) -> None:
        self.router = router
        self.now = now
        self._books = _Books(Path(router.store.path))

    def collect(self) -> Iterator[Metric]:
        r = self.router
        workers = list(r.workers.values())
        yield GaugeMetricFamily(_P + "workers", "Connected worker sessions", value=len(workers))
        by_model: dict[str, int] = {}
        for w in workers:
            for m in w.models:
                by_model[m] = by_model.get(m, 0) + 1
        g = GaugeMetricFamily(_P + "model_workers", "Connected workers serving a model", labels=["model"])
        for m, n in sorted(by_model.items()):
            g.add_metric([m], n)
        yield g
        yield GaugeMetricFamily(_P + "requests_in_flight", "Requests sent to workers and not answered yet",
                                value=sum(w.in_flight for w in workers))
        yield GaugeMetricFamily(_P + "client_sessions", "Connected client sessions", value=r.client_sessions)
        accounts = list(r.accounts.values())
        yield GaugeMetricFamily(_P + "accounts", "Channels with an account loaded since start", value=len(accounts))
        yield GaugeMetricFamily(_P + "unredeemed_nanoton", "Charged and not yet redeemed on chain (loaded accounts)",
                                value=sum(a.unredeemed for a in accounts))
        epoch = r.epoch()
        yield GaugeMetricFamily(_P + "epoch", "The current epoch (the usage metrics are this epoch's)", value=epoch)
        store = r.store
        yield CounterMetricFamily(_P + "store_commits", "SQLite commits of the router's books since start",
                                  value=store.commits)
        synced = r.directory.synced_at
        yield GaugeMetricFamily(_P + "directory_sync_age_seconds", "Seconds since the directory's last poll round",
                                value=float("nan") if synced is None else max(0.0, self.now() - synced))
        try:
            charged, usage = self._books.read(epoch)
        except sqlite3.Error as err:
            log.warning("metrics: cannot read the router's books %s: %s", self._books.path, err)
            return
        yield CounterMetricFamily(_P + "charged_nanoton", "nanoTON charged to clients, ever", value=charged)
        c = CounterMetricFamily(_P + "redeems", "Redeems sent, by outcome", labels=["status"])
        for status, n in sorted(self._books.redeems.items()):
            c.add_metric([status], n)
        yield c
        families = {
            "units": GaugeMetricFamily(_P + "epoch_units", "Units served this epoch", labels=["provider", "model"]),
            "requests": GaugeMetricFamily(_P + "epoch_requests", "Requests served this epoch",
                                          labels=["provider", "model"]),
            "failures": GaugeMetricFamily(_P + "epoch_failures", "Requests a worker failed this epoch",
                                          labels=["provider", "model"]),
            "earned": GaugeMetricFamily(_P + "epoch_earned_nanoton", "nanoTON earned by a provider this epoch",
                                        labels=["provider", "model"]),
        }
        for provider, model, units, requests, failures, earned in usage:
            for key, value in (("units", units), ("requests", requests), ("failures", failures), ("earned", earned)):
                families[key].add_metric([provider, model], value)
        yield from families.values()

    def close(self) -> None:
        """Close the collector's read connection (after the ops server stopped)."""
        self._books.close()


def router_health(router: Any, *, stale_after: float, now: Callable[[], float] = time.monotonic
                  ) -> Callable[[], tuple[bool, dict[str, Any]]]:
    """The router's `/healthz` check: unhealthy while the directory (the chain's view that
    admissions rely on) has not completed a poll round for `stale_after` seconds."""

    def check() -> tuple[bool, dict[str, Any]]:
        synced = router.directory.synced_at
        age = None if synced is None else max(0.0, now() - synced)
        details: dict[str, Any] = {
            "address": router.address,
            "workers": len(router.workers),
            "accounts": len(router.accounts),
            "directory_sync_age_s": None if age is None else round(age, 3),
        }
        if age is None:
            return False, {**details, "reason": "the directory has not synced with the chain yet"}
        if age > stale_after:
            return False, {**details, "reason": f"the directory has not synced with the chain for {age:.1f}s "
                                                f"(more than {stale_after:g}s)"}
        return True, details

    return check

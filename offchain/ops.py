"""What every agent serves besides its protocol: `/healthz` and a Prometheus `/metrics`, on
their own ops port, and the uvicorn plumbing the gateway shares.

    registry = CollectorRegistry()
    registry.register(MyCollector(state))          # reads the agent's state at scrape time
    async with running_ops("127.0.0.1", 0, registry=registry, health=check) as ops_url:
        ...                                          # ops_url goes into the ready file

`health()` returns `(ok, details)`: `GET /healthz` answers 200 `{"status": "ok", **details}`
or 503 `{"status": "unavailable", **details}` (details then hold a `reason`). `GET /metrics`
renders the registry in Prometheus' text format. Metrics come from custom collectors that
read the agent's state when scraped, so the request path never updates a metric.

uvicorn's `Server.serve` assumes it owns the process: it installs signal handlers and, when
it cannot bind, calls `sys.exit`. Here (`serve_asgi`) the socket is bound first (a bind
failure is a `ConfigError`, and port 0 is resolved before anyone is told), and signals are
left to the host (the CLI or a test), which stops the server by cancelling it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import AsyncIterator, Callable, Generator
from typing import Any

import uvicorn
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp

from offchain.errors import ConfigError

__all__ = ["HealthCheck", "listen", "ops_app", "running_ops", "serve_asgi", "serve_ops"]

log = logging.getLogger("cocoon.ops")

HealthCheck = Callable[[], tuple[bool, dict[str, Any]]]
"""`() -> (ok, details)`; called in the event loop on every `GET /healthz`: keep it cheap."""


class _Server(uvicorn.Server):
    """uvicorn's server without signal handling, reporting its port once it accepts."""

    def __init__(self, config: uvicorn.Config, *, port: int, ready: Callable[[int], None] | None) -> None:
        super().__init__(config)
        self._port = port
        self._ready = ready

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        if self.started and self._ready is not None:
            self._ready(self._port)


def listen(host: str, port: int, *, what: str = "ops server") -> socket.socket:
    """A listening TCP socket for `host:port` (its first address).

    The socket is created with an explicit `IPPROTO_TCP`, as `loop.create_server` would: asyncio
    sets TCP_NODELAY on accepted connections only when their `proto` says TCP, and without it
    every response uvicorn writes in two parts waits ~40 ms for a delayed ACK.

    Args:
        host: the address to bind.
        port: the TCP port; 0 lets the OS choose.
        what: how the error message names the server ("gateway").

    Raises:
        ConfigError: the host does not resolve, or the address cannot be bound.
    """
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP,
                                   flags=socket.AI_PASSIVE)
        family, kind, proto, _, address = infos[0]
        sock = socket.socket(family, kind, proto)
    except OSError as err:
        raise ConfigError(f"{what} cannot listen on {host}:{port}: {err}") from err
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        sock.bind(address)
        sock.listen(2048)
    except OSError as err:
        sock.close()
        raise ConfigError(f"{what} cannot listen on {host}:{port}: {err}") from err
    return sock


async def serve_asgi(app: ASGIApp, *, host: str, port: int, ready: Callable[[int], None] | None = None,
                     shutdown_timeout: int = 5, what: str = "ops server") -> None:
    """Serve `app` over HTTP on `host:port` with uvicorn, in the caller's loop, until cancelled.

    Args:
        app: the ASGI app.
        host: the address to listen on.
        port: the TCP port; 0 picks a free one, reported through `ready`.
        ready: called once, in the event loop, with the bound port when connections are
            accepted.
        shutdown_timeout: seconds in-flight requests get to finish once cancelled.
        what: how a bind error names the server.

    Raises:
        ConfigError: the address cannot be bound (in use, not local, ...).

    Cancelling is safe and is how the server stops: it stops accepting, lets requests in
    flight finish (up to `shutdown_timeout`), closes the socket, then re-raises
    `CancelledError`. A second cancellation during that shutdown stops it at once. Several
    may run concurrently on different ports.
    """
    sock = listen(host, port, what=what)
    try:
        config = uvicorn.Config(app, log_config=None, log_level="warning", access_log=False, lifespan="off",
                                timeout_graceful_shutdown=shutdown_timeout)
        server = _Server(config, port=sock.getsockname()[1], ready=ready)
        serving = asyncio.ensure_future(server.serve(sockets=[sock]))
        try:
            await asyncio.shield(serving)
        except asyncio.CancelledError:
            server.should_exit = True
            await serving  # a second cancellation lands here and cancels the server itself
            raise
    finally:
        sock.close()


def ops_app(registry: CollectorRegistry, health: HealthCheck) -> Starlette:
    """The ASGI app behind the ops port: `GET /healthz` and `GET /metrics` (module doc)."""

    async def healthz(request: Request) -> Response:
        try:
            ok, details = health()
        except Exception as err:  # a broken check is an unhealthy agent, not a 500
            log.exception("health check failed")
            ok, details = False, {"reason": f"the health check failed: {type(err).__name__}: {err}"}
        body = {"status": "", **details}
        body["status"] = "ok" if ok else "unavailable"  # first, and not a detail's to override
        return JSONResponse(body, status_code=200 if ok else 503)

    async def metrics(request: Request) -> Response:
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    return Starlette(routes=[Route("/healthz", healthz, methods=["GET"]), Route("/metrics", metrics, methods=["GET"])])


async def serve_ops(host: str, port: int, *, registry: CollectorRegistry, health: HealthCheck,
                    ready: Callable[[int], None] | None = None) -> None:
    """Serve `/healthz` and `/metrics` on `host:port` until cancelled (see `serve_asgi`).

    Raises:
        ConfigError: the address cannot be bound.

    Cancelling is safe and is how it stops; in-flight scrapes get a second to finish.
    """
    await serve_asgi(ops_app(registry, health), host=host, port=port, ready=ready, shutdown_timeout=1,
                     what="ops server")


@contextlib.asynccontextmanager
async def running_ops(host: str, port: int, *, registry: CollectorRegistry,
                      health: HealthCheck) -> AsyncIterator[str | None]:
    """Run `serve_ops` for the block; yields its URL (`http://host:port`) once it accepts.

    `port` 0 lets the OS choose; a negative port disables the ops server (yields None).
    On leaving the block the server is stopped and awaited. A server that fails later is
    logged; the agent goes on without it.

    Raises:
        ConfigError: the address cannot be bound (raised on entering the block).
    """
    if port < 0:
        yield None
        return
    bound: asyncio.Future[int] = asyncio.get_running_loop().create_future()

    def ready(p: int) -> None:
        if not bound.done():
            bound.set_result(p)

    task = asyncio.ensure_future(serve_ops(host, port, registry=registry, health=health, ready=ready))
    try:
        await asyncio.wait({task, bound}, return_when=asyncio.FIRST_COMPLETED)
        if not bound.done():
            task.result()  # it ended before accepting: its error (ConfigError), raised here
            raise ConfigError(f"the ops server on {host}:{port} stopped before it accepted connections")
        task.add_done_callback(_log_failure)
        url = f"http://{f'[{host}]' if ':' in host else host}:{bound.result()}"
        log.info("ops server on %s (/healthz, /metrics)", url)
        yield url
    finally:
        bound.cancel()
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)  # its failure, if any, was raised or logged


def _log_failure(task: asyncio.Task[None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("the ops server stopped: %s", task.exception())

"""Serving the gateway with uvicorn, inside the caller's event loop.

uvicorn's `Server.serve` assumes it owns the process: it installs signal handlers and, when
it cannot bind, calls `sys.exit`. Here the socket is bound first (a bind failure is a
`ConfigError`, and port 0 is resolved before anyone is told), and signals are left to the
host (the CLI or a test), which stops the gateway by cancelling `serve_gateway`.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import Callable, Generator

import uvicorn
from starlette.types import ASGIApp

from offchain.errors import ConfigError

__all__ = ["serve_gateway"]


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


def _listen(host: str, port: int) -> socket.socket:
    """A listening TCP socket for `host:port` (its first address).

    The socket is created with an explicit `IPPROTO_TCP`, as `loop.create_server` would: asyncio
    sets TCP_NODELAY on accepted connections only when their `proto` says TCP, and without it
    every response uvicorn writes in two parts waits ~40 ms for a delayed ACK.

    Raises:
        ConfigError: the host does not resolve, or the address cannot be bound.
    """
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP,
                                   flags=socket.AI_PASSIVE)
        family, kind, proto, _, address = infos[0]
        sock = socket.socket(family, kind, proto)
    except OSError as err:
        raise ConfigError(f"gateway cannot listen on {host}:{port}: {err}") from err
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        sock.bind(address)
        sock.listen(2048)
    except OSError as err:
        sock.close()
        raise ConfigError(f"gateway cannot listen on {host}:{port}: {err}") from err
    return sock


async def serve_gateway(app: ASGIApp, *, host: str, port: int, ready: Callable[[int], None] | None = None,
                        shutdown_timeout: int = 5) -> None:
    """Serve `app` over HTTP on `host:port` until cancelled.

    Args:
        app: the ASGI app (`create_app(...)`).
        host: the address to listen on (`127.0.0.1` unless the gateway has an `api_key`).
        port: the TCP port; 0 picks a free one, reported through `ready`.
        ready: called once, in the event loop, with the bound port when connections are
            accepted.
        shutdown_timeout: seconds in-flight requests get to finish once cancelled.

    Raises:
        ConfigError: the address cannot be bound (in use, not local, ...).

    Cancelling is safe and is how the gateway stops: it stops accepting, lets requests in
    flight finish (up to `shutdown_timeout`), closes the socket, then re-raises
    `CancelledError`. A second cancellation during that shutdown stops it at once. Call it
    once per app and port; several may run concurrently on different ports.
    """
    sock = _listen(host, port)
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

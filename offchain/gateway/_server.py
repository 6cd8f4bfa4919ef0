"""Serving the gateway with uvicorn, inside the caller's event loop (`offchain.ops.serve_asgi`,
which the agents' ops servers use too: no signal handlers, the socket bound first, port 0
resolved before anyone is told)."""

from __future__ import annotations

import socket
from collections.abc import Callable

from starlette.types import ASGIApp

from offchain.ops import listen, serve_asgi

__all__ = ["serve_gateway"]


def _listen(host: str, port: int) -> socket.socket:
    """A listening TCP socket for the gateway (`offchain.ops.listen`).

    Raises:
        ConfigError: the host does not resolve, or the address cannot be bound.
    """
    return listen(host, port, what="gateway")


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
    await serve_asgi(app, host=host, port=port, ready=ready, shutdown_timeout=shutdown_timeout, what="gateway")

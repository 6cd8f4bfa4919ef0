"""Keeping one outbound connection to a router up, as every provider agent does (workers,
data nodes): a peer behind NAT dials out, and dials again whenever the session ends."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Awaitable, Callable

from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidURI

from offchain.errors import CocoonError, RequestFailed

__all__ = ["LOST", "keep_connected"]

LOST = (OSError, ConnectionClosed, InvalidHandshake, InvalidURI, TimeoutError, CocoonError)
"""What ends a session without ending the agent: it reconnects."""


async def keep_connected(
    session: Callable[[], Awaitable[None]],
    *,
    stop: asyncio.Event,
    connected: asyncio.Event,
    max_delay: float,
    log: logging.Logger | logging.LoggerAdapter[logging.Logger],
    what: str,
) -> None:
    """Run `session()` until `stop` is set; after it ends (or fails with one of `LOST`, also
    inside an exception group from the session's TaskGroup) wait an exponential backoff with
    jitter, capped at `max_delay`, and run it again. A refusal by the router (RequestFailed,
    e.g. our Provider is not active) is logged and retried the same way: staking may fix it.
    Anything else propagates. Cancelling is safe."""
    delay = 0.2
    while not stop.is_set():
        try:
            await session()
            delay = 0.2
        except RequestFailed as err:
            log.warning("router refused this %s: %s", what, err)
        except LOST as err:
            log.info("router connection lost: %s", err or type(err).__name__)
        except ExceptionGroup as group:
            _, rest = group.split(LOST)
            if rest is not None:
                raise rest from None
            log.info("router connection lost: %s", group.exceptions[0])
        connected.clear()
        if stop.is_set():
            break
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), delay * (0.5 + random.random()))
        delay = min(max_delay, delay * 2)

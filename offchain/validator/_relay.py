"""The validator's end of relayed streams: TCP streams through data nodes, over its router
session, as byte transports for `offchain.protocol.tls_stream`.

    relay = RelayClient(peer.send)
    stream = await relay.open("news.cocoon.test", 443, task=crawl_id, avoid=[...])
    response = await http_get(TlsClient(ctx, host), stream.transport, "/")   # TLS is ours
    await stream.close()                       # clean: the router charges the crawl for it
    relay.handle(frame)                        # the session's reader hands over stream frames
    relay.lost("why")                          # the session is gone: every stream fails

`open` answers with the relaying node's Provider (`stream.node`, what a provenance record
names) or raises `StreamRefusedError` (the router's or the node's reason). A stream the
router or the node ends with an error raises `RelayLost` from `transport`; a clean end
returns b"" (the site closed). `close(error)` with an error tells the router the node failed
this fetch (the client then pays nothing for it).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from collections.abc import Awaitable, Callable, Iterable

from websockets.exceptions import ConnectionClosed

from offchain.protocol.wire import (
    MAX_STREAM_DATA,
    Frame,
    StreamClose,
    StreamData,
    StreamOpen,
    StreamOpened,
    StreamRefusal,
    StreamRefused,
)

__all__ = ["RelayClient", "RelayLost", "RelayedStream", "StreamRefusedError"]

Send = Callable[[Frame], Awaitable[None]]


class RelayLost(Exception):
    """The stream ended on an error before the exchange finished (the node or router said why)."""


class StreamRefusedError(Exception):
    def __init__(self, reason: StreamRefusal, message: str) -> None:
        super().__init__(f"{reason.name}: {message}")
        self.reason = reason
        self.message = message


class RelayedStream:
    """One open stream (see the module doc). `transport` is for one task at a time."""

    def __init__(self, relay: RelayClient, sid: int, host: str) -> None:
        self.relay = relay
        self.id = sid
        self.host = host
        self.node = ""
        self.address = ""
        self.up = 0
        self.down = 0
        self._incoming: asyncio.Queue[bytes | BaseException | None] = asyncio.Queue()
        self.closed = False

    async def transport(self, out: bytes) -> bytes:
        """Send `out` (split into frames), then the next bytes from the site; b"" once the
        stream closed cleanly. Raises `RelayLost` if it ended on an error."""
        for i in range(0, len(out), MAX_STREAM_DATA):
            if self.closed:
                break
            chunk = out[i : i + MAX_STREAM_DATA]
            self.up += len(chunk)
            try:
                await self.relay.send(StreamData(id=self.id, data=chunk))
            except ConnectionClosed as err:
                raise RelayLost("the router session closed") from err
        item = await self._incoming.get()
        if isinstance(item, BaseException):
            self._incoming.put_nowait(item)  # every later read fails the same way
            raise item
        if item is None:
            self._incoming.put_nowait(None)
            return b""
        return item

    async def close(self, error: str = "") -> None:
        """End the stream from our side (idempotent); `error` blames the relay for it."""
        if self.closed:
            return
        self.closed = True
        self.relay._streams.pop(self.id, None)
        with contextlib.suppress(ConnectionClosed):
            await self.relay.send(StreamClose(id=self.id, error=error[:1000]))

    def _feed(self, item: bytes | BaseException | None) -> None:
        if isinstance(item, bytes):
            self.down += len(item)
        self._incoming.put_nowait(item)


class RelayClient:
    """The streams of one router session (see the module doc)."""

    def __init__(self, send: Send, *, open_timeout: float = 20.0) -> None:
        self.send = send
        self.open_timeout = open_timeout
        self._ids = itertools.count(1)
        self._opening: dict[int, tuple[RelayedStream, asyncio.Future[StreamOpened | StreamRefused]]] = {}
        self._streams: dict[int, RelayedStream] = {}
        self._lost: str | None = None

    async def open(self, host: str, port: int, *, task: int, avoid: Iterable[str] = ()) -> RelayedStream:
        """A stream to `host`:`port` through a data node not in `avoid`.

        Raises:
            StreamRefusedError: refused (no node, the budget, the node's policy, ...).
            RelayLost: the session is gone, or no answer within `open_timeout`.
        """
        if self._lost is not None:
            raise RelayLost(self._lost)
        sid = next(self._ids)
        stream = RelayedStream(self, sid, host)
        fut: asyncio.Future[StreamOpened | StreamRefused] = asyncio.get_running_loop().create_future()
        self._opening[sid] = (stream, fut)
        self._streams[sid] = stream  # data may follow StreamOpened at once
        try:
            await self.send(StreamOpen(id=sid, host=host, port=port, task=task, avoid=sorted(set(avoid))))
            answer = await asyncio.wait_for(fut, self.open_timeout)
        except (ConnectionClosed, TimeoutError) as err:
            self._streams.pop(sid, None)
            with contextlib.suppress(ConnectionClosed):
                await self.send(StreamClose(id=sid, error="no answer to StreamOpen"))
            raise RelayLost(f"opening a stream to {host}: {err or type(err).__name__}") from err
        finally:
            self._opening.pop(sid, None)
        if isinstance(answer, StreamRefused):
            self._streams.pop(sid, None)
            raise StreamRefusedError(answer.reason, answer.message)
        stream.node = answer.node or ""
        stream.address = answer.address
        return stream

    def handle(self, frame: Frame) -> bool:
        """A frame from the router; False if it is not a stream frame."""
        if isinstance(frame, StreamOpened | StreamRefused):
            pending = self._opening.get(frame.id)
            if pending is not None and not pending[1].done():
                pending[1].set_result(frame)
            return True
        if isinstance(frame, StreamData):
            s = self._streams.get(frame.id)
            if s is not None and not s.closed:
                s._feed(frame.data)
            return True
        if isinstance(frame, StreamClose):
            s = self._streams.pop(frame.id, None)
            if s is not None:
                s._feed(RelayLost(frame.error) if frame.error else None)
            return True
        return False

    def lost(self, why: str) -> None:
        """The router session is gone: every stream and every opening fails with `why`."""
        self._lost = why
        for _, fut in list(self._opening.values()):
            if not fut.done():
                fut.set_exception(ConnectionClosed(None, None))
        for s in list(self._streams.values()):
            s._feed(RelayLost(why))
        self._streams.clear()

    @property
    def open_streams(self) -> int:
        return len(self._streams)

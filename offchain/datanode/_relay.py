"""The data node's relay engine: stream frames in, TCP connections out, bytes both ways.

    relay = Relay(peer.send, policy=Policy(), caps=Caps())
    await relay.handle(frame)       # StreamOpen / StreamData / StreamClose from the router
    await relay.close_all()         # the router connection is gone

For each `StreamOpen` the node checks the destination (`Policy.check`: port, then every
resolved address), connects to one of exactly the addresses it checked (the opener is
injected; default `asyncio.open_connection`), answers `StreamOpened(address)` or
`StreamRefused(reason)`, then pumps: what the target sends goes to the router as
`StreamData` frames, what the router sends is written to the target. The node never reads
what it moves (TLS records between the validator and the site).

Caps: at most `Caps.max_streams` streams at once; a stream whose bytes (both directions)
would pass `Caps.max_stream_bytes` is closed (`StreamClose(error=...)`, its socket aborted);
every byte either way first takes its share of the node's `TokenBucket`, so the node stays
within `Caps.bytes_per_second` (a shaped reader leaves the target's bytes in the kernel: TCP
pushes back). What the router sends for one stream waits in a buffer of at most
`max_buffered` bytes; a target that does not read past it gets its stream closed.

Ordering: frames of one stream are sent by one task, so `StreamClose` follows the stream's
last `StreamData`. A `StreamClose` from the router drops the stream at once (no answer).
Bytes are counted per stream (`StreamStats`, passed to `on_closed`), for reports only: the
router meters what it relays itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from offchain.datanode._policy import Allowed, Caps, Policy, TokenBucket
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

__all__ = ["Opener", "Relay", "Send", "StreamStats"]

log = logging.getLogger("cocoon.datanode")

Send = Callable[[Frame], Awaitable[None]]
Opener = Callable[[str, int], Awaitable[tuple[asyncio.StreamReader, asyncio.StreamWriter]]]


@dataclass
class StreamStats:
    """One stream's account: `up` router -> target, `down` target -> router (bytes)."""

    id: int
    host: str
    port: int
    address: str = ""
    up: int = 0
    down: int = 0
    error: str = ""

    @property
    def total(self) -> int:
        return self.up + self.down


@dataclass(eq=False)
class _Stream:
    stats: StreamStats
    queue: asyncio.Queue[bytes] = field(default_factory=asyncio.Queue)
    buffered: int = 0
    writer: asyncio.StreamWriter | None = None
    task: asyncio.Task[None] | None = None
    up_task: asyncio.Task[None] | None = None
    done: bool = False


class Relay:
    """The streams of one router connection (see the module doc)."""

    def __init__(
        self,
        send: Send,
        *,
        policy: Policy | None = None,
        caps: Caps | None = None,
        opener: Opener | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[object]] = asyncio.sleep,
        connect_timeout: float = 10.0,
        read_size: int = 16 * 1024,
        max_buffered: int = 1024 * 1024,
        on_closed: Callable[[StreamStats], None] | None = None,
    ) -> None:
        if not 1 <= read_size <= MAX_STREAM_DATA:
            raise ValueError(f"read_size must be within 1..{MAX_STREAM_DATA}")
        self.send = send
        self.policy = policy or Policy()
        self.caps = caps or Caps()
        self.opener: Opener = opener or asyncio.open_connection
        self.bucket = TokenBucket(self.caps.bytes_per_second, self.caps.burst_bytes, clock=clock)
        self.sleep = sleep
        self.connect_timeout = connect_timeout
        self.read_size = read_size
        self.max_buffered = max_buffered
        self.on_closed = on_closed
        self.relayed = 0  # bytes of every finished stream, both directions
        self.opened = 0
        self.refused = 0
        self._streams: dict[int, _Stream] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._closing = False

    @property
    def open_streams(self) -> int:
        return len(self._streams)

    def stats(self, stream_id: int) -> StreamStats | None:
        s = self._streams.get(stream_id)
        return s.stats if s else None

    async def handle(self, frame: Frame) -> bool:
        """Act on one frame from the router; False if it is not a stream frame (not ours)."""
        if isinstance(frame, StreamOpen):
            await self._open(frame)
        elif isinstance(frame, StreamData):
            await self._data(frame)
        elif isinstance(frame, StreamClose):
            s = self._streams.get(frame.id)
            if s is not None:
                await self._finish(s, frame.error and f"closed by the router: {frame.error}", notify=False)
        else:
            return False
        return True

    async def close_all(self) -> None:
        """Drop every stream (the router connection is gone: nothing is sent) and wait for them."""
        self._closing = True
        for s in list(self._streams.values()):
            await self._finish(s, "the router connection closed", notify=False)
        tasks = list(self._tasks)
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    # ---- router -> node ----------------------------------------------------------------
    async def _open(self, frame: StreamOpen) -> None:
        refusal: tuple[StreamRefusal, str] | None = None
        if self._closing:
            refusal = (StreamRefusal.SHUTTING_DOWN, "the node is shutting down")
        elif frame.id in self._streams:
            refusal = (StreamRefusal.DUPLICATE, f"stream {frame.id} is open")
        elif len(self._streams) >= self.caps.max_streams:
            refusal = (StreamRefusal.TOO_MANY_STREAMS, f"{self.caps.max_streams} streams are open")
        if refusal is not None:
            self.refused += 1
            await self.send(StreamRefused(id=frame.id, reason=refusal[0], message=refusal[1]))
            return
        s = _Stream(StreamStats(id=frame.id, host=frame.host, port=frame.port))
        self._streams[frame.id] = s
        s.task = self._spawn(self._run(s))

    async def _data(self, frame: StreamData) -> None:
        s = self._streams.get(frame.id)
        if s is None:  # already closed on our side (its StreamClose is on the way): dropped
            return
        n = len(frame.data)
        if s.stats.total + n > self.caps.max_stream_bytes:
            await self._finish(s, f"byte cap: the stream passed {self.caps.max_stream_bytes} bytes", notify=True)
            return
        if s.buffered + n > self.max_buffered:
            await self._finish(s, f"the target is not reading ({s.buffered} bytes waiting)", notify=True)
            return
        s.stats.up += n
        s.buffered += n
        s.queue.put_nowait(frame.data)

    # ---- one stream ----------------------------------------------------------------------
    def _spawn(self, coro: Awaitable[None]) -> asyncio.Task[None]:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def _run(self, s: _Stream) -> None:
        st = s.stats
        verdict = await asyncio.to_thread(self.policy.check, st.host, st.port)
        if s.done:
            return
        if not isinstance(verdict, Allowed):
            await self._refuse(s, verdict.reason, verdict.message)
            return
        reader: asyncio.StreamReader | None = None
        errors: list[str] = []
        for address in verdict.addresses:  # exactly the checked addresses, never the name
            try:
                reader, s.writer = await asyncio.wait_for(self.opener(address, st.port), self.connect_timeout)
            except (OSError, TimeoutError) as err:
                errors.append(f"{address}: {err or type(err).__name__}")
                continue
            st.address = address
            break
        if reader is None or s.writer is None:
            await self._refuse(s, StreamRefusal.CONNECT_FAILED, "; ".join(errors))
            return
        if s.done:  # dropped while connecting
            s.writer.transport.abort()
            return
        self.opened += 1
        await self._send(s, StreamOpened(id=st.id, address=st.address))
        s.up_task = self._spawn(self._pump_up(s))
        await self._pump_down(s, reader)

    async def _pump_down(self, s: _Stream, reader: asyncio.StreamReader) -> None:
        st = s.stats
        while not s.done:
            try:
                chunk = await reader.read(self.read_size)
            except OSError as err:
                await self._finish(s, f"the target failed: {err}", notify=True)
                return
            if not chunk:
                await self._finish(s, "", notify=True)
                return
            if st.total + len(chunk) > self.caps.max_stream_bytes:
                await self._finish(s, f"byte cap: the stream passed {self.caps.max_stream_bytes} bytes", notify=True)
                return
            st.down += len(chunk)
            await self._shape(len(chunk))
            if not await self._send(s, StreamData(id=st.id, data=chunk)):
                return

    async def _pump_up(self, s: _Stream) -> None:
        assert s.writer is not None
        while not s.done:
            data = await s.queue.get()
            s.buffered -= len(data)
            await self._shape(len(data))
            try:
                s.writer.write(data)
                await s.writer.drain()
            except OSError as err:
                await self._finish(s, f"writing to the target failed: {err}", notify=True)
                return

    async def _shape(self, n: int) -> None:
        delay = self.bucket.take(n)
        if delay > 0:
            await self.sleep(delay)

    async def _send(self, s: _Stream, frame: Frame) -> bool:
        """Send a frame of `s`; a router connection that is gone drops the stream quietly."""
        try:
            await self.send(frame)
        except asyncio.CancelledError:
            raise
        except Exception as err:
            log.info("stream %d: the router connection failed: %s", s.stats.id, err)
            await self._finish(s, "the router connection failed", notify=False)
            return False
        return True

    async def _refuse(self, s: _Stream, reason: StreamRefusal, message: str) -> None:
        s.done = True
        self._streams.pop(s.stats.id, None)
        self.refused += 1
        log.info("stream %d to %s:%d refused: %s", s.stats.id, s.stats.host, s.stats.port, message)
        with contextlib.suppress(Exception):
            await self.send(StreamRefused(id=s.stats.id, reason=reason, message=message[:1000]))

    async def _finish(self, s: _Stream, error: str, *, notify: bool) -> None:
        """End `s` once: stop its tasks (not the caller), close its socket, tell the router."""
        if s.done:
            return
        s.done = True
        s.stats.error = error
        self._streams.pop(s.stats.id, None)
        me = asyncio.current_task()
        for t in (s.task, s.up_task):
            if t is not None and t is not me and not t.done():
                t.cancel()
        if s.writer is not None:
            if error:
                s.writer.transport.abort()
            else:
                s.writer.close()
        self.relayed += s.stats.total
        if error:
            log.info("stream %d to %s closed: %s", s.stats.id, s.stats.address or s.stats.host, error)
        if self.on_closed is not None:
            self.on_closed(s.stats)
        if notify:
            with contextlib.suppress(Exception):
                await self.send(StreamClose(id=s.stats.id, error=error[:1000]))

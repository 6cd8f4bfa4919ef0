"""Dynamic batching: many small requests, one model run.

An embedding model's cost per input falls steeply with batch size (one ONNX run over 32
inputs costs far less than 32 runs over one), but each request a worker receives carries
only a few inputs. The batcher holds submissions for at most `max_wait` (2 ms) or until
`max_batch` inputs (32) are waiting, runs them together and hands each submitter its rows.

Two layers, as everywhere in the agents (DESIGN.md, "Sans-I/O cores"):

- `BatchFormer` decides: which inputs form the next batch, when it is due, whose results
  are complete, who a failure reaches. Plain data and an injected `now`; tested without an
  event loop.
- `Batcher` moves: asyncio futures for the submitters, one worker thread for the model
  (onnxruntime's run releases the GIL but blocks its caller, so the event loop must not be
  that caller).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import time
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from types import TracebackType
from typing import Self

import numpy as np

from ._embedding import Model
from ._tokenizer import Input

__all__ = ["Batch", "BatchFormer", "Batcher", "Done", "Part"]

logger = logging.getLogger("cocoon.models")


@dataclass(frozen=True, slots=True)
class Part[K]:
    """A slice of one submission inside a batch: its inputs [start, stop) at batch row `offset`."""

    key: K
    start: int
    stop: int
    offset: int


@dataclass(frozen=True, slots=True)
class Batch[K, T]:
    """The inputs of one model run and where each came from."""

    inputs: list[T]
    parts: tuple[Part[K], ...]


@dataclass(frozen=True, slots=True)
class Done[K]:
    """A submission whose every input has a result: its vectors and units, in its own order."""

    key: K
    vectors: np.ndarray
    units: list[int]


class _Submission[K, T]:
    __slots__ = ("arrived", "got", "inputs", "key", "received", "sent")

    def __init__(self, key: K, inputs: list[T], arrived: float) -> None:
        self.key = key
        self.inputs = inputs
        self.arrived = arrived
        self.sent = 0  # inputs handed to batches so far
        self.got = 0  # inputs with results so far
        self.received: list[tuple[int, np.ndarray, list[int]]] = []


class BatchFormer[K, T]:
    """Forms batches from submissions, first come first served; no I/O, no clock of its own.

    A submission may be split: if it does not fit in what is left of a batch, its first
    inputs fill the batch and the rest start the next one, so no batch exceeds `max_batch`
    and no submission waits behind a later one.
    """

    def __init__(self, *, max_batch: int = 32, max_wait: float = 0.002) -> None:
        """Args:
        max_batch: most inputs in one model run.
        max_wait: seconds the oldest waiting input may wait for company.
        """
        if max_batch < 1 or max_wait < 0:
            raise ValueError("max_batch must be at least 1 and max_wait non-negative")
        self.max_batch = max_batch
        self.max_wait = max_wait
        self._subs: dict[K, _Submission[K, T]] = {}
        self._queue: deque[_Submission[K, T]] = deque()  # submissions with inputs not yet sent
        self._waiting = 0
        self._running = 0

    @property
    def waiting(self) -> int:
        """Inputs not yet in a batch."""
        return self._waiting

    @property
    def running(self) -> int:
        """Inputs in batches taken and not yet finished or failed."""
        return self._running

    @property
    def queue_len(self) -> int:
        """Inputs waiting or running: the load a worker reports."""
        return self._waiting + self._running

    def add(self, key: K, inputs: Sequence[T], now: float) -> None:
        """Queue a submission of one or more inputs under a key unique among those pending."""
        if not inputs:
            raise ValueError("a submission needs at least one input")
        if key in self._subs:
            raise ValueError(f"submission {key!r} is already pending")
        sub = _Submission(key, list(inputs), now)
        self._subs[key] = sub
        self._queue.append(sub)
        self._waiting += len(sub.inputs)

    def _head(self) -> _Submission[K, T] | None:
        while self._queue and self._subs.get(self._queue[0].key) is not self._queue[0]:
            self._queue.popleft()  # discarded or failed while waiting
        return self._queue[0] if self._queue else None

    def deadline(self) -> float | None:
        """When the oldest waiting input must be sent, or None when nothing waits."""
        head = self._head()
        return None if head is None else head.arrived + self.max_wait

    def take(self, now: float, *, flush: bool = False) -> Batch[K, T] | None:
        """The next batch, if one is due: `max_batch` inputs are waiting, or the deadline passed.

        Args:
            now: the caller's clock, the one `add` was given.
            flush: take what is waiting even if the batch is not due (closing).
        """
        deadline = self.deadline()
        if deadline is None:
            return None
        if not flush and self._waiting < self.max_batch and now < deadline:
            return None
        inputs: list[T] = []
        parts: list[Part[K]] = []
        while len(inputs) < self.max_batch and (sub := self._head()) is not None:
            n = min(self.max_batch - len(inputs), len(sub.inputs) - sub.sent)
            parts.append(Part(sub.key, sub.sent, sub.sent + n, len(inputs)))
            inputs.extend(sub.inputs[sub.sent : sub.sent + n])
            sub.sent += n
            if sub.sent == len(sub.inputs):
                self._queue.popleft()
        self._waiting -= len(inputs)
        self._running += len(inputs)
        return Batch(inputs, tuple(parts))

    def finish(self, batch: Batch[K, T], vectors: np.ndarray, units: Sequence[int]) -> list[Done[K]]:
        """Record a batch's results; the submissions that are now complete.

        Raises:
            ValueError: the results do not have one row per input (nothing is recorded; the
                caller should `fail` the batch).
        """
        n = len(batch.inputs)
        if len(vectors) != n or len(units) != n:
            raise ValueError(f"model returned {len(vectors)} vectors and {len(units)} counts for {n} inputs")
        self._running -= n
        done: list[Done[K]] = []
        for part in batch.parts:
            sub = self._subs.get(part.key)
            if sub is None:
                continue  # discarded, or failed in another batch
            rows = slice(part.offset, part.offset + part.stop - part.start)
            sub.received.append((part.start, vectors[rows], list(units[rows])))
            sub.got += part.stop - part.start
            if sub.got == len(sub.inputs):
                del self._subs[part.key]
                sub.received.sort(key=lambda r: r[0])
                all_units = [u for _, _, us in sub.received for u in us]
                done.append(Done(part.key, np.concatenate([v for _, v, _ in sub.received]), all_units))
        return done

    def fail(self, batch: Batch[K, T]) -> list[K]:
        """Record that a batch's run failed; the keys of the submissions that fail with it.

        A split submission fails as a whole: its inputs still waiting are dropped, and its
        results from other batches are discarded. Submissions in other batches are untouched.
        """
        self._running -= len(batch.inputs)
        failed: list[K] = []
        for part in batch.parts:
            if part.key in self._subs:
                self.discard(part.key)
                failed.append(part.key)
        return failed

    def discard(self, key: K) -> None:
        """Forget a submission (its submitter went away); its inputs still waiting are dropped."""
        sub = self._subs.pop(key, None)
        if sub is not None:
            self._waiting -= len(sub.inputs) - sub.sent


class Batcher:
    """Dynamic batching in front of a model, for an asyncio worker.

    Use as `async with Batcher(model) as b: vectors, units = await b.submit(inputs)`, or run
    `await b.run()` in the agent's TaskGroup and `await b.close()` to stop. One batch runs at
    a time, in one worker thread: the model already uses every core for one batch, and
    inputs arriving meanwhile simply make the next batch larger.
    """

    def __init__(
        self,
        model: Model,
        *,
        max_batch: int = 32,
        max_wait_ms: float = 2.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.model = model
        self._former: BatchFormer[int, Input] = BatchFormer(max_batch=max_batch, max_wait=max_wait_ms / 1000)
        self._clock = clock
        self._futures: dict[int, asyncio.Future[tuple[np.ndarray, list[int]]]] = {}
        self._ids = itertools.count()
        self._wake = asyncio.Event()
        self._stopped = asyncio.Event()
        self._closing = False
        self._started = False
        self._task: asyncio.Task[None] | None = None

    @property
    def queue_len(self) -> int:
        """Inputs waiting or being computed: the load a worker reports to its router."""
        return self._former.queue_len

    async def __aenter__(self) -> Self:
        self._task = asyncio.create_task(self.run(), name=f"batcher-{self.model.spec.name}")
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    async def submit(self, inputs: Sequence[Input]) -> tuple[np.ndarray, list[int]]:
        """Embed `inputs` in whatever batches they land in: (vectors (n, dim) float32, units per input).

        Inputs are checked here, before they join a batch, so a malformed one fails only its
        own submission.

        Raises:
            InvalidMessage: a malformed input.
            RuntimeError: the batcher is closed.
            Exception: whatever the model raised for a batch this submission was in.
        """
        if self._closing:
            raise RuntimeError("batcher is closed")
        items = list(inputs)
        self.model.tokenizer.check(items)
        if not items:
            return np.zeros((0, self.model.spec.dim), dtype=np.float32), []
        key = next(self._ids)
        future: asyncio.Future[tuple[np.ndarray, list[int]]] = asyncio.get_running_loop().create_future()
        self._futures[key] = future
        self._former.add(key, items, self._clock())
        self._wake.set()
        try:
            return await future
        finally:
            self._futures.pop(key, None)
            self._former.discard(key)  # a no-op unless the submitter was cancelled

    async def run(self) -> None:
        """Form and run batches until closed and drained."""
        if self._started:
            raise RuntimeError("batcher is already running")
        self._started = True
        loop = asyncio.get_running_loop()
        executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="cocoon-model")
        try:
            while True:
                batch = self._former.take(self._clock(), flush=self._closing)
                if batch is not None:
                    await self._run_batch(loop, executor, batch)
                    continue
                if self._closing and self._former.waiting == 0:
                    return
                deadline = self._former.deadline()
                self._wake.clear()
                timeout = None if deadline is None else max(0.0, deadline - self._clock())
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(timeout):
                        await self._wake.wait()
        finally:
            executor.shutdown(wait=False, cancel_futures=True)
            for future in self._futures.values():
                if not future.done():
                    future.set_exception(RuntimeError("batcher stopped before this submission ran"))
            self._stopped.set()

    async def _run_batch(
        self, loop: asyncio.AbstractEventLoop, executor: ThreadPoolExecutor, batch: Batch[int, Input]
    ) -> None:
        try:
            vectors, units = await loop.run_in_executor(executor, self.model.embed_with_units, batch.inputs)
            done = self._former.finish(batch, vectors, units)
        except Exception as exc:
            failed = self._former.fail(batch)
            logger.warning("batch of %d inputs failed (%d submissions): %r", len(batch.inputs), len(failed), exc)
            for key in failed:
                future = self._futures.get(key)
                if future is not None and not future.done():
                    future.set_exception(exc)
            return
        for d in done:
            future = self._futures.get(d.key)
            if future is not None and not future.done():
                future.set_result((d.vectors, d.units))

    async def close(self) -> None:
        """Stop taking submissions, finish the ones pending, and return when the loop has ended."""
        self._closing = True
        self._wake.set()
        if self._task is not None:
            await self._task
        elif self._started:
            await self._stopped.wait()
        else:
            await self.run()  # never started: drain here, so no submitter waits forever

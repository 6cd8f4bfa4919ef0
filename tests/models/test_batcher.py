"""Dynamic batching: the pure batch-forming core, then the asyncio layer over an instrumented model."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Sequence

import numpy as np
import pytest

from offchain.errors import InvalidMessage
from offchain.models import Batcher, BatchFormer, EchoModel, Input, ModelSpec, Part

# -- the pure core ---------------------------------------------------------------------------


def rows(batch_inputs: list[int]) -> tuple[np.ndarray, list[int]]:
    """Fake results: each input's vector is its own value, its units the value + 1."""
    return np.array(batch_inputs, dtype=np.float32)[:, None], [x + 1 for x in batch_inputs]


def test_submissions_within_the_window_share_a_batch() -> None:
    f: BatchFormer[str, int] = BatchFormer(max_batch=32, max_wait=0.002)
    f.add("a", [1, 2], now=10.0)
    f.add("b", [3], now=10.001)
    assert f.take(now=10.0015) is None  # not full, not due
    assert f.deadline() == pytest.approx(10.002)
    batch = f.take(now=10.002)
    assert batch is not None
    assert batch.inputs == [1, 2, 3]
    assert batch.parts == (Part("a", 0, 2, 0), Part("b", 0, 1, 2))
    assert (f.waiting, f.running, f.queue_len) == (0, 3, 3)
    done = f.finish(batch, *rows(batch.inputs))
    assert [(d.key, d.vectors[:, 0].tolist(), d.units) for d in done] == [("a", [1, 2], [2, 3]), ("b", [3], [4])]
    assert f.queue_len == 0 and f.take(now=99.0) is None and f.deadline() is None


def test_a_full_batch_goes_at_once() -> None:
    f: BatchFormer[int, int] = BatchFormer(max_batch=4, max_wait=1.0)
    f.add(1, [1, 2], now=0.0)
    assert f.take(now=0.0) is None
    f.add(2, [3, 4], now=0.0)
    batch = f.take(now=0.0)
    assert batch is not None and batch.inputs == [1, 2, 3, 4]


def test_flush_takes_what_waits() -> None:
    f: BatchFormer[int, int] = BatchFormer(max_batch=4, max_wait=1.0)
    f.add(1, [1], now=0.0)
    batch = f.take(now=0.0, flush=True)
    assert batch is not None and batch.inputs == [1]


def test_oversize_submission_is_split_and_reassembled() -> None:
    f: BatchFormer[str, int] = BatchFormer(max_batch=32, max_wait=0.0)
    f.add("big", list(range(70)), now=0.0)
    f.add("late", [1000], now=0.0)
    batches = []
    while (b := f.take(now=0.0)) is not None:
        batches.append(b)
    assert [len(b.inputs) for b in batches] == [32, 32, 7]
    assert batches[2].parts == (Part("big", 64, 70, 0), Part("late", 0, 1, 6))  # FIFO: the rest of big first
    # results may come back in any order; rows are put back in the submission's order
    assert f.finish(batches[1], *rows(batches[1].inputs)) == []
    done = f.finish(batches[2], *rows(batches[2].inputs))
    assert [d.key for d in done] == ["late"]
    (big,) = f.finish(batches[0], *rows(batches[0].inputs))
    assert big.vectors[:, 0].tolist() == list(range(70)) and big.units == list(range(1, 71))
    assert f.queue_len == 0


def test_a_failure_reaches_only_that_batchs_submitters() -> None:
    f: BatchFormer[str, int] = BatchFormer(max_batch=4, max_wait=0.0)
    f.add("a", [1, 2], now=0.0)
    f.add("split", [3, 4, 5, 6], now=0.0)  # 2 inputs in batch 1, 2 in batch 2
    f.add("c", [7, 8], now=0.0)
    first = f.take(now=0.0)
    assert first is not None and first.inputs == [1, 2, 3, 4]
    assert sorted(f.fail(first)) == ["a", "split"]
    assert (f.waiting, f.running) == (2, 0)  # split's remaining inputs were dropped
    second = f.take(now=0.0)
    assert second is not None and second.inputs == [7, 8]
    assert [d.key for d in f.finish(second, *rows(second.inputs))] == ["c"]
    assert f.queue_len == 0


def test_discard_and_bad_results() -> None:
    f: BatchFormer[str, int] = BatchFormer(max_batch=2, max_wait=0.0)
    f.add("gone", [1, 2, 3], now=0.0)
    f.add("kept", [4], now=0.0)
    first = f.take(now=0.0)
    assert first is not None
    f.discard("gone")  # its submitter was cancelled mid-way
    assert (f.waiting, f.running) == (1, 2)
    with pytest.raises(ValueError, match="1 vectors"):
        f.finish(first, np.zeros((1, 1)), [1])
    assert f.running == 2  # nothing recorded
    assert f.finish(first, *rows(first.inputs)) == []
    second = f.take(now=0.0)
    assert second is not None and second.inputs == [4]
    with pytest.raises(ValueError, match="already pending"):
        f.add("kept", [5], now=0.0)
    with pytest.raises(ValueError, match="at least one"):
        f.add("empty", [], now=0.0)


# -- the asyncio layer -----------------------------------------------------------------------


class CountingModel(EchoModel):
    """The echo model, recording each batch; it can be told to fail or to block a batch."""

    def __init__(self, spec: ModelSpec, *, fail_calls: Sequence[int] = ()) -> None:
        super().__init__(spec)
        self.batches: list[list[Input]] = []
        self.fail_calls = set(fail_calls)
        self.gate: threading.Event | None = None

    def embed_with_units(self, inputs: Sequence[Input]) -> tuple[np.ndarray, list[int]]:
        self.batches.append(list(inputs))
        if self.gate is not None:
            assert self.gate.wait(5)
        if len(self.batches) in self.fail_calls:
            raise RuntimeError(f"model failed on call {len(self.batches)}")
        return super().embed_with_units(inputs)


@pytest.fixture
def model(echo_spec: ModelSpec) -> CountingModel:
    return CountingModel(echo_spec)


def texts(prefix: str, n: int) -> list[str]:
    return [f"{prefix} input number {i}" for i in range(n)]


async def test_concurrent_submissions_merge_into_one_run(model: CountingModel) -> None:
    async with Batcher(model, max_batch=32, max_wait_ms=50) as batcher:
        jobs = [texts(f"client{c}", 3) for c in range(10)]
        results = await asyncio.gather(*(batcher.submit(j) for j in jobs))
    assert [len(b) for b in model.batches] == [30]
    for job, (vectors, units) in zip(jobs, results, strict=True):
        expected, expected_units = EchoModel(model.spec).embed_with_units(job)
        np.testing.assert_array_equal(vectors, expected)
        assert units == expected_units == [6, 6, 6]


async def test_oversize_submission_spans_batches(model: CountingModel) -> None:
    job = texts("big", 70)
    async with Batcher(model, max_batch=32, max_wait_ms=1) as batcher:
        vectors, units = await batcher.submit(job)
    assert [len(b) for b in model.batches] == [32, 32, 6]
    np.testing.assert_array_equal(vectors, model.embed(job))
    assert len(units) == 70


async def test_a_failing_batch_fails_only_its_submitters(echo_spec: ModelSpec) -> None:
    model = CountingModel(echo_spec, fail_calls=[1])
    async with Batcher(model, max_batch=2, max_wait_ms=50) as batcher:
        a, b = await asyncio.gather(
            batcher.submit(texts("a", 2)),  # fills batch 1, which fails
            batcher.submit(texts("b", 2)),  # batch 2
            return_exceptions=True,
        )
        assert isinstance(a, RuntimeError) and "call 1" in str(a)
        assert not isinstance(b, BaseException)
        np.testing.assert_array_equal(b[0], model.embed(texts("b", 2)))
        later, _ = await batcher.submit(["still serving"])  # the batcher keeps going
        assert later.shape == (1, 8)
        assert batcher.queue_len == 0


async def test_malformed_input_fails_at_submit_alone(model: CountingModel) -> None:
    async with Batcher(model, max_wait_ms=20) as batcher:
        good = asyncio.create_task(batcher.submit(["fine"]))
        with pytest.raises(InvalidMessage):
            await batcher.submit([[]])
        vectors, _ = await good
    assert vectors.shape == (1, 8) and model.batches == [["fine"]]


async def test_queue_len_counts_waiting_and_running(model: CountingModel) -> None:
    model.gate = threading.Event()
    async with Batcher(model, max_batch=4, max_wait_ms=0) as batcher:
        first = asyncio.create_task(batcher.submit(texts("x", 4)))
        while not model.batches:  # the model thread is running, the event loop is not blocked
            await asyncio.sleep(0.001)
        second = asyncio.create_task(batcher.submit(texts("y", 3)))
        await asyncio.sleep(0)
        assert batcher.queue_len == 7
        model.gate.set()
        await asyncio.gather(first, second)
        assert batcher.queue_len == 0
    assert [len(b) for b in model.batches] == [4, 3]


async def test_cancelled_submitter_is_dropped(model: CountingModel) -> None:
    async with Batcher(model, max_wait_ms=30) as batcher:
        doomed = asyncio.create_task(batcher.submit(texts("doomed", 5)))
        kept = asyncio.create_task(batcher.submit(["kept"]))
        await asyncio.sleep(0)
        doomed.cancel()
        vectors, _ = await kept
        assert vectors.shape == (1, 8)
        with pytest.raises(asyncio.CancelledError):
            await doomed
        assert batcher.queue_len == 0
    assert model.batches == [["kept"]]


async def test_close_drains_then_refuses(model: CountingModel) -> None:
    batcher = Batcher(model, max_batch=32, max_wait_ms=10_000)  # only close() makes these due
    async with asyncio.TaskGroup() as tg:
        tg.create_task(batcher.run())
        pending = [tg.create_task(batcher.submit(texts(f"p{i}", 2))) for i in range(3)]
        await asyncio.sleep(0.01)
        assert batcher.queue_len == 6 and model.batches == []
        await batcher.close()
    assert all(len(p.result()[0]) == 2 for p in pending)
    assert [len(b) for b in model.batches] == [6]
    with pytest.raises(RuntimeError, match="closed"):
        await batcher.submit(["too late"])


async def test_close_without_run_still_drains(model: CountingModel) -> None:
    batcher = Batcher(model)
    job = asyncio.create_task(batcher.submit(["x"]))
    await asyncio.sleep(0)
    await batcher.close()
    assert (await job)[1] == [3]


async def test_empty_submission(model: CountingModel) -> None:
    async with Batcher(model) as batcher:
        vectors, units = await batcher.submit([])
    assert vectors.shape == (0, 8) and units == [] and model.batches == []

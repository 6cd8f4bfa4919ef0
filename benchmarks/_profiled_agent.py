"""`python -m benchmarks._profiled_agent ARGS`: the `cocoon` command (`offchain.cli`) with a
cProfile switch and (in a validator) phase timers, for benchmarks only
(`crawl_vs_direct.py --profile` starts the devnet's agents through it; product code is
untouched: the timers wrap functions from the outside, in this process only).

SIGUSR1 zeroes the timers and opens a window, with cProfile on too if the file
`$COCOON_BENCH_PROFILE_DIR/cprofile.on` exists then; SIGUSR2 closes it and writes
`$COCOON_BENCH_PROFILE_DIR/<name>.timing.json` (and `<name>.prof` with cProfile; `<name>` =
`$COCOON_BENCH_PROFILE_NAME`, default the pid), so only a chosen window (one crawl) is
measured, not the agent's start-up.

- The timers (validator only): per wrapped function, calls, wall seconds (for coroutines:
  from the call to its return, waits included, so concurrent calls overlap) and, for plain
  functions, the calling thread's CPU seconds (`time.thread_time`: right for the threads
  `asyncio.to_thread` uses too). Their own cost is a few microseconds a call.
- cProfile (3.12: `sys.monitoring`, so it sees every thread and slows all Python code
  several times) uses its default wall clock: its figures are relative; measure with the
  timers, look with the profile.
"""

from __future__ import annotations

import cProfile
import functools
import inspect
import json
import os
import signal
import sys
import time
from pathlib import Path
from typing import Any

_TIMERS: dict[str, list[float]] = {}  # name -> [calls, wall s, cpu s, max wall s]


def _timed(name: str, fn: Any) -> Any:
    if inspect.iscoroutinefunction(fn):

        @functools.wraps(fn)
        async def awrapper(*args: Any, **kwargs: Any) -> Any:
            t0 = time.perf_counter()
            try:
                return await fn(*args, **kwargs)
            finally:
                dt = time.perf_counter() - t0
                t = _TIMERS.setdefault(name, [0, 0.0, 0.0, 0.0])
                t[0] += 1
                t[1] += dt
                t[3] = max(t[3], dt)

        return awrapper

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        t0, c0 = time.perf_counter(), time.thread_time()
        try:
            return fn(*args, **kwargs)
        finally:
            dt = time.perf_counter() - t0
            t = _TIMERS.setdefault(name, [0, 0.0, 0.0, 0.0])
            t[0] += 1
            t[1] += dt
            t[2] += time.thread_time() - c0
            t[3] = max(t[3], dt)

    return wrapper


def _patch_validator() -> None:
    from offchain.mesh import Peer
    from offchain.protocol import tls_stream
    from offchain.validator import _crawler
    from offchain.validator._agent import Validator
    from offchain.validator._crawl import Frontier
    from offchain.validator._crawl_store import CrawlStore
    from offchain.validator._relay import RelayClient, RelayedStream
    from offchain.validator._store import ValidatorStore

    C = _crawler.Crawler
    for attr in ("_fetch", "_record", "_robots", "_page"):
        setattr(C, attr, _timed(f"Crawler.{attr}", getattr(C, attr)))
    RelayClient.open = _timed("RelayClient.open (StreamOpen -> StreamOpened)", RelayClient.open)
    C.run = _timed("Crawler.run (the whole crawl)", C.run)
    _crawler.NodeBook.observe = _timed("NodeBook.observe (per fetch: reputation)", _crawler.NodeBook.observe)
    Validator._node_changed = _timed(
        "Validator._node_changed (store.write + Reputation frame)", Validator._node_changed
    )
    ValidatorStore.write = _timed("ValidatorStore.write (validator.db, await commit)", ValidatorStore.write)
    RelayedStream.close = _timed("RelayedStream.close (StreamClose sent)", RelayedStream.close)
    CrawlStore.write = _timed("CrawlStore.write (await commit)", CrawlStore.write)
    CrawlStore._commit = _timed("CrawlStore._commit (thread)", CrawlStore._commit)
    Peer.send = _timed("Peer.send (validator -> router)", Peer.send)
    _crawler.http_get = _timed("http_get (TLS handshake + GET over the relay)", _crawler.http_get)
    _crawler.extract = _timed("extract (trafilatura + lxml, thread)", _crawler.extract)
    _crawler.sign_record = _timed("sign_record", _crawler.sign_record)
    Frontier.next = _timed("Frontier.next", Frontier.next)
    Frontier.done = _timed("Frontier.done", Frontier.done)
    tls_stream.TlsClient.feed = _timed("TlsClient.feed (decrypt, handshake steps)", tls_stream.TlsClient.feed)
    tls_stream.TlsClient.__init__ = _timed("TlsClient.__init__ (wrap_bio, ClientHello)", tls_stream.TlsClient.__init__)


def main() -> int:
    out = Path(os.environ.get("COCOON_BENCH_PROFILE_DIR", "."))
    name = os.environ.get("COCOON_BENCH_PROFILE_NAME", str(os.getpid()))
    state: dict[str, Any] = {}

    def start(*_: object) -> None:
        if "t0" in state:
            return
        _TIMERS.clear()
        state["t0"] = time.perf_counter()
        if (out / "cprofile.on").exists():
            state["p"] = cProfile.Profile()
            state["p"].enable()

    def stop(*_: object) -> None:
        t0 = state.pop("t0", None)
        if t0 is None:
            return
        prof = state.pop("p", None)
        if prof is not None:
            prof.disable()
        window = time.perf_counter() - t0
        out.mkdir(parents=True, exist_ok=True)
        if prof is not None:
            prof.dump_stats(out / f"{name}.prof")
        timers = {
            k: {"calls": int(v[0]), "wall_s": round(v[1], 4), "cpu_s": round(v[2], 4), "max_wall_s": round(v[3], 4)}
            for k, v in _TIMERS.items()
        }
        tmp = out / f"{name}.timing.json.tmp"
        tmp.write_text(json.dumps({"window_s": window, "cprofile": prof is not None, "timers": timers}, indent=1))
        tmp.replace(out / f"{name}.timing.json")  # last: the benchmark waits for it

    signal.signal(signal.SIGUSR1, start)
    signal.signal(signal.SIGUSR2, stop)
    if name.startswith("validator"):
        _patch_validator()
    from offchain.cli import main as cli_main

    return cli_main(sys.argv[1:])


if __name__ == "__main__":
    sys.exit(main())

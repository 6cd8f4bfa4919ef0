"""A small process supervisor: start agents as real processes, wait until they say they are
ready (a ready file, or an HTTP probe), stop or kill them, keep their logs.

The end-to-end tests and `cocoon devnet` start networks with this same code: one way to
start a network, not two. Every wait is bounded; nothing sleeps a fixed time.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from offchain.errors import CocoonError

__all__ = ["Proc", "Supervisor", "SupervisorError", "free_port"]

PROJECT_ROOT = Path(__file__).resolve().parents[2]


class SupervisorError(CocoonError):
    """A process exited or did not become ready in time; the message has its log's tail."""


def free_port() -> int:
    """A port the OS says is free now (bound and released: another process may race for it,
    which is why agents that can bind port 0 do, and report it in their ready file)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Proc:
    name: str
    argv: list[str]
    log: Path
    popen: subprocess.Popen[bytes]
    ready_file: Path | None = None
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def output(self, tail: int = 40) -> str:
        try:
            lines = self.log.read_text(errors="replace").splitlines()
        except FileNotFoundError:
            return ""
        return "\n".join(lines[-tail:])


class Supervisor:
    """Owns the processes it starts; `close()` (or leaving `with`) kills any still running."""

    def __init__(self, workdir: Path | str, *, env: Mapping[str, str] | None = None) -> None:
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.env = dict(os.environ if env is None else env)
        self.procs: dict[str, Proc] = {}

    def __enter__(self) -> Supervisor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def start(
        self, name: str, argv: Sequence[str], *, env: Mapping[str, str] | None = None, ready_file: Path | None = None
    ) -> Proc:
        """Start `argv` (run with this Python when it starts with "-m") as process `name`."""
        if name in self.procs and self.procs[name].alive():
            raise SupervisorError(f"{name} is already running")
        args = [sys.executable, *argv] if argv and argv[0] == "-m" else list(argv)
        log = self.workdir / f"{name}.log"
        if ready_file is not None and ready_file.exists():
            ready_file.unlink()
        penv = {**self.env, **(env or {}), "PYTHONUNBUFFERED": "1"}
        with open(log, "ab") as out:
            popen = subprocess.Popen(
                args, cwd=PROJECT_ROOT, env=penv, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
            )
        proc = Proc(name, args, log, popen, ready_file)
        self.procs[name] = proc
        return proc

    def wait_ready(
        self, proc: Proc, *, timeout: float = 60.0, probe: Callable[[], bool] | None = None
    ) -> dict[str, Any]:
        """Block until `proc`'s ready file exists (its JSON becomes `proc.info`) or `probe()`
        is true; raise SupervisorError (with its log) if it exits or the timeout passes."""
        deadline = time.monotonic() + timeout
        delay = 0.02
        while True:
            if proc.popen.poll() is not None:
                raise SupervisorError(f"{proc.name} exited with {proc.popen.returncode}:\n{proc.output()}")
            if proc.ready_file is not None and proc.ready_file.exists():
                try:
                    proc.info = json.loads(proc.ready_file.read_text())
                    return proc.info
                except json.JSONDecodeError:
                    pass  # written atomically, but be lenient with other writers
            if probe is not None and probe():
                return proc.info
            if time.monotonic() > deadline:
                raise SupervisorError(f"{proc.name} was not ready within {timeout:g}s:\n{proc.output()}")
            time.sleep(delay)
            delay = min(0.2, delay * 1.5)

    def stop(self, name: str, *, sig: int = signal.SIGTERM, timeout: float = 20.0) -> int | None:
        """Send `sig` and wait for the exit (SIGKILL after `timeout`); returns the exit code."""
        proc = self.procs.get(name)
        if proc is None or proc.popen.poll() is not None:
            return proc.popen.returncode if proc else None
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, sig)
        try:
            return proc.popen.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            return proc.popen.wait(timeout)

    def kill(self, name: str) -> int | None:
        return self.stop(name, sig=signal.SIGKILL)

    def close(self, grace: float = 5.0) -> None:
        """Stop every process: SIGTERM to all at once (agents commit their state and exit),
        SIGKILL to any still running after `grace` seconds. Each runs in its own process
        group, so a child's own children end with it."""
        alive = [p for p in self.procs.values() if p.popen.poll() is None]
        for p in alive:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(p.pid, signal.SIGTERM)
        deadline = time.monotonic() + grace
        for p in alive:
            with contextlib.suppress(subprocess.TimeoutExpired):
                p.popen.wait(max(0.0, deadline - time.monotonic()))
        for p in alive:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(p.pid, signal.SIGKILL)  # the group: also what a finished leader left
            with contextlib.suppress(subprocess.TimeoutExpired):
                p.popen.wait(10)


def http_ok(url: str, timeout: float = 2.0) -> bool:
    """Whether GET `url` answers 2xx (a readiness probe)."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:
            return 200 <= r.status < 300
    except (urllib.error.URLError, ConnectionError, OSError, TimeoutError):
        return False

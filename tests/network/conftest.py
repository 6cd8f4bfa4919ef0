"""Fixtures for the chain plumbing: real `cocoon localnet` processes on loopback.

`localnet` is one shared server (a block per message) for the read/write API tests;
`start_localnet(...)` starts private ones for restart, timer and kill tests. Every process
started here is killed by its pid at the end of the test that started it.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from offchain.ton.build import PROJECT_ROOT

STARTUP_TIMEOUT = 30.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class LocalnetProcess:
    """A `cocoon localnet` subprocess: its URL, state file and lifecycle."""

    state: Path | None
    block_time: float = 0.0
    wallets: int = 4
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen[bytes] | None = None
    log: Path | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/api/v2"

    def start(self, *, quiet: bool = True) -> LocalnetProcess:
        args = [
            sys.executable, "-m", "offchain.ton.localnet", "--port", str(self.port),
            "--block-time", str(self.block_time), "--wallets", str(self.wallets),
        ] + (["--quiet"] if quiet else [])
        args += ["--state", str(self.state)] if self.state is not None else ["--memory"]
        self.log = Path(os.environ.get("TMPDIR", "/tmp")) / f"localnet-{self.port}-{time.time_ns()}.log"
        with open(self.log, "wb") as out:
            self.proc = subprocess.Popen(args, cwd=PROJECT_ROOT, stdout=out, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"localnet exited with {self.proc.returncode}:\n{self.output()}")
            try:
                self.get("getMasterchainInfo")
                return self
            except (urllib.error.URLError, ConnectionError, OSError):
                time.sleep(0.1)
        raise RuntimeError(f"localnet did not start in {STARTUP_TIMEOUT}s:\n{self.output()}")

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log and self.log.exists() else ""

    def get(self, method: str, **params: object) -> dict:
        """GET a method; returns the decoded JSON (raises HTTPError on 4xx/5xx)."""
        q = urllib.parse.urlencode({k: v for k, v in params.items() if v is not None})
        with urllib.request.urlopen(f"{self.url}/{method}?{q}", timeout=10) as r:
            return json.loads(r.read())

    def request(self, method: str, path: str, body: object = None, raw: bytes | None = None) -> tuple[int, dict]:
        """Any request; returns (status, JSON body) whatever the status."""
        data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
        req = urllib.request.Request(f"{self.url}/{path}", data=data, method=method,
                                     headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=10) as r:
                return r.status, json.loads(r.read())
        except urllib.error.HTTPError as err:
            return err.code, json.loads(err.read())

    def post(self, path: str, body: object) -> tuple[int, dict]:
        return self.request("POST", path, body)

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 10.0) -> int | None:
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else None
        self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait(timeout)

    def kill(self) -> None:
        self.stop(signal.SIGKILL)


@pytest.fixture
def start_localnet(tmp_path: Path) -> Iterator[Callable[..., LocalnetProcess]]:
    """`start_localnet(block_time=0.2, state=path)`: a private server, killed at teardown."""
    started: list[LocalnetProcess] = []

    def start(*, block_time: float = 0.0, state: Path | str | None = "default", wallets: int = 4,
              port: int | None = None) -> LocalnetProcess:
        st = tmp_path / "localnet.json" if state == "default" else state
        p = LocalnetProcess(state=st, block_time=block_time, wallets=wallets)  # type: ignore[arg-type]
        if port is not None:
            p.port = port
        started.append(p)
        return p.start()

    yield start
    for p in started:
        p.kill()


@pytest.fixture(scope="session")
def localnet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalnetProcess]:
    """One shared server for the package, a block per message, with its own state file."""
    p = LocalnetProcess(state=tmp_path_factory.mktemp("localnet") / "state.json", block_time=0.0, wallets=6)
    p.start()
    yield p
    p.kill()

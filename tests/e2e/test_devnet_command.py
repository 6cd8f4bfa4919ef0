"""`cocoon devnet` as a person runs it: a subprocess, its output, its files, its children.

- SIGINT in the middle of the start (agents half up) leaves no process behind either.

Processes are found by the COCOON_DEVNET=<workdir> marker the devnet puts in every child's
environment, so a child that escaped its parent would still be found.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SENTENCE_QUERY = "coral reefs filmed by a remotely operated vehicle on the sea floor"
SENTENCE_PAGE = "/science/deep-sea-survey"


def leftovers(workdir: Path) -> list[int]:
    """Live processes whose environment carries this devnet's marker."""
    marker = f"COCOON_DEVNET={workdir.resolve()}".encode()
    found = []
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            env = (d / "environ").read_bytes()
            state = (d / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if state != "Z" and marker in env.split(b"\0"):
            found.append(int(d.name))
    return found


def cocoon(*args: str, **kw: object) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "offchain.cli", *args], cwd=ROOT, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, **kw)  # type: ignore[call-overload]


def wait_for(what: str, check: object, timeout: float, proc: subprocess.Popen[str] | None = None) -> object:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = check()  # type: ignore[operator]
        if got:
            return got
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"{what}: the command exited with {proc.returncode}:\n{proc.stdout.read()}")
        time.sleep(0.2)
    raise AssertionError(f"{what}: not within {timeout:g}s")


def stop(proc: subprocess.Popen[str], workdir: Path) -> str:
    """SIGINT, then: the command exits within 30 s and no process of its devnet is left."""
    proc.send_signal(signal.SIGINT)
    try:
        out, _ = proc.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        raise
    wait_for("every child process ends", lambda: not leftovers(workdir), 15)
    return out


def test_sigint_while_starting_leaves_no_process(tmp_path: Path) -> None:
    work = tmp_path / "devnet"
    proc = cocoon("devnet", "--dir", str(work), "--home", str(tmp_path / "home"), "--workers", "1",
                  "--datanodes", "2", "--validators", "1", "--threshold", "1")
    try:
        # the agents are starting (their configs are written just before each starts)
        wait_for("agents start", lambda: len(list(work.glob("*.toml"))) >= 3, 120, proc)
        assert leftovers(work), "the devnet's processes are running"
    finally:
        out = stop(proc, work) if proc.poll() is None else ""
    assert proc.returncode == 130, out
    assert "interrupted" in out, out

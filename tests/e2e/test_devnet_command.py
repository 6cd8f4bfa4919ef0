"""`cocoon devnet` as a person runs it: a subprocess, its output, its files, its children.

- The whole loop on a smaller network (1 worker, 2 validators with quorum 2, 2 data nodes,
  6 pages), with `--serve`: the command prints the books balanced to the nanoTON (and writes
  them as JSON), the semantic index verifies against the chain, `cocoon search` answers
  through the running network with the page holding a known sentence first, and SIGINT then
  stops the command and every process it started.
- SIGINT in the middle of the start (agents half up) leaves no process behind either.

Processes are found by the COCOON_DEVNET=<workdir> marker the devnet puts in every child's
environment, so a child that escaped its parent would still be found.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


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


def wait_for(what: str, check: object, timeout: float, proc: subprocess.Popen[str] | None = None,
             output: object = None) -> object:
    """`check()` until truthy (bounded); fails naming `what`, with the command's output
    (`output()` when the check reads it itself) if it exited."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = check()  # type: ignore[operator]
        if got:
            return got
        if proc is not None and proc.poll() is not None:
            text = output() if output is not None else proc.stdout.read()  # type: ignore[operator,union-attr]
            raise AssertionError(f"{what}: the command exited with {proc.returncode}:\n{text}")
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


def test_devnet_runs_the_whole_loop_and_serves(tmp_path: Path) -> None:
    work = tmp_path / "devnet"
    summary = tmp_path / "summary.json"
    proc = cocoon("devnet", "--dir", str(work), "--home", str(tmp_path / "home"), "--workers", "1",
                  "--datanodes", "2", "--validators", "2", "--threshold", "2", "--pages", "6",
                  "--summary-json", str(summary), "--serve", env={**os.environ, "COLUMNS": "200"})
    lines: list[str] = []
    try:
        assert proc.stdout is not None
        os.set_blocking(proc.stdout.fileno(), False)

        def serving() -> bool:
            while chunk := proc.stdout.readline():  # type: ignore[union-attr]
                lines.append(chunk)
            return any("OpenAI-compatible base URL" in x for x in lines)

        wait_for("the demo finishes and the network serves", serving, 300, proc, output=lambda: "".join(lines))
        books = json.loads(summary.read_text())
        right = books["claimed"] + books["unclaimed"] + books["protocol"] + sum(books["carries"].values()) \
            + books["pots"]
        assert books["balanced"] and books["deposited"] == right > 0, books
        assert books["redeemed"] == books["charged_compute"] + books["charged_data"], books
        assert books["charged_compute"] > 0 and books["charged_data"] > 0, books
        roles = {e["role"] for e in books["earners"]}
        assert {"gpu", "bandwidth", "router", "validator"} <= roles, books["earners"]
        assert all(e["claimed"] > 0 for e in books["earners"] if e["earned"] > 50_000_000), books["earners"]

        index = Path(books["index"])
        home = {**os.environ, "COCOON_HOME": str(tmp_path / "home")}  # the devnet's recorded deployment
        for what in (["dataset", "verify"], ["index", "verify"]):
            verify = subprocess.run([sys.executable, "-m", "offchain.cli", *what, str(index), "--network", "localnet"],
                                    cwd=ROOT, capture_output=True, text=True, timeout=120, env=home)
            assert verify.returncode == 0, verify.stdout + verify.stderr
            assert "checked" in verify.stdout, verify.stdout

        # a sentence of one crawled content page: that page must come first
        from offchain.dataset import Dataset

        pages = [r.record for r in Dataset.open(index).records() if not r.record.url.endswith("/")]
        page = max(pages, key=lambda r: len(r.main_text))
        sentence = page.main_text.split(". ")[1]
        search = subprocess.run([sys.executable, "-m", "offchain.cli", "search", sentence, "--dir", str(work),
                                 "--json"], cwd=ROOT, capture_output=True, text=True, timeout=120, env=home)
        assert search.returncode == 0, search.stdout + search.stderr
        hits = json.loads(search.stdout)["hits"]
        assert hits and hits[0]["url"] == page.url, (sentence, hits)
    finally:
        out = "".join(lines) + (stop(proc, work) if proc.poll() is None else "")
    assert "balanced" in out, out

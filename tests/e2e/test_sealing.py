"""Requests are sealed end to end: the router forwards and bills ciphertext only.

A unique sentence goes through the gateway (the SDK seals it); afterwards it is searched for
in everything of the router's: its log, its SQLite files, and its process memory (read from
/proc, as a debugger would). The search itself is checked on a process known to hold a sentence (the control), or its
finding nothing would prove nothing."""

from __future__ import annotations

import os
import re
import uuid
from pathlib import Path

import pytest

from offchain.devnet import Devnet

from ._helpers import MODEL, gateway


def process_memory_has(pid: int, needle: bytes) -> bool:
    """Whether any readable, writable mapping of process `pid` contains `needle`."""
    maps = Path(f"/proc/{pid}/maps").read_text().splitlines()
    with open(f"/proc/{pid}/mem", "rb", buffering=0) as mem:
        for line in maps:
            m = re.match(r"([0-9a-f]+)-([0-9a-f]+) (\S+)", line)
            if m is None or not m.group(3).startswith("rw"):
                continue
            start, end = int(m.group(1), 16), int(m.group(2), 16)
            try:
                mem.seek(start)
                if needle in mem.read(end - start):
                    return True
            except (OSError, ValueError, OverflowError):
                continue
    return False


def files_have(folder: Path, needle: bytes) -> list[Path]:
    return [p for p in folder.rglob("*") if p.is_file() and needle in p.read_bytes()]


@pytest.mark.skipif(not os.access("/proc/self/mem", os.R_OK), reason="needs /proc/<pid>/mem")
def test_router_never_sees_the_plaintext(devnet: Devnet) -> None:
    secret = f"my confidential prompt {uuid.uuid4().hex}"
    client = gateway(devnet, "sk-test")
    for _ in range(3):
        r = client.embeddings.create(input=[secret], model=MODEL)
        assert len(r.data[0].embedding) == 384
    needle = secret.encode()
    router = devnet.sup.procs["router"]
    assert not files_have(devnet.workdir / "router", needle), "plaintext in the router's SQLite files"
    assert needle not in router.log.read_bytes(), "plaintext in the router's log"
    assert not process_memory_has(router.pid, needle), "plaintext in the router's memory"


def test_the_memory_search_finds_what_a_process_holds() -> None:
    """The control of the search itself: a process that holds a sentence (as a live object)
    is found to hold it. (Whether an agent still holds a text it handled once depends on its
    allocator, so agents are not the control: only the absence above is asserted of them.)"""
    import subprocess
    import sys

    secret = f"held by a live object {uuid.uuid4().hex}"
    proc = subprocess.Popen(
        [sys.executable, "-c", f"s = {secret!r}.encode() * 2; print('ready', flush=True); input()"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
    )
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == b"ready"
        assert process_memory_has(proc.pid, secret.encode())
        assert not process_memory_has(proc.pid, f"never held {uuid.uuid4().hex}".encode())
    finally:
        proc.kill()
        proc.wait(10)

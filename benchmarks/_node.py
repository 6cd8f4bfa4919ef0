"""Run a benchmark's @ton/sandbox half: a Node script reading a JSON request on stdin."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]


class NodeRunError(RuntimeError):
    """The Node script failed; the message is the last line of its stderr."""


def run_node(script: str, request: dict[str, Any]) -> dict[str, Any]:
    """`node benchmarks/<script>` with `request` as JSON on stdin; its stdout parsed as JSON.

    Raises:
        NodeRunError: the script exited non-zero.
    """
    proc = subprocess.run(
        ["node", str(ROOT / "benchmarks" / script)],
        input=json.dumps(request),
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    if proc.returncode != 0:
        raise NodeRunError(f"@ton/sandbox run failed: {proc.stderr.strip().splitlines()[-1:]}")
    return json.loads(proc.stdout)

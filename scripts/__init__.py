"""Blueprint-style scripts: each module exports `async def run(provider, args)`.

`run_script(name, argv)` parses the shared options (`--network`, `--wallet`), builds the
`NetworkProvider` and calls `scripts.<name>.run(provider, rest)`; the CLI maps commands to it.
"""

from __future__ import annotations

from scripts._runner import run_script

__all__ = ["run_script"]

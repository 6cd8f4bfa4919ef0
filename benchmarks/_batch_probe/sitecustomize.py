"""Measurement shim for benchmarks/embed_throughput.py: counts the worker's model runs.

Put on PYTHONPATH of a devnet only by that benchmark, and active only in a process whose
environment names COCOON_BATCH_PROBE (a file path) and
whose command line is the worker's: it wraps
`EmbeddingModel.embed_with_units` (the call the worker's Batcher makes once per batch) to
count batches and inputs, and rewrites the file ("batches inputs") after every batch. The
cost is one counter update and one small write per batch (a batch takes ~100 ms).
"""

import os
import sys

_path = os.environ.get("COCOON_BATCH_PROBE")
if _path and "worker" in sys.argv:  # `python -m offchain.cli agent worker ...`
    try:
        from offchain.models import _embedding

        _orig = _embedding.EmbeddingModel.embed_with_units
        _seen = [0, 0]

        def _counted(self, inputs):  # type: ignore[no-untyped-def]
            out = _orig(self, inputs)
            _seen[0] += 1
            _seen[1] += len(inputs)
            with open(_path, "w") as f:
                f.write(f"{_seen[0]} {_seen[1]}\n")
            return out

        _embedding.EmbeddingModel.embed_with_units = _counted
    except Exception:  # never break the process being measured
        pass

"""The inference baseline: one model, one process, a plain loop, no batcher, no mesh.

Whatever the worker, the batcher or the mesh adds is measured against this number, so it
runs the very same `offchain.models` code path (`model.embed`) with nothing around it.

    .venv/bin/python benchmarks/_bare_onnx.py [--model all-MiniLM-L6-v2] [--n 256] [--batch 1 32]
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from collections.abc import Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from offchain.models import Input, Model, builtin_models, load_model  # noqa: E402

_WORDS = (  # noqa: SIM905 (a paragraph reads better than 40 quoted words)
    "the a network provider client router worker model token voucher channel payment proof "
    "runs sends pays signs checks verifies serves embeds counts stores relays answers quickly "
    "today every small large fast private secure remote local new old GPU inference request"
).split()


def sample_texts(n: int, *, seed: int = 0, words: tuple[int, int] = (8, 20)) -> list[str]:
    """`n` deterministic sentences of 8-20 words: a realistic embedding request, reproducible."""
    rng = random.Random(seed)
    return [" ".join(rng.choices(_WORDS, k=rng.randint(*words))).capitalize() + "." for _ in range(n)]


def bare_embed_loop(model: Model, texts: Sequence[Input], batch_size: int) -> float:
    """Sentences per second embedding `texts` in consecutive batches of `batch_size`.

    One warm-up batch runs first (onnxruntime allocates its arenas on the first run), so
    the figure is steady-state throughput.
    """
    if batch_size < 1 or not texts:
        raise ValueError("need a positive batch size and at least one text")
    model.embed(list(texts[:batch_size]))
    start = time.perf_counter()
    for i in range(0, len(texts), batch_size):
        model.embed(list(texts[i : i + batch_size]))
    return len(texts) / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="all-MiniLM-L6-v2")
    parser.add_argument("--n", type=int, default=256, help="sentences per measurement")
    parser.add_argument("--batch", type=int, nargs="+", default=[1, 32])
    parser.add_argument("--threads", type=int, default=None, help="onnxruntime intra-op threads")
    args = parser.parse_args()
    model = load_model(builtin_models()[args.model], intra_op_threads=args.threads)
    texts = sample_texts(args.n)
    for batch in args.batch:
        rate = bare_embed_loop(model, texts, batch)
        print(f"{args.model} on {model.provider}: batch {batch:>3}: {rate:8.1f} sentences/s")


if __name__ == "__main__":
    main()

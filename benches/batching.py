"""Forward-pass throughput by batch size and by token budget: where ``CPU_TOKEN_BUDGET`` comes from.

SmolLM2-135M on this machine's device, the statements of ../shared/data/cities.csv (or the built-in ones) and, for
longer inputs, the same statements in SmolLM2's chat template; the pass runs through ``forward_batches`` up to block
16 (what ``Probe(layers=16)`` runs), with no store. For each setting: real (unpadded) tokens per second, the median
of ``--repeats`` runs, each after one untimed warm-up. Writes ``bench-results/batching.json``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benches"))

from probe_vs_lmprobe import split  # noqa: E402  (the benchmarks' shared data split)

SIZES = (8, 16, 32, 64, 128)
BUDGETS = (256, 512, 1024, 2048, 4096)


def _run(loaded: Any, prompts: list[str], batch_size: int | None, budget: int | None) -> float:
    import fastprobe.extraction.batching as batching
    from fastprobe.extraction import forward_batches
    from fastprobe.sites import resolve_sites

    sites = resolve_sites([16], loaded.n_layers)
    saved = batching.CPU_TOKEN_BUDGET
    if budget is not None:
        batching.CPU_TOKEN_BUDGET = budget
    try:
        t0 = time.perf_counter()
        tokens = sum(int(c.mask.sum()) for c in forward_batches(loaded, prompts, sites, batch_size, progress=False))
        return tokens / (time.perf_counter() - t0)
    finally:
        batching.CPU_TOKEN_BUDGET = saved


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--prompts", type=int, default=768)
    parser.add_argument("--out", type=Path, default=ROOT / "bench-results" / "batching.json")
    args = parser.parse_args(argv)
    from fastprobe.aligned import PLAIN_TEMPLATE, render
    from fastprobe.model import load_model
    from fastprobe.models import smollm2

    loaded = load_model(str(smollm2()), device="cpu")
    pos, neg, _, _ = split()
    statements = (pos + neg)[: args.prompts]
    sets = {
        "statements": statements,
        "chat": [render(PLAIN_TEMPLATE, s, loaded.tokenizer).text for s in statements[: args.prompts // 4]],
    }
    results: dict[str, Any] = {}
    for name, prompts in sets.items():
        rows = {}
        settings = [(f"batch_size={b}", b, None) for b in SIZES] + [(f"budget={t}", None, t) for t in BUDGETS]
        for label, size, budget in settings:
            _run(loaded, prompts[:64], size, budget)  # warm-up
            runs = [_run(loaded, prompts, size, budget) for _ in range(args.repeats)]
            rows[label] = statistics.median(runs)
            print(f"{name:10} {label:16} {rows[label]:8.0f} tokens/s (runs {[round(r) for r in runs]})", flush=True)
        results[name] = rows
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())

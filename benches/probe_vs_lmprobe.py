"""The ``Probe`` API on SmolLM2-135M against lmprobe 0.10.3, side by side in one run, in whole processes.

Data: the 1,496 statements of ../shared/data/cities.csv (or ``$FASTPROBE_DATA_DIR/cities.csv``), split 1,000 / 496
with seed 0; CPU; each library's default settings (lmprobe's batch size of 8; fastprobe, left at that default, fills
batches to its token budget), logistic regression and ``random_state=0`` for both. Each measurement runs in a fresh
process with a fresh cache directory (except ``warm_new``), and its time is the whole process's, from its start to
its exit: importing the library and loading the model are part of it. Peak memory is the process's own. Reported, as
medians over ``--repeats``:

- ``fit16``: ``Probe(layers=16)``: ``fit(positive, negative)`` then ``score(test, labels)``, cold cache;
- ``sweep``: ``Probe.sweep_layers`` over all 30 layers, then ``LayerSweepResult.score`` on the test set, cold cache:
  also the bytes in the cache directory afterwards and the largest per-layer accuracy difference;
- ``warmup``: ``Probe(layers=16).warmup`` of 600 prompts (training and test statements), cold cache;
- ``warm_new``: ``fit16`` in a new process on a cache that already holds every activation it needs (warmed by an
  untimed run first), with whether the process imported torch and transformers (it cannot load weights without);
- ``warm``: refit + rescore of ``Probe(layers=16)`` on a warm cache within one process (after one cold fit and
  score; timed inside the process);
- ``import``: ``python -c "import <library>"``.

Run with ``make bench`` or ``python benches/probe_vs_lmprobe.py``; writes ``bench-results/probe.json``.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
SCENARIOS = ("fit16", "sweep", "warmup", "warm_new", "warm", "import")
WARMUP_PROMPTS = 600


def split(limit: int | None = None) -> tuple[list[str], list[str], list[str], list[int]]:
    """(positive train, negative train, test prompts, test labels): the seeded 1,000 / 496 split."""
    import numpy as np

    path = Path(os.environ.get("FASTPROBE_DATA_DIR", ROOT.parent / "shared" / "data")) / "cities.csv"
    if path.is_file():
        with path.open() as f:
            rows = [(r["statement"], int(r["label"])) for r in csv.DictReader(f)]
    else:  # a clone away from ../shared: the built-in city statements
        from fastprobe.datasets import city_facts

        facts = city_facts(seed=0)
        rows = list(zip(facts.statements, [int(v) for v in facts.labels], strict=True))
    order = np.random.default_rng(0).permutation(len(rows))
    if limit is not None:
        order = order[:limit]
    n_train = round(len(order) * 1000 / 1496)
    train = [rows[i] for i in order[:n_train]]
    test = [rows[i] for i in order[n_train:]]
    pos = [s for s, y in train if y == 1]
    neg = [s for s, y in train if y == 0]
    return pos, neg, [s for s, _ in test], [y for _, y in test]


def _tree_bytes(path: str) -> int:
    return sum(f.stat().st_size for f in Path(path).rglob("*") if f.is_file())


def child(kind: str, scenario: str, limit: int | None, cache: str | None = None) -> dict[str, Any]:
    """One measurement, in this (fresh) process; ``cache``: a cache directory to use (and keep) instead of a new one."""
    if scenario == "import":
        __import__(kind)
        return {"peak_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024}
    from fastprobe.models import smollm2

    model = str(smollm2())
    pos, neg, test, labels = split(limit)
    with tempfile.TemporaryDirectory() as scratch:
        where = cache or scratch
        if kind == "lmprobe":
            os.environ["LMPROBE_CACHE_DIR"] = where
            from lmprobe import Probe
        else:
            os.environ["FASTPROBE_CACHE_DIR"] = where
            from fastprobe import Probe
        out: dict[str, Any] = {}
        if scenario == "sweep":
            t0 = time.perf_counter()
            result = Probe.sweep_layers(model, pos, neg, layers="all", device="cpu", random_state=0)
            scores = result.score(test, labels)
            out["seconds"] = time.perf_counter() - t0
            out["scores"] = {str(k): float(v) for k, v in scores.items()}
            out["cache_bytes"] = _tree_bytes(where)
        elif scenario == "warmup":
            t0 = time.perf_counter()
            Probe(model=model, layers=16, device="cpu", random_state=0).warmup((pos + neg + test)[:WARMUP_PROMPTS])
            out["seconds"] = time.perf_counter() - t0
        else:
            t0 = time.perf_counter()
            probe = Probe(model=model, layers=16, device="cpu", random_state=0).fit(pos, neg)
            acc = probe.score(test, labels)
            cold = time.perf_counter() - t0
            if scenario != "warm":
                out["seconds"] = cold
            else:
                times = []
                for _ in range(3):
                    t0 = time.perf_counter()
                    probe = Probe(model=model, layers=16, device="cpu", random_state=0).fit(pos, neg)
                    acc = probe.score(test, labels)
                    times.append(time.perf_counter() - t0)
                out["seconds"] = statistics.median(times)
            out["accuracy"] = float(acc)
        out["imported_torch"] = "torch" in sys.modules
        out["imported_transformers"] = "transformers" in sys.modules
    out["peak_bytes"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    return out


# Children may write bytecode, as a normal install has it: otherwise every fresh process compiles transformers' and
# torch's sources again (seconds of fixed cost that would swamp the comparison).
_ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}


def _run(kind: str, scenario: str, limit: int | None, cache: str | None = None) -> dict[str, Any]:
    cmd = [sys.executable, __file__, "--child", kind, "--scenario", scenario]
    if limit is not None:
        cmd += ["--limit", str(limit)]
    if cache is not None:
        cmd += ["--cache", cache]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=_ENV)
    process = time.perf_counter() - t0
    if proc.returncode:
        raise RuntimeError(f"{kind} {scenario} failed:\n{proc.stderr[-4000:]}")
    out = dict(json.loads(proc.stdout.strip().splitlines()[-1]))
    out["process_seconds"] = process
    return out


def measure(kind: str, scenario: str, repeats: int, limit: int | None) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as cache:
        if scenario == "warm_new":
            _run(kind, "fit16", limit, cache)  # warms the cache (not measured)
        runs = [_run(kind, scenario, limit, cache if scenario == "warm_new" else None) for _ in range(repeats)]
    summary: dict[str, Any] = {
        key: statistics.median(r[key] for r in runs)
        for key in ("process_seconds", "seconds", "peak_bytes", "cache_bytes", "accuracy")
        if key in runs[0]
    }
    summary["runs"] = [round(r["seconds" if scenario == "warm" else "process_seconds"], 3) for r in runs]
    for key in ("imported_torch", "imported_transformers", "scores"):
        if key in runs[0]:
            summary[key] = runs[0][key]
    return summary


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--limit", type=int, default=None, help="use only the first N prompts (smoke runs)")
    parser.add_argument("--scenarios", default=",".join(SCENARIOS))
    parser.add_argument("--out", type=Path, default=ROOT / "bench-results" / "probe.json")
    parser.add_argument("--child", choices=["lmprobe", "fastprobe"], help=argparse.SUPPRESS)
    parser.add_argument("--scenario", choices=SCENARIOS, help=argparse.SUPPRESS)
    parser.add_argument("--cache", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(child(args.child, args.scenario, args.limit, args.cache)))
        return 0
    for kind in ("lmprobe", "fastprobe"):  # prime the bytecode caches (not measured)
        _run(kind, "fit16", 16)
    results: dict[str, Any] = {}
    for scenario in args.scenarios.split(","):
        row = {kind: measure(kind, scenario, args.repeats, args.limit) for kind in ("lmprobe", "fastprobe")}
        results[scenario] = row
        lm, fp = row["lmprobe"], row["fastprobe"]
        key = "seconds" if scenario == "warm" else "process_seconds"  # warm: timed inside one process
        line = (
            f"{scenario:8}: lmprobe {lm[key]:.2f} s (runs {lm['runs']}), {lm['peak_bytes'] / 1e9:.2f} GB peak | "
            f"fastprobe {fp[key]:.2f} s (runs {fp['runs']}), {fp['peak_bytes'] / 1e9:.2f} GB || "
            f"{lm[key] / fp[key]:.2f}x faster, {fp['peak_bytes'] / lm['peak_bytes']:.2f} of the peak memory"
        )
        if "cache_bytes" in fp:
            line += (
                f", cache {lm['cache_bytes'] / 1e6:.0f} MB vs {fp['cache_bytes'] / 1e6:.0f} MB "
                f"(1/{lm['cache_bytes'] / fp['cache_bytes']:.1f})"
            )
        if "scores" in fp:
            diffs = [abs(fp["scores"][k] - lm["scores"][k]) for k in lm["scores"]]
            line += f", largest per-layer accuracy difference {max(diffs) * 100:.2f} points"
        if "accuracy" in fp:
            line += f", accuracy {lm['accuracy']:.4f} vs {fp['accuracy']:.4f}"
        if scenario == "warm_new":
            line += (
                f", imported torch/transformers: lmprobe {lm['imported_torch']}/{lm['imported_transformers']}, "
                f"fastprobe {fp['imported_torch']}/{fp['imported_transformers']}"
            )
        print(line, flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())

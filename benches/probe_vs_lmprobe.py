"""The ``Probe`` API on SmolLM2-135M against lmprobe 0.10.3, side by side in one run.

Data: the 1,496 statements of ../shared/data/cities.csv (or ``$FASTPROBE_DATA_DIR/cities.csv``), split 1,000 / 496
with seed 0; CPU; batch size 8, logistic regression and ``random_state=0`` for both. Each measurement runs in a fresh
process with a fresh cache directory, so times include loading the model and peak memory is the process's own.
Reported, as medians over ``--repeats``:

- ``Probe(layers=16)``: ``fit(positive, negative)`` then ``score(test, labels)``, cold cache;
- ``Probe.sweep_layers`` over all 30 layers, then ``LayerSweepResult.score`` on the test set, cold cache: time, peak
  resident memory, bytes in the cache directory afterwards, and the largest per-layer accuracy difference;
- refit + rescore of ``Probe(layers=16)`` on a warm cache (the same process, after one cold fit and score).

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
SCENARIOS = ("fit16", "sweep", "warm")


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


def child(kind: str, scenario: str, limit: int | None) -> dict[str, Any]:
    """One measurement, in this (fresh) process."""
    from fastprobe.models import smollm2

    model = str(smollm2())
    pos, neg, test, labels = split(limit)
    with tempfile.TemporaryDirectory() as cache:
        if kind == "lmprobe":
            os.environ["LMPROBE_CACHE_DIR"] = cache
            from lmprobe import Probe
        else:
            os.environ["FASTPROBE_CACHE_DIR"] = cache
            from fastprobe import Probe
        out: dict[str, Any] = {}
        if scenario == "sweep":
            t0 = time.perf_counter()
            result = Probe.sweep_layers(model, pos, neg, layers="all", device="cpu", random_state=0)
            scores = result.score(test, labels)
            out["seconds"] = time.perf_counter() - t0
            out["scores"] = {str(k): float(v) for k, v in scores.items()}
            out["cache_bytes"] = _tree_bytes(cache)
        else:
            t0 = time.perf_counter()
            probe = Probe(model=model, layers=16, device="cpu", random_state=0).fit(pos, neg)
            acc = probe.score(test, labels)
            cold = time.perf_counter() - t0
            if scenario == "fit16":
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
    out["peak_bytes"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    return out


# Children may write bytecode, as a normal install has it: otherwise every fresh process compiles transformers' and
# torch's sources again (seconds of fixed cost that would swamp the comparison).
_ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}


def _run(kind: str, scenario: str, limit: int | None) -> dict[str, Any]:
    cmd = [sys.executable, __file__, "--child", kind, "--scenario", scenario]
    if limit is not None:
        cmd += ["--limit", str(limit)]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=_ENV)
    if proc.returncode:
        raise RuntimeError(f"{kind} {scenario} failed:\n{proc.stderr[-4000:]}")
    return dict(json.loads(proc.stdout.strip().splitlines()[-1]))


def measure(kind: str, scenario: str, repeats: int, limit: int | None) -> dict[str, Any]:
    runs = [_run(kind, scenario, limit) for _ in range(repeats)]
    summary: dict[str, Any] = {
        key: statistics.median(r[key] for r in runs)
        for key in ("seconds", "peak_bytes", "cache_bytes", "accuracy")
        if key in runs[0]
    }
    summary["runs"] = [r["seconds"] for r in runs]
    if "scores" in runs[0]:
        summary["scores"] = runs[0]["scores"]
    return summary


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--limit", type=int, default=None, help="use only the first N prompts (smoke runs)")
    parser.add_argument("--scenarios", default=",".join(SCENARIOS))
    parser.add_argument("--out", type=Path, default=ROOT / "bench-results" / "probe.json")
    parser.add_argument("--child", choices=["lmprobe", "fastprobe"], help=argparse.SUPPRESS)
    parser.add_argument("--scenario", choices=SCENARIOS, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(child(args.child, args.scenario, args.limit)))
        return 0
    for kind in ("lmprobe", "fastprobe"):  # prime the bytecode caches (not measured)
        _run(kind, "fit16", 16)
    results: dict[str, Any] = {}
    for scenario in args.scenarios.split(","):
        row = {kind: measure(kind, scenario, args.repeats, args.limit) for kind in ("lmprobe", "fastprobe")}
        results[scenario] = row
        lm, fp = row["lmprobe"], row["fastprobe"]
        line = (
            f"{scenario:6}: lmprobe {lm['seconds']:.2f} s (runs {[round(s, 2) for s in lm['runs']]}), "
            f"{lm['peak_bytes'] / 1e9:.2f} GB peak | fastprobe {fp['seconds']:.2f} s "
            f"(runs {[round(s, 2) for s in fp['runs']]}), {fp['peak_bytes'] / 1e9:.2f} GB || "
            f"{lm['seconds'] / fp['seconds']:.1f}x faster, {fp['peak_bytes'] / lm['peak_bytes']:.2f} of the peak memory"
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
        print(line, flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())

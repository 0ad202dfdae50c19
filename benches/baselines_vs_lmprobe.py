"""``BaselineBattery`` on SmolLM2-135M against lmprobe 0.10.3, side by side in one run, on a warm cache.

Data: the 1,496 statements of ../shared/data/cities.csv (or ``$FASTPROBE_DATA_DIR/cities.csv``; the built-in city
statements when neither exists), split 1,000 / 496 with seed 0; CPU. Both libraries run
``BaselineBattery(model=SmolLM2, device="cpu", random_state=0, include=BASELINES).fit(pos, neg, test, labels)`` with
the same baselines: every baseline of both libraries that runs here without a network, that is all but
``sentence_transformers`` (it needs the sentence-transformers package and a downloaded encoder; neither is here).

Each library gets its own fresh cache directory (``LMPROBE_CACHE_DIR`` / ``FASTPROBE_CACHE_DIR``), filled by one
battery run (reported as "cold", not part of the ratio); then ``--repeats`` runs, each in a fresh process, time the
battery on the warm cache, from constructing it to its results (loading whatever of the model a library loads is
included). Before the clock starts, each process imports the library and what both libraries need anyway: torch,
transformers and the model's configuration class (about 2 s of imports here that either library would otherwise pay
first; see :func:`prelude`). The whole process's wall time (interpreter start, every import, the battery) is
reported too. Reported: medians, the ratios, and every baseline's score in both libraries. lmprobe's ``layer_0``
reads block 0's output and fastprobe's the embeddings (as lmprobe documents); fastprobe standardizes the perplexity
and sentence-length features (lmprobe's logistic regression stops unconverged on raw perplexities), so those scores
may differ.

Run with ``make bench`` or ``python benches/baselines_vs_lmprobe.py``; writes ``bench-results/baselines.json``.
``--limit N`` uses the first N statements of the shuffled data (a quick smoke run).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
KINDS = ("lmprobe", "fastprobe")
#: The baselines both libraries run here (sentence_transformers needs a package and a download that are not here).
BASELINES = (
    "bow",
    "tfidf",
    "random",
    "majority",
    "sentence_length",
    "perplexity",
    "random_direction",
    "pca",
    "layer_0",
)


def split(limit: int | None = None) -> tuple[list[str], list[str], list[str], list[int]]:
    """(positive train, negative train, test prompts, test labels): the seeded split of benches/probe_vs_lmprobe.py."""
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from probe_vs_lmprobe import split as probe_split

    return probe_split(limit)


def prelude(model: str) -> None:
    """Import what both libraries need before either does its own work: torch, transformers and the model's
    configuration class (importing transformers' configuration machinery alone takes about 2 s here)."""
    import importlib

    import torch  # noqa: F401
    from transformers import AutoConfig  # noqa: F401

    model_type = json.loads((Path(model) / "config.json").read_text())["model_type"]
    importlib.import_module(f"transformers.models.{model_type}.configuration_{model_type}")


def child(kind: str, cache: str, limit: int | None) -> dict[str, Any]:
    """One battery run in this (fresh) process, on the library's cache directory ``cache``."""
    import warnings

    from fastprobe.models import smollm2

    model = str(smollm2())
    pos, neg, test, labels = split(limit)
    if kind == "lmprobe":
        os.environ["LMPROBE_CACHE_DIR"] = cache
        from lmprobe import BaselineBattery
    else:
        os.environ["FASTPROBE_CACHE_DIR"] = cache
        from fastprobe.baselines import BaselineBattery
    prelude(model)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        t0 = time.perf_counter()
        battery = BaselineBattery(model=model, device="cpu", random_state=0, include=list(BASELINES))
        results = battery.fit(pos, neg, test, labels)
        seconds = time.perf_counter() - t0
    return {
        "seconds": seconds,
        "scores": {r.name: float(r.score) for r in results},
        "fit_times": {r.name: float(r.fit_time) for r in results},
        "predict_times": {r.name: float(r.predict_time) for r in results},
        "warnings": [str(w.message) for w in caught if issubclass(w.category, UserWarning)],
    }


# Children may write bytecode, as a normal install has it: otherwise every fresh process compiles transformers' and
# torch's sources again (seconds of fixed cost that would swamp the comparison).
_ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}


def _run(kind: str, cache: str, limit: int | None) -> dict[str, Any]:
    cmd = [sys.executable, __file__, "--child", kind, "--cache", cache]
    if limit is not None:
        cmd += ["--limit", str(limit)]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=_ENV)
    process_seconds = time.perf_counter() - t0
    if proc.returncode:
        raise RuntimeError(f"{kind} failed:\n{proc.stderr[-4000:]}")
    out = dict(json.loads(proc.stdout.strip().splitlines()[-1]))
    out["process_seconds"] = process_seconds
    return out


def measure(kind: str, repeats: int, limit: int | None) -> dict[str, Any]:
    """Fill a fresh cache with one run, then time ``repeats`` warm runs (each a fresh process)."""
    cache = tempfile.mkdtemp(prefix=f"bench-baselines-{kind}-")
    try:
        cold = _run(kind, cache, limit)
        warm = [_run(kind, cache, limit) for _ in range(repeats)]
    finally:
        shutil.rmtree(cache, ignore_errors=True)
    missing = sorted(set(BASELINES) - set(warm[0]["scores"]))
    if missing:
        raise RuntimeError(f"{kind} did not run {missing}; warnings: {warm[0]['warnings']}")
    return {
        "cold_seconds": cold["seconds"],
        "seconds": statistics.median(r["seconds"] for r in warm),
        "runs": [r["seconds"] for r in warm],
        "process_seconds": statistics.median(r["process_seconds"] for r in warm),
        "scores": warm[0]["scores"],
        "fit_times": warm[0]["fit_times"],
        "predict_times": warm[0]["predict_times"],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--limit", type=int, default=None, help="use only the first N prompts (smoke runs)")
    parser.add_argument("--out", type=Path, default=ROOT / "bench-results" / "baselines.json")
    parser.add_argument("--child", choices=KINDS, help=argparse.SUPPRESS)
    parser.add_argument("--cache", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(child(args.child, args.cache, args.limit)))
        return 0
    results = {kind: measure(kind, args.repeats, args.limit) for kind in KINDS}
    lm, fp = results["lmprobe"], results["fastprobe"]
    results["ratio"] = lm["seconds"] / fp["seconds"]
    results["baselines"] = list(BASELINES)
    results["process_ratio"] = lm["process_seconds"] / fp["process_seconds"]
    print(
        f"warm battery ({len(BASELINES)} baselines): lmprobe {lm['seconds']:.2f} s "
        f"(runs {[round(s, 2) for s in lm['runs']]}) | fastprobe {fp['seconds']:.2f} s "
        f"(runs {[round(s, 2) for s in fp['runs']]}) || {results['ratio']:.1f}x faster"
    )
    print(
        f"whole warm process (interpreter start, every import, the battery): lmprobe {lm['process_seconds']:.2f} s | "
        f"fastprobe {fp['process_seconds']:.2f} s || {results['process_ratio']:.1f}x faster"
    )
    cold_ratio = lm["cold_seconds"] / fp["cold_seconds"]
    print(
        f"cold battery (filling the cache, one run): lmprobe {lm['cold_seconds']:.1f} s | fastprobe "
        f"{fp['cold_seconds']:.1f} s || {cold_ratio:.1f}x faster"
    )
    print(f"{'baseline':<18} {'lmprobe':>8} {'fastprobe':>9}   (test accuracy; layer_0 differs by design)")
    for name in BASELINES:
        print(f"{name:<18} {lm['scores'][name]:>8.4f} {fp['scores'][name]:>9.4f}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())

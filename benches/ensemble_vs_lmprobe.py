"""``ProbeEnsemble.bootstrap`` on SmolLM2-135M against lmprobe 0.10.3, side by side in one run, warm cache.

Data: the 1,496 statements of ../shared/data/cities.csv (or ``$FASTPROBE_DATA_DIR/cities.csv``), split 1,000 / 496
with seed 0 (the split of benches/probe_vs_lmprobe.py); CPU. For both libraries:
``ProbeEnsemble.bootstrap(Probe(model=SmolLM2, layers=16, device="cpu", random_state=0), n_resamples=10,
random_state=0).fit(positive, negative)`` then ``score(test, labels)``.

Each library gets its own private cache directory, filled first by one untimed run of the same scenario (the train
and test prompts' layer-16 activations). Then every measurement runs in a fresh process on that warm cache, the two
libraries alternating; the time covers building the ensemble, ``fit`` and ``score`` (loading the model included,
importing the library not). Reported: medians over ``--repeats``, the ratio, both accuracies.

Run with ``make bench`` or ``python benches/ensemble_vs_lmprobe.py``; writes ``bench-results/ensemble.json``.
``--limit N`` uses only the first N statements of the split (a smoke run).
"""

from __future__ import annotations

import argparse
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

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
KINDS = ("lmprobe", "fastprobe")
LAYER = 16
N_RESAMPLES = 10


def _split(limit: int | None) -> tuple[list[str], list[str], list[str], list[int]]:
    sys.path.insert(0, str(HERE))
    from probe_vs_lmprobe import split

    return split(limit)


def child(kind: str, cache: str, limit: int | None) -> dict[str, Any]:
    """One measurement, in this (fresh) process, on the warm cache directory ``cache``."""
    from fastprobe.models import smollm2

    model = str(smollm2())
    pos, neg, test, labels = _split(limit)
    if kind == "lmprobe":
        os.environ["LMPROBE_CACHE_DIR"] = cache
        from lmprobe import Probe
        from lmprobe.ensemble import ProbeEnsemble
    else:
        os.environ["FASTPROBE_CACHE_DIR"] = cache
        from fastprobe import Probe
        from fastprobe.ensemble import ProbeEnsemble
    t0 = time.perf_counter()
    base = Probe(model=model, layers=LAYER, device="cpu", random_state=0)
    ensemble = ProbeEnsemble.bootstrap(base, n_resamples=N_RESAMPLES, random_state=0)
    ensemble.fit(pos, neg)
    t_fit = time.perf_counter()
    accuracy = ensemble.score(test, labels)
    t_end = time.perf_counter()
    return {
        "seconds": t_end - t0,
        "fit_seconds": t_fit - t0,
        "score_seconds": t_end - t_fit,
        "accuracy": float(accuracy),
        "peak_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
    }


# Children may write bytecode, as a normal install has it (otherwise every fresh process compiles transformers' and
# torch's sources again).
_ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}


def _run(kind: str, cache: str, limit: int | None) -> dict[str, Any]:
    cmd = [sys.executable, __file__, "--child", kind, "--cache", cache]
    if limit is not None:
        cmd += ["--limit", str(limit)]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=_ENV)
    if proc.returncode:
        raise RuntimeError(f"{kind} failed:\n{proc.stderr[-4000:]}")
    return dict(json.loads(proc.stdout.strip().splitlines()[-1]))


def _summary(runs: list[dict[str, Any]], fill: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {
        key: statistics.median(r[key] for r in runs)
        for key in ("seconds", "fit_seconds", "score_seconds", "peak_bytes")
    }
    out["runs"] = [r["seconds"] for r in runs]
    out["accuracy"] = runs[0]["accuracy"]
    out["fill_seconds"] = fill["seconds"]
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--limit", type=int, default=None, help="use only the first N statements (smoke runs)")
    parser.add_argument("--out", type=Path, default=ROOT / "bench-results" / "ensemble.json")
    parser.add_argument("--child", choices=KINDS, help=argparse.SUPPRESS)
    parser.add_argument("--cache", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(child(args.child, args.cache, args.limit)))
        return 0
    if args.repeats < 1:
        parser.error(f"--repeats must be >= 1; got {args.repeats}")
    with tempfile.TemporaryDirectory() as lm_cache, tempfile.TemporaryDirectory() as fp_cache:
        caches = {"lmprobe": lm_cache, "fastprobe": fp_cache}
        fills = {}
        for kind in KINDS:  # fill each cache (not measured, apart from the record below)
            fills[kind] = _run(kind, caches[kind], args.limit)
            print(f"{kind}: cache filled in {fills[kind]['seconds']:.1f} s", flush=True)
        runs: dict[str, list[dict[str, Any]]] = {kind: [] for kind in KINDS}
        for _ in range(args.repeats):
            for kind in KINDS:  # alternate, so that a change in the machine's load hits both
                runs[kind].append(_run(kind, caches[kind], args.limit))
    pos, neg, test, _ = _split(args.limit)
    results: dict[str, Any] = {kind: _summary(runs[kind], fills[kind]) for kind in KINDS}
    lm, fp = results["lmprobe"], results["fastprobe"]
    results["ratio"] = lm["seconds"] / fp["seconds"]
    results["setup"] = {
        "model": "SmolLM2-135M-Instruct",
        "layer": LAYER,
        "n_resamples": N_RESAMPLES,
        "n_train": len(pos) + len(neg),
        "n_test": len(test),
        "repeats": args.repeats,
        "cache": "warm",
    }
    for kind in KINDS:
        r = results[kind]
        print(
            f"{kind:9}: {r['seconds']:.3f} s (runs {[round(s, 3) for s in r['runs']]}; fit {r['fit_seconds']:.3f} s, "
            f"score {r['score_seconds']:.3f} s), "
            f"peak {r['peak_bytes'] / 1e9:.2f} GB, accuracy {r['accuracy']:.4f}",
            flush=True,
        )
    print(
        f"bootstrap ensemble of {N_RESAMPLES}, fit + score, warm cache: lmprobe {lm['seconds']:.2f} s | "
        f"fastprobe {fp['seconds']:.2f} s || {results['ratio']:.1f}x faster",
        flush=True,
    )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())

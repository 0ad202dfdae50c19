"""Cross-validation and MDL over 30 layers of SmolLM2: fastprobe against scikit-learn, side by side in one run.

Data: the 1,496 statements of ../shared/data/cities.csv (or ``$FASTPROBE_DATA_DIR/cities.csv``; the built-in city
statements when neither is there), last-token activations of all 30 layers, read once through fastprobe's cache
(not timed). Then, on the same arrays:

- cross-validation: 5 folds x 3 seeds, standardized features and L2 logistic regression (C=1) on every layer:
  ``fastprobe.evaluation.cross_validate`` against scikit-learn's ``cross_validate`` of a
  ``StandardScaler`` + ``LogisticRegression`` pipeline in a loop over layers and seeds, with the same stratified
  folds; the mean accuracy per layer is compared;
- MDL (online code): ``fastprobe.evaluation.online_code_layers`` against the same blocks fitted with scikit-learn's
  logistic regression (standardized; in float64, so that its probabilities near 0 are not rounded in float32),
  codelengths compared.

Medians over ``--repeats``; writes ``bench-results/evaluation.json``.
"""

from __future__ import annotations

import argparse
import csv
import itertools
import json
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def statements() -> tuple[list[str], np.ndarray]:
    path = Path(os.environ.get("FASTPROBE_DATA_DIR", ROOT.parent / "shared" / "data")) / "cities.csv"
    if path.is_file():
        with path.open() as f:
            rows = [(r["statement"], int(r["label"])) for r in csv.DictReader(f)]
        return [s for s, _ in rows], np.array([y for _, y in rows])
    from fastprobe.datasets import city_facts

    facts = city_facts(seed=0)
    return list(facts.statements), np.asarray(facts.labels)


def activations(limit: int | None) -> tuple[list[np.ndarray], np.ndarray]:
    from fastprobe.evaluation import read_layers
    from fastprobe.models import smollm2

    texts, y = statements()
    if limit is not None:
        texts, y = texts[:limit], y[:limit]
    layers = read_layers(str(smollm2()), texts, "all", device="cpu")
    return [layers[k] for k in sorted(layers)], y


def sklearn_cv(layers: list[np.ndarray], y: np.ndarray, seeds: list[int]) -> list[float]:
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold, cross_validate
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    means = []
    for X in layers:
        scores = []
        for seed in seeds:
            model = make_pipeline(StandardScaler(), LogisticRegression(C=1.0, max_iter=1000))
            cv = StratifiedKFold(5, shuffle=True, random_state=seed)
            scores.extend(cross_validate(model, X, y, cv=cv, scoring="accuracy")["test_score"])
        means.append(float(np.mean(scores)))
    return means


def fastprobe_cv(layers: list[np.ndarray], y: np.ndarray, seeds: list[int]) -> list[float]:
    from fastprobe.evaluation import cross_validate

    result = cross_validate(layers, y, "logistic_regression", n_folds=5, seeds=seeds, progress=False)
    return [float(np.mean(result.values(i))) for i in range(len(layers))]


#: Block ends for the MDL comparison: Voita and Titov's from 0.8% (the first blocks of 0.1% to 0.4% of 1,496
#: examples hold one to five statements, too few to hold both classes for every shuffle).
FRACTIONS = (0.008, 0.016, 0.032, 0.0625, 0.125, 0.25, 0.5, 1.0)


def sklearn_mdl(layers: list[np.ndarray], y: np.ndarray) -> list[float]:
    """The online codelength in bits, each block coded by a standardized logistic regression fitted on those before."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from fastprobe.evaluation import block_ends

    order = np.random.default_rng(0).permutation(len(y))
    classes, labels = np.unique(y[order], return_inverse=True)
    ends = block_ends(len(y), FRACTIONS)
    out = []
    for X in layers:
        # float64: given float32 rows, scikit-learn's predict_proba answers in float32, where 1 - p rounds to 0 for a
        # confidently wrong prediction (p within 6e-8 of 1), which then costs the floor's 40 bits instead of its own
        # (26.6 bits for a probability of 1e-8): enough to move a layer's codelength by 1%.
        Xs = X[order].astype(np.float64)
        bits = ends[0] * np.log2(len(classes))
        for start, stop in itertools.pairwise(ends):
            clf = make_pipeline(StandardScaler(), LogisticRegression(C=1.0, max_iter=1000))
            clf.fit(Xs[:start], labels[:start])
            proba = clf.predict_proba(Xs[start:stop])
            bits -= np.sum(np.log2(np.maximum(proba[np.arange(stop - start), labels[start:stop]], 1e-12)))
        out.append(float(bits))
    return out


def fastprobe_mdl(layers: list[np.ndarray], y: np.ndarray) -> list[float]:
    from fastprobe.evaluation import online_code_layers

    result = online_code_layers(layers, y, "logistic_regression", fractions=FRACTIONS, random_state=0)
    return [result[i].codelength for i in range(len(layers))]


def _timed(fn: Any, *args: Any) -> tuple[float, Any]:
    t0 = time.perf_counter()
    out = fn(*args)
    return time.perf_counter() - t0, out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--limit", type=int, default=None, help="use only the first N statements (smoke runs)")
    parser.add_argument("--out", type=Path, default=ROOT / "bench-results" / "evaluation.json")
    parser.add_argument("--parts", default="cv,mdl", help="which comparisons to run (cv, mdl)")
    args = parser.parse_args(argv)
    layers, y = activations(args.limit)
    seeds = [0, 1, 2]
    results: dict[str, Any] = {"n_examples": len(y), "n_layers": len(layers)}
    parts = args.parts.split(",")
    if "cv" in parts:
        results["cv"] = _cv(layers, y, seeds, args.repeats)
    if "mdl" in parts:
        results["mdl"] = _mdl(layers, y, args.repeats)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2))
    return 0


def _cv(layers: list[np.ndarray], y: np.ndarray, seeds: list[int], repeats: int) -> dict[str, Any]:
    sk_times, fp_times = [], []
    for _ in range(repeats):
        t, sk = _timed(sklearn_cv, layers, y, seeds)
        sk_times.append(t)
        t, fp = _timed(fastprobe_cv, layers, y, seeds)
        fp_times.append(t)
    diff = max(abs(a - b) for a, b in zip(sk, fp, strict=True))
    r = {
        "sklearn_seconds": statistics.median(sk_times),
        "fastprobe_seconds": statistics.median(fp_times),
        "sklearn_runs": sk_times,
        "fastprobe_runs": fp_times,
        "max_mean_accuracy_diff": diff,
        "sklearn_accuracy": sk,
        "fastprobe_accuracy": fp,
    }
    print(
        f"cross-validation, 30 layers x 5 folds x 3 seeds: scikit-learn {r['sklearn_seconds']:.2f} s | fastprobe "
        f"{r['fastprobe_seconds']:.2f} s || {r['sklearn_seconds'] / r['fastprobe_seconds']:.1f}x faster; largest "
        f"per-layer mean accuracy difference {diff * 100:.2f} points; best layer {int(np.argmax(fp))} "
        f"({max(fp):.4f})",
        flush=True,
    )
    return r


def _mdl(layers: list[np.ndarray], y: np.ndarray, repeats: int) -> dict[str, Any]:
    sk_times, fp_times = [], []
    for _ in range(repeats):
        t, sk_bits = _timed(sklearn_mdl, layers, y)
        sk_times.append(t)
        t, fp_bits = _timed(fastprobe_mdl, layers, y)
        fp_times.append(t)
    rel = max(abs(a - b) / a for a, b in zip(sk_bits, fp_bits, strict=True))
    r = {
        "sklearn_seconds": statistics.median(sk_times),
        "fastprobe_seconds": statistics.median(fp_times),
        "sklearn_runs": sk_times,
        "fastprobe_runs": fp_times,
        "max_relative_codelength_diff": rel,
        "sklearn_bits": sk_bits,
        "fastprobe_bits": fp_bits,
    }
    print(
        f"MDL online code, 30 layers x {len(FRACTIONS) - 1} blocks: scikit-learn {r['sklearn_seconds']:.2f} s | "
        f"fastprobe {r['fastprobe_seconds']:.2f} s || {r['sklearn_seconds'] / r['fastprobe_seconds']:.1f}x faster; "
        f"largest relative codelength difference {rel * 100:.2f}%; shortest code at layer {int(np.argmin(fp_bits))} "
        f"({min(fp_bits):.0f} bits of {len(y) * np.log2(len(np.unique(y))):.0f} uniform)",
        flush=True,
    )
    return r


if __name__ == "__main__":
    sys.exit(main())

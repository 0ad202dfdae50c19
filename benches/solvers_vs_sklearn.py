"""fastprobe's Rust solvers and pooling against scikit-learn and numpy, side by side in one run.

Run with ``make bench`` or ``python benches/solvers_vs_sklearn.py [--ridge-layers N]``; prints a table and writes
``bench-results/solvers.json``; exits with status 1 when ridge's leave-one-out choice of alpha differs from
``RidgeCV``'s on any layer. Reported (medians):

- ridge with a grid of 10 alphas (leave-one-out selection) on n = 2,000, d = 4,096, one fit per layer
  (``fit_layers``), against a loop of scikit-learn ``RidgeCV`` with the same alphas, and against the floor of one bare
  float32 GEMM per layer (numpy) of each Gram shape, and against the floor of any exact float64 leave-one-out solver
  on this machine (those GEMMs plus LAPACK's tridiagonalization of every layer's kernel, layers over all cores);
- logistic regression on the 30 SmolLM2 layers of the cities data (last-token activations, 1,000 training prompts,
  standardized features): ``fit_layers`` reading the layers from the store against scikit-learn's lbfgs loop over
  arrays already in memory, with held-out accuracy;
- pooling of 1,496 ragged prompts x 30 layers x 576 (every method) against vectorized numpy on padded tensors and
  their mask.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def median_time(fn: Callable[[], Any], repeats: int) -> tuple[float, Any]:
    times, out = [], None
    for _ in range(repeats):
        out = None
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), out


def bench_ridge(layers: int, repeats: int) -> dict[str, Any]:
    from scipy.linalg import lapack
    from sklearn.linear_model import RidgeCV
    from threadpoolctl import threadpool_limits

    from fastprobe.estimators import RidgeProbe
    from fastprobe.sweep import fit_layers

    n, d = 2000, 4096
    rng = np.random.default_rng(0)
    alphas = np.logspace(-2, 4, 10)
    X = rng.standard_normal((layers, n, d), dtype=np.float32)
    y = X[0, :, :16].sum(axis=1) + rng.standard_normal(n).astype(np.float32)

    def ours() -> list[float]:
        fits = fit_layers(X, y, RidgeProbe(alphas=alphas), standardize=False, progress=False)
        return [f.alpha_ for f in fits]

    t_ours, chosen = median_time(ours, repeats)
    t_sk, theirs = median_time(lambda: [RidgeCV(alphas=alphas).fit(x, y).alpha_ for x in X], 1)
    other = X[0].copy()
    # Bare float32 GEMMs (numpy, OpenBLAS) of the two Gram shapes: (d x n)(n x d) and (n x d)(d x n). A second
    # operand that is not the first's transpose keeps numpy from using the cheaper symmetric product.
    t_gram, _ = median_time(lambda: [x.T @ other for x in X], repeats)
    t_kernel, _ = median_time(lambda: [x @ other.T for x in X], repeats)
    # Any exact leave-one-out path in float64 (scikit-learn's precision for RidgeCV) must at least form the kernel
    # and reduce it to tridiagonal form. LAPACK's blocked reduction (dsytrd), one thread per layer with the layers
    # spread over every core, added to the kernel GEMMs, bounds from below what such a solver can reach here.
    k64 = np.asfortranarray(X[0].astype(np.float64) @ X[0].T.astype(np.float64))
    lwork = int(lapack.dsytrd_lwork(n, lower=1)[0])
    with threadpool_limits(1):
        t_trd, _ = median_time(lambda: lapack.dsytrd(k64, lower=1, lwork=lwork), repeats)
    cores = os.cpu_count() or 1
    return {
        "ridge_layers": layers,
        "ridge_fastprobe_s": t_ours,
        "ridge_sklearn_s": t_sk,
        "ridge_gemm_gram_s": t_gram,
        "ridge_gemm_kernel_s": t_kernel,
        "ridge_dsytrd_1thread_s": t_trd,
        "ridge_cores": cores,
        "ridge_exact_floor_s": t_kernel + layers * t_trd / cores,
        "ridge_same_alphas": bool(np.allclose(chosen, theirs)),
        "ridge_alphas_fastprobe": [float(a) for a in chosen],
        "ridge_alphas_sklearn": [float(a) for a in theirs],
    }


def check_ridge(r: dict[str, Any]) -> list[str]:
    """Problems with the ridge results: each layer's leave-one-out alpha must be the one RidgeCV chose."""
    if r["ridge_same_alphas"]:
        return []
    ours, theirs = r["ridge_alphas_fastprobe"], r["ridge_alphas_sklearn"]
    differ = [(i, a, b) for i, (a, b) in enumerate(zip(ours, theirs, strict=True)) if not np.isclose(a, b)]
    shown = ", ".join(f"layer {i}: fastprobe {a:g}, RidgeCV {b:g}" for i, a, b in differ[:5])
    return [f"ridge: fastprobe and RidgeCV chose different alphas on {len(differ)} of {len(ours)} layers ({shown})"]


def bench_logistic(repeats: int) -> dict[str, Any]:
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    from fastprobe import ActivationStore
    from fastprobe.estimators import LogisticProbe
    from fastprobe.extraction import extract_to_store, load_model
    from fastprobe.models import smollm2
    from fastprobe.sweep import StoreLayers, fit_layers

    base = Path(os.environ.get("FASTPROBE_DATA_DIR", ROOT.parent / "shared" / "data"))
    with (base / "cities.csv").open() as f:
        rows = list(csv.DictReader(f))
    prompts = [r["statement"] for r in rows]
    labels = np.array([int(r["label"]) for r in rows])
    loaded = load_model(str(smollm2()), device="cpu")
    layer_ids = list(range(loaded.n_layers))
    order = np.random.default_rng(0).permutation(len(prompts))
    train, test = order[:1000], order[1000:]
    with tempfile.TemporaryDirectory() as tmp:
        store = ActivationStore(tmp)
        extract_to_store(loaded, prompts, layer_ids, store, batch_size=16, progress=False)
        feats = [store.read_pooled(prompts, [layer], "last_token") for layer in layer_ids]
        train_prompts = [prompts[i] for i in train]

        def sklearn_loop() -> list[float]:
            accs = []
            for X in feats:
                scaler = StandardScaler().fit(X[train])
                clf = LogisticRegression(max_iter=1000).fit(scaler.transform(X[train]), labels[train])
                accs.append(clf.score(scaler.transform(X[test]), labels[test]))
            return accs

        def ours_sweep() -> list[Any]:
            # Reads each layer's training activations from the store inside the sweep (timed), fits in parallel.
            source = StoreLayers(store, train_prompts, layer_ids, "last_token")
            return fit_layers(source, labels[train], LogisticProbe(max_iter=1000), progress=False)

        t_ours, probes = median_time(ours_sweep, repeats)
        t_sk, acc_sk = median_time(sklearn_loop, max(1, repeats // 2))
    acc_ours = [float(p.score(X[test], labels[test])) for p, X in zip(probes, feats, strict=True)]
    return {
        "logistic_fastprobe_s": t_ours,
        "logistic_sklearn_s": t_sk,
        "logistic_mean_acc_fastprobe": float(np.mean(acc_ours)),
        "logistic_mean_acc_sklearn": float(np.mean(acc_sk)),
        "logistic_max_acc_diff": float(np.max(np.abs(np.array(acc_ours) - np.array(acc_sk)))),
    }


def bench_pooling(repeats: int) -> dict[str, Any]:
    from fastprobe.pooling import pool_ragged

    rng = np.random.default_rng(0)
    n, layers, h = 1496, 30, 576
    counts = rng.integers(6, 26, n)
    offsets = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
    values = rng.standard_normal((int(offsets[-1]), layers * h), dtype=np.float32)
    seq = int(counts.max())
    padded = np.zeros((n, seq, layers * h), dtype=np.float32)
    mask = np.zeros((n, seq), dtype=bool)
    for i, c in enumerate(counts):
        padded[i, :c] = values[offsets[i] : offsets[i + 1]]
        mask[i, :c] = True
    masked = mask[:, :, None]
    refs: dict[str, Callable[[], np.ndarray]] = {
        "mean": lambda: (padded * masked).sum(axis=1) / counts[:, None],
        "max": lambda: np.where(masked, padded, -np.inf).max(axis=1),
        "min": lambda: np.where(masked, padded, np.inf).min(axis=1),
        "last_token": lambda: padded[np.arange(n), counts - 1],
        "first_token": lambda: np.ascontiguousarray(padded[:, 0]),
    }
    out: dict[str, Any] = {}
    for method, ref_fn in refs.items():
        t_ours, ours = median_time(lambda method=method: pool_ragged(values, offsets, method), repeats)
        t_np, ref = median_time(ref_fn, repeats)
        np.testing.assert_allclose(ours, ref, rtol=1e-4, atol=1e-5)
        out[f"pool_{method}_fastprobe_s"] = t_ours
        out[f"pool_{method}_numpy_s"] = t_np
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ridge-layers", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--skip", nargs="*", default=[], choices=["ridge", "logistic", "pooling"])
    parser.add_argument("--out", type=Path, default=ROOT / "bench-results" / "solvers.json")
    args = parser.parse_args(argv)
    r: dict[str, Any] = {}
    if "pooling" not in args.skip:
        r |= bench_pooling(args.repeats)
        for m in ("mean", "max", "min", "last_token", "first_token"):
            t_np, t_fp = r[f"pool_{m}_numpy_s"], r[f"pool_{m}_fastprobe_s"]
            print(f"pooling {m:10}: numpy padded {t_np:.3f} s, fastprobe ragged {t_fp:.3f} s ({t_np / t_fp:.1f}x)")
    if "logistic" not in args.skip:
        r |= bench_logistic(args.repeats)
        print(
            f"logistic, 30 layers: sklearn {r['logistic_sklearn_s']:.2f} s, "
            f"fastprobe {r['logistic_fastprobe_s']:.2f} s "
            f"({r['logistic_sklearn_s'] / r['logistic_fastprobe_s']:.1f}x); mean held-out accuracy "
            f"{r['logistic_mean_acc_sklearn']:.4f} vs {r['logistic_mean_acc_fastprobe']:.4f} "
            f"(largest per-layer difference {r['logistic_max_acc_diff']:.4f})"
        )
    if "ridge" not in args.skip:
        r |= bench_ridge(args.ridge_layers, args.repeats)
        t_fp = r["ridge_fastprobe_s"]
        print(
            f"ridge, {r['ridge_layers']} layers x 10 alphas: sklearn RidgeCV {r['ridge_sklearn_s']:.2f} s, fastprobe "
            f"{t_fp:.2f} s ({r['ridge_sklearn_s'] / t_fp:.1f}x); same alphas chosen: {r['ridge_same_alphas']}\n"
            f"  float32 GEMM floor: d x d Gram {r['ridge_gemm_gram_s']:.2f} s (fastprobe "
            f"{t_fp / r['ridge_gemm_gram_s']:.1f}x of it), n x n kernel {r['ridge_gemm_kernel_s']:.2f} s "
            f"({t_fp / r['ridge_gemm_kernel_s']:.1f}x)\n"
            f"  exact float64 floor (kernel GEMMs + LAPACK dsytrd {r['ridge_dsytrd_1thread_s']:.3f} s per layer on one "
            f"thread, layers over {r['ridge_cores']} cores): {r['ridge_exact_floor_s']:.2f} s, at most "
            f"{r['ridge_sklearn_s'] / r['ridge_exact_floor_s']:.1f}x faster than RidgeCV on this machine"
        )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(r, indent=2))
    problems = check_ridge(r) if "ridge" not in args.skip else []
    for problem in problems:
        print(f"FAILED {problem}", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())

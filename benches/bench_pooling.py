"""Pooling a batch of SmolLM2-shaped activations: fastprobe's Rust kernel against numpy on the same padded tensor.

The shapes mirror one layer of an extraction batch: 64 prompts of 8-24 tokens, hidden size 576, right padding.
Every implementation is compared with one independent reference, :func:`reference_pool` (a row-by-row loop over each
prompt's real tokens, in float64, that reads the lengths rather than the mask); each benchmark records whether its
output matched it in ``extra_info["correct"]``.
"""

from __future__ import annotations

import functools
from typing import Any

import numpy as np
import pytest

from fastprobe import pool

LENGTHS = [8 + (i * 7) % 17 for i in range(64)]
HIDDEN = 576


def batch() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    s = max(LENGTHS)
    hidden = rng.standard_normal((len(LENGTHS), s, HIDDEN)).astype(np.float32)
    mask = np.zeros((len(LENGTHS), s), dtype=bool)
    for i, n in enumerate(LENGTHS):
        mask[i, :n] = True
    return hidden, mask


def numpy_pool(hidden: np.ndarray, mask: np.ndarray, method: str) -> np.ndarray:
    """The padded-tensor numpy way: masked sum / count for the mean, gather at the last real index."""
    if method == "mean":
        m = mask[:, :, None].astype(np.float32)
        return (hidden * m).sum(axis=1) / m.sum(axis=1)
    last = mask.shape[1] - 1 - np.argmax(mask[:, ::-1], axis=1)
    return hidden[np.arange(len(hidden)), last]


@functools.cache
def reference_pool(method: str) -> np.ndarray:
    """The expected output, computed once: prompt by prompt over its ``LENGTHS[i]`` real tokens, in float64."""
    hidden, _ = batch()
    rows = []
    for i, n in enumerate(LENGTHS):
        tokens = hidden[i, :n].astype(np.float64)
        rows.append(tokens.mean(axis=0) if method == "mean" else tokens[n - 1])
    return np.stack(rows)


@pytest.mark.parametrize("method", ["last_token", "mean"])
@pytest.mark.parametrize("impl", ["fastprobe", "numpy"])
def bench_pool(benchmark: Any, impl: str, method: str) -> None:
    hidden, mask = batch()
    benchmark.group = f"pool-{method}"
    fn = (lambda: pool(hidden, mask, method)) if impl == "fastprobe" else (lambda: numpy_pool(hidden, mask, method))
    out = benchmark(fn)
    expected = reference_pool(method)
    benchmark.extra_info["correct"] = bool(
        out.shape == expected.shape and np.allclose(out, expected, rtol=1e-5, atol=1e-6)
    )
    assert benchmark.extra_info["correct"]

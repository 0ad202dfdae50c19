"""Pooling kernels against an independent numpy reference, on both padding sides, plus their errors."""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Callable

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from fastprobe import InvalidInputError, ShapeMismatchError, UnknownOptionError, pool, pool_ragged
from fastprobe.pooling import POOLING_METHODS


def reference(hidden: np.ndarray, mask: np.ndarray, method: str) -> np.ndarray:
    """Pool with plain numpy, one prompt at a time, from the mask alone."""
    out = []
    for seq, m in zip(hidden, mask.astype(bool), strict=True):
        real = seq[m]
        out.append(
            {
                "last_token": real[-1],
                "first_token": real[0],
                "mean": real.astype(np.float64).mean(axis=0).astype(np.float32),
                "max": real.max(axis=0),
                "min": real.min(axis=0),
            }[method]
        )
    return np.stack(out)


def padded_batch(lengths: list[int], hidden: int, side: str, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    s = max(lengths)
    h = rng.standard_normal((len(lengths), s, hidden)).astype(np.float32)
    mask = np.zeros((len(lengths), s), dtype=np.int64)
    for i, n in enumerate(lengths):
        if side == "right":
            mask[i, :n] = 1
        else:
            mask[i, s - n :] = 1
    h[mask == 0] = 1e6  # pads hold garbage that must never leak into a pooled vector
    return h, mask


@pytest.mark.parametrize("side", ["left", "right"])
@pytest.mark.parametrize("method", POOLING_METHODS)
def test_padded_matches_numpy(method: str, side: str) -> None:
    h, mask = padded_batch([5, 1, 9, 3], hidden=7, side=side, seed=1)
    got = pool(h, mask, method)
    want = reference(h, mask, method)
    assert got.dtype == np.float32 and got.shape == (4, 7)
    if method == "mean":
        np.testing.assert_allclose(got, want, rtol=1e-6, atol=0)
    else:
        np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("method", POOLING_METHODS)
def test_ragged_matches_padded(method: str) -> None:
    lengths = [3, 1, 6]
    h, mask = padded_batch(lengths, hidden=5, side="left", seed=2)
    values = h[mask.astype(bool)]  # real tokens, stacked in order
    offsets = np.concatenate([[0], np.cumsum(lengths)])
    np.testing.assert_array_equal(pool_ragged(values, offsets, method), pool(h, mask, method))


@settings(max_examples=60, deadline=None)
@given(
    lengths=st.lists(st.integers(1, 12), min_size=1, max_size=6),
    hidden=st.integers(1, 40),
    side=st.sampled_from(["left", "right"]),
    method=st.sampled_from(POOLING_METHODS),
    seed=st.integers(0, 2**16),
)
def test_padded_property(lengths: list[int], hidden: int, side: str, method: str, seed: int) -> None:
    h, mask = padded_batch(lengths, hidden, side, seed)
    np.testing.assert_allclose(pool(h, mask, method), reference(h, mask, method), rtol=1e-6, atol=1e-7)


def test_accepts_torch_and_bfloat16() -> None:
    h, mask = padded_batch([2, 4], hidden=3, side="left", seed=3)
    got = pool(torch.from_numpy(h).to(torch.bfloat16), torch.from_numpy(mask), "last_token")
    want = torch.from_numpy(h).to(torch.bfloat16).float().numpy()[:, -1]
    np.testing.assert_array_equal(got, want)


def test_non_contiguous_input_is_converted_in_python() -> None:
    h, mask = padded_batch([2, 3], hidden=4, side="right", seed=4)
    strided = np.asfortranarray(h)
    np.testing.assert_array_equal(pool(strided, mask, "mean"), pool(h, mask, "mean"))


def test_errors_name_what_was_expected() -> None:
    h, mask = padded_batch([2, 3], hidden=4, side="right", seed=5)
    with pytest.raises(UnknownOptionError, match=r'unknown pooling "median"; expected one of: last_token, first_token'):
        pool(h, mask, "median")  # type: ignore[arg-type]
    with pytest.raises(ShapeMismatchError, match=r"attention_mask: expected shape \(2, 3\).*got \(2, 2\)"):
        pool(h, mask[:, :2], "mean")
    with pytest.raises(ShapeMismatchError, match=r"hidden: expected a 3-D array, got shape \(2, 3\)"):
        pool(h[:, :, 0], mask, "mean")
    empty = mask.copy()
    empty[1] = 0
    with pytest.raises(InvalidInputError, match="prompt 1 has no real token"):
        pool(h, empty, "mean")
    values = np.zeros((4, 2), dtype=np.float32)
    with pytest.raises(InvalidInputError, match="strictly increasing"):
        pool_ragged(values, [0, 2, 2, 4], "mean")
    with pytest.raises(InvalidInputError, match=r"end at the number of token rows \(4\)"):
        pool_ragged(values, [0, 3], "mean")
    with pytest.raises(InvalidInputError, match="offsets must be non-negative; got -1"):
        pool_ragged(values, [-1, 4], "mean")
    with pytest.raises(InvalidInputError, match="n_threads must be a positive integer"):
        pool(h, mask, "mean", n_threads=0)


def test_exception_hierarchy() -> None:
    import fastprobe.exceptions as exc

    for cls in (exc.ShapeMismatchError, exc.UnknownOptionError, exc.InvalidInputError, exc.NotFittedError):
        assert issubclass(cls, exc.FastprobeError)
    assert issubclass(exc.FastprobeError, ValueError)
    assert issubclass(exc.FastprobeIOError, OSError) and issubclass(exc.FastprobeIOError, exc.FastprobeError)
    from sklearn.exceptions import NotFittedError

    assert issubclass(exc.NotFittedError, NotFittedError)


def _watcher_steps_during(call: Callable[[], object]) -> tuple[int, float]:
    """Run ``call`` once in a thread; count the steps a Python watcher took strictly inside the call."""
    window: dict[str, float] = {}

    def work() -> None:
        window["start"] = time.perf_counter()
        call()
        window["end"] = time.perf_counter()

    stamps: list[float] = []
    worker = threading.Thread(target=work)
    worker.start()
    while worker.is_alive():
        stamps.append(time.perf_counter())
        time.sleep(0.0005)
    worker.join()
    inside = [t for t in stamps if window["start"] < t < window["end"]]
    return len(inside), window["end"] - window["start"]


def test_pooling_releases_the_gil() -> None:
    """While one thread pools a large batch in Rust, another keeps running Python code.

    A call that held the GIL would let the watching thread take no step between its first and last instruction,
    apart from at most one at each edge: the count inside one call would be 0 to 2. With the GIL released the
    watcher steps every half millisecond, some 20 to 40 times in one call of this size. A single call is timed,
    not a loop of calls, because the watcher may step between calls either way; a machine that starves the watcher
    for a whole call gets two more tries, which cannot make a GIL-holding call pass.
    """
    rng = np.random.default_rng(0)
    h = rng.standard_normal((128, 512, 576)).astype(np.float32)
    mask = np.ones((128, 512), dtype=bool)
    pool(h, mask, "mean", n_threads=1)  # warm the pool
    values = np.random.default_rng(1).random(500_000).tolist()
    held, _ = _watcher_steps_during(lambda: sorted(values))  # a C call that holds the GIL: the control
    assert held <= 2, f"the control call let the watcher step {held} times; the measurement cannot tell"
    tries = [_watcher_steps_during(lambda: pool(h, mask, "max", n_threads=1)) for _ in range(3)]
    assert max(steps for steps, _ in tries) >= 6, f"watcher steps inside each call (steps, seconds): {tries}"


@settings(max_examples=40, deadline=None)
@given(counts=st.lists(st.integers(1, 6), min_size=1, max_size=8), k=st.integers(1, 3), seed=st.integers(0, 99))
def test_score_reduction_matches_numpy(counts, k, seed):
    from fastprobe.pooling import reduce_scores

    rng = np.random.default_rng(seed)
    scores = rng.random((sum(counts), k))
    offsets = np.concatenate([[0], np.cumsum(counts)])
    blocks = [scores[a:b] for a, b in itertools.pairwise(offsets)]
    ref = {
        "max": [b.max(axis=0) for b in blocks],
        "min": [b.min(axis=0) for b in blocks],
        "mean": [b.mean(axis=0) for b in blocks],
        "last_token": [b[-1] for b in blocks],
        "first_token": [b[0] for b in blocks],
    }
    for method, want in ref.items():
        np.testing.assert_allclose(reduce_scores(scores, offsets, method), np.array(want), rtol=1e-15)
    np.testing.assert_allclose(reduce_scores(scores[:, 0], offsets, "max"), np.array(ref["max"])[:, 0])


def test_all_pooling_keeps_every_token_and_labels_follow():
    from fastprobe.pooling import per_token_labels, reduce_scores

    values = np.arange(12, dtype=np.float32).reshape(6, 2)
    offsets = [0, 2, 3, 6]
    np.testing.assert_array_equal(pool_ragged(values, offsets, "all"), values)
    np.testing.assert_array_equal(per_token_labels(["a", "b", "c"], offsets), ["a", "a", "b", "c", "c", "c"])
    with pytest.raises(InvalidInputError, match=r"strictly increasing .* offsets\[1\] = 2 and offsets\[2\] = 2"):
        pool_ragged(values, [0, 2, 2, 6], "all")
    with pytest.raises(InvalidInputError, match=r"end at the number of token rows \(6\); got 0 .. 5"):
        pool_ragged(values, [0, 2, 5], "all")
    with pytest.raises(ShapeMismatchError, match="expected 3 labels"):
        per_token_labels([1, 0], offsets)
    with pytest.raises(UnknownOptionError, match='unknown pooling "median"; expected one of: last_token'):
        reduce_scores(np.zeros(6), offsets, "median")
    with pytest.raises(ShapeMismatchError, match=r"scores: expected shape \(n_tokens,\) or \(n_tokens, k\)"):
        reduce_scores(np.zeros((6, 1, 1)), offsets)

"""fastprobe.scaling.PerLayerScaler side by side with lmprobe 0.10.3's PerLayerScaler, plus its errors."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
from lmprobe.scaling import PerLayerScaler as LmScaler
from sklearn.base import clone

from fastprobe.estimators import LayerScaler
from fastprobe.exceptions import NotFittedError, ShapeMismatchError, UnknownOptionError
from fastprobe.scaling import PerLayerScaler

STRATEGIES = ["per_neuron", "per_layer"]


def layered(n: int, n_layers: int, hidden: int, dtype: type[np.generic], seed: int = 0) -> np.ndarray:
    """Random features whose layers differ in location and scale; a constant neuron in layer 0."""
    rng = np.random.default_rng(seed)
    blocks = [rng.normal(5.0 * layer, 1.0 + 3.0 * layer, (n, hidden)) for layer in range(n_layers)]
    X = np.hstack(blocks)
    X[:, 1] = 2.5
    return X.astype(dtype)


def tolerance(dtype: type[np.generic]) -> dict[str, float]:
    # float64 runs in float64 on both sides; float32 differs only by accumulation (numpy float32 vs Rust float64).
    return {"rtol": 1e-12, "atol": 1e-12} if dtype == np.float64 else {"rtol": 2e-5, "atol": 2e-5}


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("strategy", STRATEGIES)
@pytest.mark.parametrize(("n_layers", "hidden"), [(1, 6), (3, 4), (2, 16)])
def test_matches_lmprobe(n_layers: int, hidden: int, strategy: str, dtype: type[np.generic]) -> None:
    X = layered(40, n_layers, hidden, dtype)
    X_new = layered(7, n_layers, hidden, dtype, seed=1)
    ours = PerLayerScaler(n_layers, hidden, strategy).fit(X)
    theirs = LmScaler(n_layers, hidden, strategy).fit(X)
    tol = tolerance(dtype)
    for name in ("means_", "stds_"):
        got, want = getattr(ours, name), getattr(theirs, name)
        assert got.shape == want.shape and got.dtype == want.dtype
        np.testing.assert_allclose(got, want, **tol)
    for method in ("transform", "inverse_transform"):
        got, want = getattr(ours, method)(X_new), getattr(theirs, method)(X_new)
        assert got.shape == want.shape and got.dtype == want.dtype
        np.testing.assert_allclose(got, want, **tol)
    np.testing.assert_allclose(ours.fit_transform(X), theirs.fit_transform(X), **tol)
    got_stats, want_stats = ours.get_layer_stats(), theirs.get_layer_stats()
    assert got_stats.keys() == want_stats.keys()
    for key in want_stats:
        assert got_stats[key].shape == want_stats[key].shape
        np.testing.assert_allclose(got_stats[key], want_stats[key], **tol)


def test_float64_keeps_full_precision() -> None:
    X = layered(25, 2, 3, np.float64)
    scaler = PerLayerScaler(2, 3)
    Z = scaler.fit_transform(X)
    np.testing.assert_allclose(Z.mean(axis=0), 0.0, atol=1e-13)
    np.testing.assert_allclose(scaler.inverse_transform(Z), X, rtol=1e-13)
    assert scaler.stds_ is not None and scaler.stds_[0, 1] == 1.0  # the constant neuron: std 0 -> 1
    per_layer = PerLayerScaler(2, 3, "per_layer").fit(X)
    blocks = X.reshape(25, 2, 3)
    np.testing.assert_allclose(per_layer.means_, blocks.mean(axis=(0, 2)), rtol=1e-14)
    np.testing.assert_allclose(per_layer.stds_, blocks.std(axis=(0, 2)), rtol=1e-14)


def test_constant_layer_gets_unit_scale() -> None:
    X = np.hstack([np.full((10, 3), 7.0), np.arange(30.0).reshape(10, 3)])
    for dtype in (np.float64, np.float32):
        scaler = PerLayerScaler(2, 3, "per_layer").fit(X.astype(dtype))
        assert scaler.stds_ is not None and scaler.stds_[0] == 1.0
        assert np.all(scaler.transform(X.astype(dtype))[:, :3] == 0.0)


def test_float32_runs_on_layer_scaler() -> None:
    X = layered(30, 3, 5, np.float32)
    for strategy in STRATEGIES:
        scaler = PerLayerScaler(3, 5, strategy).fit(X)
        reference = LayerScaler(3, mode=strategy).fit(X)
        assert isinstance(scaler, LayerScaler) and scaler.mode == strategy
        np.testing.assert_array_equal(scaler.mean_, reference.mean_)
        np.testing.assert_array_equal(scaler.scale_, reference.scale_)
        np.testing.assert_array_equal(scaler.transform(X), reference.transform(X))
        assert scaler.transform(X).dtype == np.float32
        assert scaler.transform(X.astype(np.float64)).dtype == np.float64  # promoted, as lmprobe's


def test_mixed_dtypes_follow_numpy_promotion() -> None:
    X = layered(20, 2, 4, np.float64)
    for fit_dtype in (np.float32, np.float64):
        for x_dtype in (np.float32, np.float64):
            ours = PerLayerScaler(2, 4).fit(X.astype(fit_dtype))
            theirs = LmScaler(2, 4).fit(X.astype(fit_dtype))
            got, want = ours.transform(X.astype(x_dtype)), theirs.transform(X.astype(x_dtype))
            assert got.dtype == want.dtype
            np.testing.assert_allclose(got, want, rtol=2e-5, atol=2e-5)
            assert ours.inverse_transform(X.astype(x_dtype)).dtype == want.dtype


def test_errors() -> None:
    with pytest.raises(UnknownOptionError, match="^Unknown strategy 'invalid' for PerLayerScaler; expected one of: "):
        PerLayerScaler(2, 3, strategy="invalid")
    with pytest.raises(ValueError, match="Unknown strategy"):
        LmScaler(2, 3, strategy="invalid")
    scaler = PerLayerScaler(2, 3)
    with pytest.raises(ShapeMismatchError, match=r"^Expected 6 features \(n_layers=2 x hidden_dim=3\).*, got 5$"):
        scaler.fit(np.zeros((10, 5)))
    with pytest.raises(ShapeMismatchError, match=r"^Expected 6 features .*got an array of shape \(6,\)"):
        scaler.fit(np.zeros(6))
    for call in (lambda: scaler.transform(np.zeros((5, 6))), lambda: scaler.inverse_transform(np.zeros((5, 6)))):
        with pytest.raises(NotFittedError, match="^PerLayerScaler has not been fitted; call fit"):
            call()
    with pytest.raises(RuntimeError, match="not been fitted"):
        scaler.get_layer_stats()
    assert scaler.means_ is None and scaler.stds_ is None
    scaler.fit(np.ones((4, 6)))
    with pytest.raises(ShapeMismatchError, match="Expected 6 features"):
        scaler.transform(np.zeros((5, 7)))


def test_sklearn_clone_and_pickle() -> None:
    X = layered(12, 2, 3, np.float64)
    scaler = PerLayerScaler(2, 3, "per_layer").fit(X)
    assert scaler.get_params() == {"n_layers": 2, "hidden_dim": 3, "strategy": "per_layer", "n_threads": None}
    fresh = clone(scaler)
    assert fresh.means_ is None and fresh.strategy == "per_layer"
    restored = pickle.loads(pickle.dumps(scaler))
    np.testing.assert_array_equal(restored.transform(X), scaler.transform(X))
    np.testing.assert_array_equal(restored.means_, scaler.means_)

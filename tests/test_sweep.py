"""Layer sweeps: each layer's result equals fitting that layer alone, from arrays or the store; errors and progress."""

from __future__ import annotations

import pathlib

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline

from fastprobe import ActivationStore, InvalidInputError, MissingActivationsError, ShapeMismatchError, _core
from fastprobe.estimators import LayerScaler, LogisticProbe, MassMeanProbe, RidgeClassifierProbe, RidgeProbe
from fastprobe.sweep import StoreLayers, fit_layers


def _layers(n_layers: int = 5, n: int = 120, d: int = 12, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = np.tile([0, 1, 2], n // 3)
    X = (rng.standard_normal((n_layers, n, d)) * rng.uniform(0.5, 20, size=(1, 1, d))).astype(np.float32)
    X[:, :, 0] += (y * np.arange(n_layers)[:, None]).astype(np.float32)
    return X, y


def _params(est: object) -> np.ndarray:
    probe = est.named_steps["probe"] if isinstance(est, Pipeline) else est
    return np.concatenate([np.ravel(probe.coef_), np.ravel(probe.intercept_)])


@pytest.mark.parametrize(
    ("estimator", "binary"),
    [
        (LogisticProbe(C=0.3, tol=1e-8, max_iter=500), False),
        (LogisticProbe(tol=1e-8, max_iter=500), True),
        (RidgeClassifierProbe(alphas=[0.1, 10.0]), False),
        (RidgeProbe(alphas=[0.1, 1.0, 10.0]), False),
        (MassMeanProbe(whiten=True, shrinkage=0.2), True),
    ],
    ids=lambda v: type(v).__name__ if not isinstance(v, bool) else ("binary" if v else "multiclass"),
)
@pytest.mark.parametrize("standardize", [True, False])
def test_each_layer_equals_its_own_fit(estimator, binary, standardize):
    X, y = _layers()
    if binary:
        y = (y > 0).astype(int)
    target = y.astype(np.float64) if isinstance(estimator, RidgeProbe) else y
    w = np.linspace(0.5, 2.0, len(y))
    swept = fit_layers(X, target, estimator, sample_weight=w, standardize=standardize, progress=False)
    assert len(swept) == len(X)
    for layer, fitted in zip(X, swept, strict=True):
        if standardize:
            scaler = LayerScaler().fit(layer)
            own = type(estimator)(**estimator.get_params()).fit(scaler.transform(layer), target, sample_weight=w)
            np.testing.assert_allclose(fitted.named_steps["scale"].mean_, scaler.mean_, rtol=1e-12)
            np.testing.assert_allclose(fitted.named_steps["scale"].scale_, scaler.scale_, rtol=1e-12)
        else:
            own = type(estimator)(**estimator.get_params()).fit(layer, target, sample_weight=w)
        np.testing.assert_allclose(_params(fitted), _params(own), rtol=1e-9, atol=1e-12)
        # The swept model predicts from raw activations.
        np.testing.assert_array_equal(
            fitted.predict(layer), own.predict(scaler.transform(layer) if standardize else layer)
        )


def test_any_sklearn_estimator_is_swept_in_python():
    X, y = _layers(n_layers=3)
    swept = fit_layers(list(X), y, LogisticRegression(max_iter=1000), progress=False)
    for layer, fitted in zip(X, swept, strict=True):
        own = LogisticRegression(max_iter=1000).fit(LayerScaler().fit_transform(layer), y)
        np.testing.assert_allclose(fitted.named_steps["probe"].coef_, own.coef_, rtol=1e-10)


def test_later_layers_separate_better_on_this_data():
    X, y = _layers(n_layers=4, n=300)
    accuracies = [
        p.score(layer, y) for p, layer in zip(fit_layers(X, y, LogisticProbe(), progress=False), X, strict=True)
    ]
    assert accuracies[0] < 0.5 < 0.9 < accuracies[-1]


def test_store_source_reads_each_layer_and_matches_arrays(tmp_path: pathlib.Path):
    rng = np.random.default_rng(1)
    n, hidden, sites = 60, 8, [3, 5, 7]
    counts = rng.integers(1, 6, size=n)
    tokens = rng.standard_normal((len(sites), int(counts.sum()), hidden)).astype(np.float32)
    prompts = [f"statement {i}" for i in range(n)]
    y = rng.integers(0, 2, size=n)
    tokens[0, np.cumsum(counts) - 1, 0] += 4 * y  # the last token at site 3 carries the label
    store = ActivationStore(tmp_path, dtype="float32")
    store.write(prompts, tokens, counts, sites=sites)
    for pooling in ("last_token", "mean", "max"):
        source = StoreLayers(store, prompts, sites, pooling)
        from_store = fit_layers(source, y, LogisticProbe(), progress=False)
        arrays = [store.read_pooled(prompts, [s], pooling) for s in sites]
        from_arrays = fit_layers(arrays, y, LogisticProbe(), progress=False)
        for a, b in zip(from_store, from_arrays, strict=True):
            np.testing.assert_array_equal(_params(a), _params(b))
        if pooling == "last_token":
            assert (
                from_store[0].score(arrays[0], y)
                > 0.95
                > max(p.score(a, y) for p, a in zip(from_store[1:], arrays[1:], strict=True))
            )
    with pytest.raises(MissingActivationsError, match=r"prompt \"never written\" has no stored activations at site 3"):
        fit_layers(StoreLayers(store, [*prompts, "never written"], sites), np.r_[y, 0], LogisticProbe(), progress=False)


def test_bad_layers_and_targets_are_named():
    X, y = _layers(n_layers=3)
    with pytest.raises(
        ShapeMismatchError, match=r"layer 1: expected shape \(120, hidden\) like layer 0, got \(119, 12\)"
    ):
        fit_layers([X[0], X[1][:-1], X[2]], y, LogisticProbe(), progress=False)
    with pytest.raises(ShapeMismatchError, match="3-D array"):
        fit_layers(X[0], y, LogisticProbe(), progress=False)
    with pytest.raises(InvalidInputError, match="layers is empty"):
        fit_layers([], y, LogisticProbe(), progress=False)
    with pytest.raises(ValueError, match="inconsistent numbers of samples"):
        fit_layers(X, y[:-3], LogisticProbe(), progress=False)
    bad = X.copy()
    bad[2, 7, 4] = np.inf
    with pytest.raises(InvalidInputError, match="layer 2: X contains inf at row 7, column 4"):
        fit_layers(bad, y, LogisticProbe(), standardize=False, progress=False)
    with pytest.raises(
        InvalidInputError, match=r"^LogisticProbe needs samples of at least 2 classes; y has only one class \(0\)$"
    ):
        fit_layers(X, np.zeros(len(y), dtype=int), LogisticProbe(), progress=False)
    with pytest.raises(InvalidInputError, match="workers must be a positive integer"):
        fit_layers(X, y, LogisticProbe(), workers=0, progress=False)


def test_progress_reports_every_layer_and_an_exception_stops_the_sweep():
    X, y = _layers(n_layers=6)
    seen: list[int] = []
    layers = [np.ascontiguousarray(a, dtype=np.float32) for a in X]
    labels = (y > 0).astype(np.int64)
    _core.sweep_layers(layers, labels, 2, None, "mass_mean", [], progress=seen.append, workers=2)
    assert sorted(seen) == list(range(6))

    calls: list[int] = []

    def stop(layer: int) -> None:
        calls.append(layer)
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        _core.sweep_layers(layers, labels, 2, None, "mass_mean", [], progress=stop, workers=1)
    assert len(calls) == 1

"""The Rust-backed estimators: scikit-learn's contract, parity with scikit-learn's own solvers, bad input."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.discriminant_analysis import LinearDiscriminantAnalysis
from sklearn.linear_model import LogisticRegression, Ridge, RidgeClassifierCV, RidgeCV
from sklearn.utils.estimator_checks import parametrize_with_checks

from fastprobe.estimators import (
    LayerScaler,
    LogisticProbe,
    MassMeanProbe,
    RidgeClassifierProbe,
    RidgeProbe,
    logistic_path,
)
from fastprobe.exceptions import FastprobeError, InvalidInputError, UnknownOptionError


@parametrize_with_checks(
    [
        RidgeProbe(),
        RidgeClassifierProbe(),
        LogisticProbe(),
        MassMeanProbe(),
        MassMeanProbe(whiten=True, shrinkage=0.1),
        MassMeanProbe(whiten=True),
        LayerScaler(),
    ],
    expected_failed_checks=lambda est: (
        {
            # Leave-one-out alpha selection sees a duplicated row as two samples and a weight of 2 as one (the same
            # holds for scikit-learn's RidgeCV); with a single alpha the fits are equal.
            "check_sample_weight_equivalence_on_dense_data": "LOO alpha selection is not weight-duplication invariant",
        }
        if isinstance(est, (RidgeProbe, RidgeClassifierProbe))
        else {}
    ),
)
def test_sklearn_contract(estimator, check):
    check(estimator)


def _regression(n: int, d: int, t: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d)).astype(np.float32)
    beta = rng.standard_normal((d, t))
    y = X.astype(np.float64) @ beta + 0.5 * rng.standard_normal((n, t)) + 2.0
    w = rng.uniform(0.2, 3.0, n)
    return X, y, w


@settings(max_examples=25, deadline=None)
@given(
    n=st.integers(3, 40),
    d=st.integers(1, 40),
    t=st.integers(1, 3),
    weighted=st.booleans(),
    intercept=st.booleans(),
    seed=st.integers(0, 2**16),
)
def test_ridge_matches_sklearn_ridge_and_ridgecv(n, d, t, weighted, intercept, seed):
    X, y, w = _regression(n, d, t, seed)
    sw = w if weighted else None
    alphas = [0.05, 0.7, 9.0]
    ours = RidgeProbe(alphas=alphas, fit_intercept=intercept).fit(X, y, sample_weight=sw)
    ref = RidgeCV(alphas=alphas, fit_intercept=intercept).fit(X.astype(np.float64), y, sample_weight=sw)
    # Same leave-one-out choice unless two alphas tie to rounding.
    if ours.alpha_ != ref.alpha_:
        assert ours.best_score_ == pytest.approx(ref.best_score_, rel=1e-4)
        return
    assert ours.best_score_ == pytest.approx(ref.best_score_, rel=1e-4, abs=1e-9)
    single = Ridge(alpha=ours.alpha_, fit_intercept=intercept).fit(X.astype(np.float64), y, sample_weight=sw)
    scale = max(1.0, float(np.abs(single.coef_).max()))
    np.testing.assert_allclose(np.ravel(ours.coef_), np.ravel(single.coef_), atol=2e-4 * scale)
    if intercept:
        np.testing.assert_allclose(
            np.ravel(ours.intercept_), np.ravel(single.intercept_), atol=2e-4 * scale * (1 + np.abs(X).max())
        )


@pytest.mark.parametrize(("n", "d"), [(30, 80), (80, 30)])
def test_ridge_loo_errors_match_sklearn_for_every_alpha_in_both_forms(n, d):
    X, y, w = _regression(n, d, 1, 7)
    alphas = np.logspace(-2, 3, 6)
    ref = RidgeCV(alphas=alphas, store_cv_results=True).fit(X.astype(np.float64), y[:, 0], sample_weight=w)
    ref_mse = ref.cv_results_.mean(axis=0)
    for mode in ("primal", "dual"):
        ours = RidgeProbe(alphas=alphas, mode=mode).fit(X, y[:, 0], sample_weight=w)
        assert ours.dual_ == (mode == "dual")
        # The centred, weighted design is rounded to float32 (the reference keeps float64). In the form `auto`
        # picks (dual when n <= d) that costs ~1e-7; in the other form the rank-deficient matrix amplifies it.
        rtol = 1e-6 if (mode == "dual") == (n <= d) else 5e-4
        np.testing.assert_allclose(ours.loo_mse_[:, 0], ref_mse, rtol=rtol)


def test_ridge_classifier_matches_sklearn():
    rng = np.random.default_rng(3)
    X = rng.standard_normal((90, 12)).astype(np.float32)
    y = np.array(["a", "b", "c"])[np.argmax(X[:, :3] + 0.3 * rng.standard_normal((90, 3)), axis=1)]
    alphas = [0.1, 1.0, 10.0]
    ours = RidgeClassifierProbe(alphas=alphas).fit(X, y)
    ref = RidgeClassifierCV(alphas=alphas).fit(X.astype(np.float64), y)
    assert ours.alpha_ == ref.alpha_
    np.testing.assert_allclose(ours.coef_, ref.coef_, atol=1e-4)
    np.testing.assert_array_equal(ours.predict(X), ref.predict(X))


@settings(max_examples=15, deadline=None)
@given(
    n=st.integers(8, 60),
    d=st.integers(1, 30),
    k=st.integers(2, 4),
    C=st.sampled_from([0.01, 0.3, 2.0]),
    weighted=st.booleans(),
    seed=st.integers(0, 2**16),
)
def test_logistic_matches_sklearn_lbfgs(n, d, k, C, weighted, seed):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d)).astype(np.float32)
    y = np.arange(n) % k  # every class present
    rng.shuffle(y)
    X[:, 0] += y  # some signal
    w = rng.uniform(0.5, 2.0, n) if weighted else None
    ours = LogisticProbe(C=C, tol=1e-10, max_iter=5000).fit(X, y, sample_weight=w)
    ref = LogisticRegression(C=C, tol=1e-10, max_iter=5000).fit(X.astype(np.float64), y, sample_weight=w)
    np.testing.assert_allclose(ours.coef_, ref.coef_, atol=1e-4, rtol=1e-4)
    np.testing.assert_allclose(ours.intercept_, ref.intercept_, atol=1e-4, rtol=1e-4)
    np.testing.assert_allclose(ours.predict_proba(X), ref.predict_proba(X.astype(np.float64)), atol=1e-5)


def test_logistic_path_warm_starts_to_the_same_solutions():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((200, 20)).astype(np.float32)
    y = (X[:, 0] + X[:, 1] > 0).astype(int)
    Cs = [0.01, 0.1, 1.0, 10.0]
    path = logistic_path(X, y, Cs, tol=1e-10, max_iter=5000)
    for C, (coef, intercept, _) in zip(Cs, path, strict=True):
        ref = LogisticRegression(C=C, tol=1e-10, max_iter=5000).fit(X.astype(np.float64), y)
        np.testing.assert_allclose(coef, ref.coef_, atol=1e-5)
        np.testing.assert_allclose(intercept, ref.intercept_, atol=1e-5)
    cold = [LogisticProbe(C=C, tol=1e-6, max_iter=5000).fit(X, y).n_iter_[0] for C in Cs[1:]]
    warm = [n for _, _, n in logistic_path(X, y, Cs, tol=1e-6, max_iter=5000)[1:]]
    assert sum(warm) < sum(cold)


def test_mass_mean_directions_against_numpy_and_lda():
    rng = np.random.default_rng(5)
    n, d = 400, 6
    y = np.arange(n) % 2
    cov = np.diag([1.0, 4.0, 0.25, 1.0, 2.0, 1.0])
    X = (rng.standard_normal((n, d)) @ np.sqrt(cov) + np.outer(y, [1.0, 0.5, 0.2, 0, 0, 0])).astype(np.float32)
    plain = MassMeanProbe().fit(X, y)
    diff = X[y == 1].mean(axis=0, dtype=np.float64) - X[y == 0].mean(axis=0, dtype=np.float64)
    np.testing.assert_allclose(plain.coef_[0], diff / np.linalg.norm(diff), atol=1e-6)
    mid = (X[y == 1].mean(axis=0, dtype=np.float64) + X[y == 0].mean(axis=0, dtype=np.float64)) / 2
    assert plain.intercept_[0] == pytest.approx(-mid @ plain.coef_[0], abs=1e-6)
    white = MassMeanProbe(whiten=True).fit(X, y)
    lda = LinearDiscriminantAnalysis(solver="lsqr").fit(X.astype(np.float64), y)
    ref = lda.coef_[0] / np.linalg.norm(lda.coef_[0])
    np.testing.assert_allclose(white.coef_[0], ref, atol=1e-5)
    assert white.score(X, y) >= plain.score(X, y) - 0.02
    proba = white.predict_proba(X)[:, 1]
    assert np.all(np.diff(proba[np.argsort(white.decision_function(X))]) >= 0)


def _lda_data(n: int, d: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = (np.arange(n) % 3 == 0).astype(int)  # a third positive: LDA's threshold moves by the log prior ratio
    X = rng.standard_normal((n, d)) * np.linspace(0.5, 3.0, d) + np.outer(y, np.linspace(1.0, 0.0, d))
    return X, y, rng.standard_normal((60, d)) * np.linspace(0.5, 3.0, d)


@pytest.mark.parametrize(("n", "d"), [(12, 40), (31, 30), (9, 200)])
def test_lda_with_fewer_samples_than_features_is_sklearns(n: int, d: int) -> None:
    """A singular within-class covariance: scikit-learn's LDA (solver "svd") fits it, and so does "lda"."""
    from fastprobe.classifiers import build_classifier

    X, y, X_test = _lda_data(n, d, seed=n)
    ref = LinearDiscriminantAnalysis().fit(X, y)
    ours = build_classifier("lda").fit(X, y)
    assert isinstance(ours, MassMeanProbe)
    np.testing.assert_allclose(ours.predict_proba(X_test), ref.predict_proba(X_test), atol=1e-10)
    np.testing.assert_allclose(ours.predict_proba(X), ref.predict_proba(X), atol=1e-10)
    np.testing.assert_array_equal(ours.predict(X_test), ref.predict(X_test))
    assert ours.coef_[0] @ ref.coef_[0] / np.linalg.norm(ref.coef_[0]) == pytest.approx(1.0, abs=1e-12)
    assert ours.platt_slope_ == pytest.approx(np.linalg.norm(ref.coef_[0]), rel=1e-10)


def test_singular_lda_weights_constant_features_probe_and_sweep() -> None:
    from fastprobe import Probe
    from fastprobe.sweep import fit_layers

    X, y, X_test = _lda_data(20, 50, seed=1)
    # An integer weight is that many copies of the row.
    w = np.arange(20) % 3 + 1
    weighted = MassMeanProbe(whiten=True).fit(X, y, sample_weight=w)
    ref = LinearDiscriminantAnalysis().fit(np.repeat(X, w, axis=0), np.repeat(y, w))
    np.testing.assert_allclose(weighted.predict_proba(X_test), ref.predict_proba(X_test), atol=1e-10)
    # More samples than features, but a feature constant within each class: the Rust solver refuses, numpy fits.
    Xc, yc, Xc_test = _lda_data(80, 6, seed=2)
    Xc[:, 2] = 4.0
    np.testing.assert_allclose(
        MassMeanProbe(whiten=True).fit(Xc, yc).predict_proba(Xc_test),
        LinearDiscriminantAnalysis().fit(Xc, yc).predict_proba(Xc_test),
        atol=1e-10,
    )
    # Through a probe (standardized float32 features: the svd solver does not depend on feature scales).
    lda = LinearDiscriminantAnalysis().fit(X, y)
    probe = Probe(classifier="lda").fit_from_activations(X, y)
    np.testing.assert_allclose(probe.predict_proba_from_activations(X_test), lda.predict_proba(X_test), atol=1e-4)
    # A layer sweep: the Rust sweep refuses the singular covariance, each layer is then fitted in numpy.
    layers = np.stack([X, X[:, ::-1] * 2.0]).astype(np.float32)
    fitted = fit_layers(layers, y, MassMeanProbe(whiten=True), progress=False)
    for layer, pipe in zip(layers, fitted, strict=True):
        ref_layer = LinearDiscriminantAnalysis().fit(layer.astype(np.float64), y)
        np.testing.assert_allclose(pipe.predict_proba(layer), ref_layer.predict_proba(layer), atol=1e-4)
    # With shrinkage the Rust solver is used as before: Platt-scaled probabilities.
    shrunk = MassMeanProbe(whiten=True, shrinkage=0.1).fit(X, y)
    z = shrunk.decision_function(X_test)
    np.testing.assert_allclose(shrunk.predict_proba(X_test)[:, 1], 1 / (1 + np.exp(-shrunk.platt_slope_ * z)))


def test_layer_scaler_matches_numpy():
    rng = np.random.default_rng(1)
    X = (rng.standard_normal((50, 3 * 4)) * np.repeat([1.0, 10.0, 0.1], 4) + 5).astype(np.float32)
    X[:, 5] = 2.0  # constant feature
    per_neuron = LayerScaler(n_layers=3).fit(X)
    std = X.astype(np.float64).std(axis=0)
    std[std == 0] = 1.0
    np.testing.assert_allclose(per_neuron.transform(X), (X - X.mean(axis=0, dtype=np.float64)) / std, atol=1e-5)
    per_layer = LayerScaler(n_layers=3, mode="per_layer").fit(X)
    blocks = X.astype(np.float64).reshape(50, 3, 4)
    expected = (blocks - blocks.mean(axis=(0, 2), keepdims=True)) / blocks.std(axis=(0, 2), keepdims=True)
    np.testing.assert_allclose(per_layer.transform(X), expected.reshape(50, 12), atol=1e-5)
    np.testing.assert_allclose(per_layer.inverse_transform(per_layer.transform(X)), X, rtol=1e-5, atol=1e-5)


def test_bad_input_is_named():
    X = np.ones((5, 3), dtype=np.float32)
    with pytest.raises(FastprobeError, match="every alpha must be finite and > 0"):
        RidgeProbe(alphas=[1.0, -1.0]).fit(X, np.arange(5.0))
    with pytest.raises(UnknownOptionError, match="auto, primal, dual"):
        RidgeProbe(mode="cholesky").fit(X, np.arange(5.0))
    # These four once matched only words scikit-learn's generic messages share; each now asserts fastprobe's own.
    with pytest.raises(
        InvalidInputError, match=r"^LogisticProbe needs samples of at least 2 classes; y has only one class \(0\.0\)$"
    ):
        LogisticProbe().fit(X, np.zeros(5))
    with pytest.raises(
        InvalidInputError,
        match=r"^Only binary classification is supported\. The type of the target is multiclass \(3 classes\); "
        r"MassMeanProbe separates exactly two classes\.$",
    ):
        MassMeanProbe().fit(np.eye(6, dtype=np.float32), [0, 1, 2, 0, 1, 2])
    with pytest.raises(FastprobeError, match="class means are identical"):
        MassMeanProbe().fit(X, [0, 1, 0, 1, 0])
    with pytest.raises(
        FastprobeError, match="no sample varies within its class, so LDA has no direction; set shrinkage"
    ):
        MassMeanProbe(whiten=True).fit(np.eye(4, 8, dtype=np.float32), [0, 1, 0, 1])
    with pytest.raises(InvalidInputError, match=r"^X has 1 sample\(s\); at least 2 are needed to fit$"):
        RidgeProbe().fit(X[:1], [1.0])
    with pytest.raises(FastprobeError, match="not n_layers = 2 blocks"):
        LayerScaler(n_layers=2).fit(np.ones((4, 5)))
    with pytest.raises(InvalidInputError, match=r"^X contains NaN at row 0, column 0; every value must be finite$"):
        LogisticProbe().fit(np.array([[np.nan], [1.0]]), [0, 1])

"""lmprobe's classifiers module in fastprobe.classifiers, side by side with lmprobe 0.10.3's own classes.

fastprobe's names are fitted by its Rust solvers; each test compares them with lmprobe's class (same data, same
options) or with scikit-learn and numpy, and checks the error types and messages lmprobe's users rely on.
"""

from __future__ import annotations

import warnings

import lmprobe.classifiers as lm
import numpy as np
import pytest
from sklearn.base import clone
from sklearn.linear_model import LogisticRegression, LogisticRegressionCV, Perceptron, SGDClassifier
from sklearn.metrics import roc_auc_score
from sklearn.svm import SVC

import fastprobe.classifiers as fc
from fastprobe import (
    InvalidEstimatorError,
    InvalidInputError,
    NotFittedError,
    Probe,
    ShapeMismatchError,
    UnknownOptionError,
)
from fastprobe.estimators import GroupLassoProbe, LogisticProbe, MassMeanProbe, RidgeClassifierProbe, RidgeProbe


def blobs(n: int = 60, d: int = 6, seed: int = 0, shift: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = (np.arange(n) % 3 == 0).astype(int)  # unbalanced: a third positive
    X = rng.standard_normal((n, d)) + shift * np.outer(y, np.linspace(1.0, 0.2, d))
    return X, y


class NoFit:
    def predict(self, X):
        return np.zeros(len(X))


class NoPredict:
    def fit(self, X, y):
        return self


# ------------------------------------------------------------------------------------------------- build / resolve


def test_build_classifier_takes_lmprobe_positional_form() -> None:
    for name in ("svm", "sgd", "logistic_regression_cv"):
        ours = fc.build_classifier(name, 7, {"max_iter": 321}, "sklearn")
        theirs = lm.build_classifier(name, 7, {"max_iter": 321}, "sklearn")
        assert type(ours) is type(theirs)
        assert ours.get_params() == theirs.get_params()
    assert isinstance(fc.build_classifier("svm", 0), SVC)
    assert isinstance(fc.build_classifier("sgd", 0), SGDClassifier)
    assert isinstance(fc.build_classifier("logistic_regression_cv", 0, {"cv": 3}), LogisticRegressionCV)
    assert fc.build_classifier("logistic_regression", 0, None, "auto").get_params()["max_iter"] == 1000


def test_rust_estimators_fit_lmprobes_models() -> None:
    X, y = blobs(200, 8)
    ours = fc.build_classifier("logistic_regression", 0, {"C": 0.5, "tol": 1e-8}).fit(X, y)
    theirs = lm.build_classifier("logistic_regression", 0, {"C": 0.5, "tol": 1e-8}).fit(X, y)
    assert isinstance(ours, LogisticProbe) and ours.C == 0.5
    np.testing.assert_allclose(ours.predict_proba(X), theirs.predict_proba(X), atol=1e-5)
    ridge = fc.build_classifier("ridge_regression", None, {"alpha": 2.0})
    assert isinstance(ridge, RidgeProbe) and ridge.alpha == 2.0
    target = X @ np.arange(8.0)
    np.testing.assert_allclose(
        ridge.fit(X, target).predict(X),
        lm.build_classifier("ridge_regression", None, {"alpha": 2.0}).fit(X, target).predict(X),
        atol=1e-3,
    )
    ridge_clf = fc.build_classifier("ridge")
    assert isinstance(ridge_clf, RidgeClassifierProbe) and ridge_clf.alpha == 1.0
    assert not hasattr(ridge_clf, "predict_proba")
    np.testing.assert_array_equal(ridge_clf.fit(X, y).predict(X), lm.build_classifier("ridge").fit(X, y).predict(X))
    with pytest.raises(AttributeError, match="has 3 alphas"):
        _ = RidgeProbe().alpha


def test_unknown_names_and_backends() -> None:
    with pytest.raises(ValueError, match="Unknown classifier"):
        lm.build_classifier("forest")
    with pytest.raises(UnknownOptionError, match="Unknown classifier 'forest'; expected one of: logistic_regression"):
        fc.build_classifier("forest")
    with pytest.raises(UnknownOptionError, match="Unknown compute_backend 'cuml'; expected one of: sklearn, auto"):
        fc.build_classifier("sgd", 0, None, "cuml")
    with pytest.raises(UnknownOptionError, match="Unknown compute_backend 'jax'"):
        Probe(compute_backend="jax").fit_from_activations(*blobs())
    assert fc.cuml_available() is lm.cuml_available() is False


def test_validate_and_resolve_classifier() -> None:
    for module, error in ((lm, TypeError), (fc, InvalidEstimatorError)):
        with pytest.raises(error, match=r"Classifier NoFit must have a fit\(\) method"):
            module.validate_classifier(NoFit())
        with pytest.raises(error, match=r"Classifier NoPredict must have a predict\(\) method"):
            module.validate_classifier(NoPredict())
        with pytest.warns(UserWarning, match="does not support predict_proba"):
            module.validate_classifier(module.build_classifier("ridge"))
        with pytest.warns(UserWarning, match="does not support predict_proba"):
            module.resolve_classifier("ridge")
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            module.validate_classifier(module.build_classifier("logistic_regression"))
        custom = LogisticRegression(C=3.0)
        assert module.resolve_classifier(custom, 1, {"C": 9.0}) is custom
        assert module.resolve_classifier("logistic_regression", 1, {"C": 0.01}).C == 0.01
    assert issubclass(InvalidEstimatorError, TypeError)
    with pytest.raises(InvalidEstimatorError, match=r"Classifier int must have a fit\(\) method"):
        fc.build_classifier(42)
    with pytest.warns(UserWarning, match="Perceptron does not support predict_proba"):
        assert isinstance(fc.build_classifier(Perceptron(), classifier_kwargs={"alpha": 0.1}), Perceptron)


def test_sgd_gpu_scheduler_message() -> None:
    X, y = blobs()
    with pytest.raises(UnknownOptionError, match="Unknown scheduler 'warm'"):
        fc.build_classifier("sgd_gpu", 0, {"scheduler": "warm", "epochs": 1}).fit(X, y)


# ----------------------------------------------------------------------------------------------- MassMeanClassifier


def test_mass_mean_classifier_matches_lmprobe() -> None:
    X, y = blobs(80, 5)
    ours = fc.build_classifier("mass_mean").fit(X, y)
    theirs = lm.MassMeanClassifier().fit(X, y)
    assert isinstance(ours, fc.MassMeanClassifier) and isinstance(ours, MassMeanProbe)
    assert ours.coef_.shape == (5,) and isinstance(ours.intercept_, float)
    # The Rust solver reads float32 copies of X; the class means are computed from X itself.
    np.testing.assert_allclose(ours.coef_, theirs.coef_, atol=1e-6)
    assert ours.intercept_ == pytest.approx(theirs.intercept_, abs=1e-6)
    np.testing.assert_allclose(ours.mean_positive_, theirs.mean_positive_, atol=1e-12)
    np.testing.assert_allclose(ours.mean_negative_, theirs.mean_negative_, atol=1e-12)
    np.testing.assert_allclose(ours.decision_function(X), theirs.decision_function(X), atol=1e-5)
    np.testing.assert_allclose(ours.decision_function(X), X @ ours.coef_ + ours.intercept_)
    np.testing.assert_array_equal(ours.predict(X), theirs.predict(X))
    proba = ours.predict_proba(X)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    np.testing.assert_array_equal(proba[:, 1] > 0.5, ours.decision_function(X) > 0)
    assert roc_auc_score(y, proba[:, 1]) == pytest.approx(roc_auc_score(y, theirs.predict_proba(X)[:, 1]))
    assert ours.score(X, y) == pytest.approx(theirs.score(X, y))


def test_mass_mean_classifier_interface() -> None:
    clf = fc.MassMeanClassifier()
    assert clf.get_params() == lm.MassMeanClassifier().get_params() == {}
    assert clf.set_params(anything="ignored") is clf
    assert type(clone(clf)) is fc.MassMeanClassifier
    with pytest.raises(RuntimeError, match="MassMeanClassifier has not been fitted"):
        clf.decision_function(np.ones((1, 2)))
    with pytest.raises(NotFittedError, match="has not been fitted"):
        clf.predict(np.ones((1, 2)))
    with pytest.raises(ValueError, match="Both classes must have"):
        lm.MassMeanClassifier().fit(np.ones((2, 2)), np.array([1, 1]))
    with pytest.raises(InvalidInputError, match=r"Both classes must have at least one sample; y has only \[1\]"):
        clf.fit(np.ones((2, 2)), np.array([1, 1]))
    assert fc.build_classifier("mass_mean", 0, {"n_threads": 1}).get_params() == MassMeanProbe(n_threads=1).get_params()


def test_mass_mean_classifier_weights_and_labels() -> None:
    """Weights act as repeated rows (lmprobe's has no sample_weight); any two labels work (lmprobe's: 0 and 1)."""
    X, y = blobs(30, 4, seed=3)
    w = np.arange(30) % 3 + 1
    weighted = fc.MassMeanClassifier().fit(X, y, sample_weight=w)
    repeated = fc.MassMeanClassifier().fit(np.repeat(X, w, axis=0), np.repeat(y, w))
    np.testing.assert_allclose(weighted.coef_, repeated.coef_, atol=1e-6)
    np.testing.assert_allclose(weighted.mean_positive_, repeated.mean_positive_, atol=1e-12)
    assert weighted.intercept_ == pytest.approx(repeated.intercept_, abs=1e-6)
    labels = np.where(y == 1, "yes", "no")
    named = fc.MassMeanClassifier().fit(X, labels)
    np.testing.assert_array_equal(named.predict(X), np.where(fc.MassMeanClassifier().fit(X, y).predict(X), "yes", "no"))


# ----------------------------------------------------------------------------------------------- EnsembleClassifier


def test_ensemble_classifier_matches_lmprobe() -> None:
    X, y = blobs(120, 6)
    ours = fc.build_classifier("ensemble", 42, {"C_values": [0.05, 1.0, 0.3], "tol": 1e-10})
    theirs = lm.build_classifier("ensemble", 42, {"C_values": [0.05, 1.0, 0.3], "tol": 1e-10})
    assert isinstance(ours, fc.EnsembleClassifier) and ours.random_state == 42
    ours.fit(X, y)
    theirs.fit(X, y)
    assert [m.C for m in ours.estimators_] == [0.05, 1.0, 0.3]
    assert all(isinstance(m, LogisticProbe) for m in ours.estimators_)
    np.testing.assert_allclose(ours.coef_, theirs.coef_, atol=1e-5)
    np.testing.assert_allclose(ours.intercept_, theirs.intercept_, atol=1e-5)
    np.testing.assert_allclose(ours.predict_proba(X), theirs.predict_proba(X), atol=1e-6)
    members = np.mean([m.predict_proba(X) for m in ours.estimators_], axis=0)
    np.testing.assert_allclose(ours.predict_proba(X), members, atol=1e-12)
    np.testing.assert_array_equal(ours.predict(X), theirs.predict(X))
    np.testing.assert_array_equal(ours.classes_, theirs.classes_)


def test_ensemble_classifier_other_solver_is_lmprobes() -> None:
    X, y = blobs(60, 4, seed=1)
    ours = fc.EnsembleClassifier(C_values=[0.1, 1.0], solver="liblinear", random_state=0).fit(X, y)
    theirs = lm.EnsembleClassifier(C_values=[0.1, 1.0], solver="liblinear", random_state=0).fit(X, y)
    assert all(isinstance(m, LogisticRegression) and m.solver == "liblinear" for m in ours.estimators_)
    np.testing.assert_allclose(ours.predict_proba(X), theirs.predict_proba(X), atol=1e-12)
    l1 = fc.EnsembleClassifier(C_values=[1.0], l1_ratio=1.0, solver="saga", max_iter=5000).fit(X, y)
    assert l1.estimators_[0].l1_ratio == 1.0 and l1.get_params()["l1_ratio"] == 1.0


def test_ensemble_classifier_params() -> None:
    assert fc.EnsembleClassifier().C_values == lm.EnsembleClassifier().C_values == [0.01, 0.1, 0.5, 1.0, 5.0]
    params = {"C_values": [0.1, 1.0], "solver": "liblinear", "max_iter": 500, "random_state": 123}
    assert fc.EnsembleClassifier(**params).get_params() == lm.EnsembleClassifier(**params).get_params() == params
    clf = fc.EnsembleClassifier(C_values=[0.1], tol=1e-3)
    copy = clone(clf)  # lmprobe's clone drops tol (a known fault)
    assert copy.get_params() == clf.get_params() and copy.get_params()["tol"] == 1e-3
    clf.set_params(solver="saga", fit_intercept=False)
    assert clf.solver == "saga" and clf.get_params()["fit_intercept"] is False
    kwargs = {"C_values": [0.1, 1.0], "solver": "liblinear"}
    assert fc.build_classifier("ensemble", 0, kwargs).solver == "liblinear"
    assert kwargs == {"C_values": [0.1, 1.0], "solver": "liblinear"}, "the caller's dict is never modified"
    with pytest.raises(RuntimeError, match="EnsembleClassifier has not been fitted"):
        fc.EnsembleClassifier().predict_proba(np.zeros((1, 5)))
    with pytest.raises(InvalidInputError, match="must be a number > 0"):
        fc.EnsembleClassifier(C_values=[1.0, -1.0]).fit(*blobs())


def test_ensemble_and_mass_mean_through_probe() -> None:
    X, y = blobs(60, 8, seed=2)
    for name, cls in (("ensemble", fc.EnsembleClassifier), ("mass_mean", fc.MassMeanClassifier)):
        probe = Probe(classifier=name, random_state=0).fit_from_activations(X, y)
        assert isinstance(probe.classifier_, cls)
        assert probe.score_from_activations(X, y) > 0.8
        importance = probe.compute_layer_importance()
        assert importance.shape == (1,)


# --------------------------------------------------------------------------------------------- GroupLassoClassifier


def test_group_lasso_classifier_selects_layers() -> None:
    rng = np.random.default_rng(4)
    n, hidden, layers = 200, 5, 3
    X = rng.standard_normal((n, hidden * layers))
    y = (X[:, hidden : 2 * hidden] @ np.ones(hidden) + 0.3 * rng.standard_normal(n) > 0).astype(int)
    clf = fc.GroupLassoClassifier(hidden_dim=hidden, n_layers=layers, alpha=0.05).fit(X, y)
    assert clf.coef_.shape == (hidden * layers,) and clf.group_norms_.shape == (layers,)
    assert clf.selected_groups_ == [1]
    np.testing.assert_allclose(clf.group_norms_, np.linalg.norm(clf.coef_.reshape(layers, hidden), axis=1))
    # Optimality of (1/n) sum logloss + alpha sum_g |coef_g|: a removed group's gradient is within alpha.
    p = 1 / (1 + np.exp(-(X @ clf.coef_ + clf.intercept_[0])))
    grad = (X.T @ (p - y) / n).reshape(layers, hidden)
    for g in range(layers):
        if g not in clf.selected_groups_:
            assert np.linalg.norm(grad[g]) <= 0.05 + 1e-3
    ref = GroupLassoProbe(alpha=0.05, n_groups=layers).fit(X, y)
    np.testing.assert_allclose(clf.predict_proba(X), ref.predict_proba(X), atol=1e-12)
    np.testing.assert_array_equal(clf.predict(X), ref.predict(X))
    assert clf.get_params() == {"hidden_dim": hidden, "n_layers": layers, "alpha": 0.05, "random_state": None}
    with pytest.raises(ShapeMismatchError, match=r"X has 10 features, expected 15 \(hidden_dim=5 x n_layers=3\)"):
        fc.GroupLassoClassifier(hidden_dim=hidden, n_layers=layers).fit(X[:, :10], y)
    with pytest.raises(RuntimeError, match="GroupLassoClassifier has not been fitted"):
        fc.GroupLassoClassifier(hidden_dim=hidden, n_layers=layers).predict(X)

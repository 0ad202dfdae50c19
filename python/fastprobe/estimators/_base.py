"""What the estimator families share: input conversion, class encoding, warnings, and the solver plan.

A private module of :mod:`fastprobe.estimators`: its sibling files import these names; nothing outside the package
does, except :class:`SolverPlan` and :func:`solver_plan`, which the package re-exports for layer sweeps.

The fits of the Rust-solved estimators validate ``X`` with ``ensure_all_finite=False``: the solvers check every value
and name the first that is not finite ("X contains NaN at row 3, column 7; every value must be finite").
"""

from __future__ import annotations

import numbers
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import _check_sample_weight, check_is_fitted, validate_data

from fastprobe import _core
from fastprobe.exceptions import InvalidEstimatorError, InvalidInputError, NotFittedError


def float32(X: np.ndarray) -> np.ndarray:
    """Return ``X`` as C-contiguous float32 (a copy unless it already is)."""
    return np.ascontiguousarray(X, dtype=np.float32)


def weights(sample_weight: Any, X: np.ndarray) -> np.ndarray | None:
    """Return validated float64 sample weights, one per row of ``X`` (None stays None)."""
    if sample_weight is None:
        return None
    return np.ascontiguousarray(_check_sample_weight(sample_weight, X, dtype=np.float64))


def encode_classes(estimator: BaseEstimator, y: np.ndarray) -> np.ndarray:
    """Set ``estimator.classes_`` from ``y`` and return ``y`` as int64 class indices.

    Raises
    ------
    InvalidInputError
        If ``y`` has fewer than two classes (also a ValueError, as scikit-learn's contract asks).
    """
    check_classification_targets(y)
    estimator.classes_, indices = np.unique(y, return_inverse=True)
    if len(estimator.classes_) < 2:
        raise InvalidInputError(
            f"{type(estimator).__name__} needs samples of at least 2 classes; y has only one class "
            f"({estimator.classes_.tolist()[0]!r})"
        )
    return np.ascontiguousarray(indices, dtype=np.int64)


def warn_not_converged(est: BaseEstimator, stacklevel: int) -> None:
    """Emit scikit-learn's :class:`~sklearn.exceptions.ConvergenceWarning` for ``est`` (which has ``max_iter``)."""
    warnings.warn(
        f"{type(est).__name__} did not converge in max_iter={est.max_iter} iterations; increase max_iter or "
        "standardize the features",
        ConvergenceWarning,
        stacklevel=stacklevel + 1,
    )


def binary_proba(scores: np.ndarray) -> np.ndarray:
    """Two-column probabilities ``[1 - sigmoid(s), sigmoid(s)]`` of binary scores."""
    p1 = 1.0 / (1.0 + np.exp(-scores))
    return np.column_stack([1.0 - p1, p1])


def require_fitted(est: Any, attribute: str) -> None:
    """Raise :class:`NotFittedError` (a RuntimeError, as lmprobe's) when ``est`` lacks the fitted ``attribute``."""
    if getattr(est, attribute, None) is None:
        raise NotFittedError(f"{type(est).__name__} has not been fitted; call fit(X, y) first")


def only_options(kwargs: Mapping[str, Any], allowed: Mapping[str, Any]) -> bool:
    """Whether every option is one the Rust estimator has (``allowed`` maps a name to its accepted values or None)."""
    for key, value in kwargs.items():
        if key not in allowed:
            return False
        values = allowed[key]
        if values is not None and value not in values:
            return False
    return True


def positive_option(value: Any, name: str) -> float:
    """Return ``classifier_kwargs[name]`` (``value``) as a float, checked to be a number > 0."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not float(value) > 0:
        raise InvalidInputError(f"classifier_kwargs[{name!r}] must be a number > 0; got {value!r}")
    return float(value)


class LinearClassifierMixin:
    """``decision_function`` and ``predict`` of a fitted linear classifier (``coef_`` rows, ``intercept_``)."""

    classes_: np.ndarray
    coef_: np.ndarray
    intercept_: np.ndarray

    def decision_function(self, X: Any) -> np.ndarray:
        """Scores: shape (n,) for two classes (positive: ``classes_[1]``), else (n, n_classes)."""
        check_is_fitted(self)
        X = validate_data(self, X, dtype=[np.float32, np.float64], reset=False)
        scores = np.asarray(X, dtype=np.float64) @ self.coef_.T + self.intercept_
        return scores[:, 0] if scores.shape[1] == 1 else scores

    def predict(self, X: Any) -> np.ndarray:
        """Predict class labels."""
        scores = self.decision_function(X)
        idx = (scores > 0).astype(int) if scores.ndim == 1 else np.argmax(scores, axis=1)
        return self.classes_[idx]


@dataclass
class SolverPlan:
    """What a fit needs besides ``X``.

    The Rust solver's name and options, the encoded targets, and how to turn the solver's raw result into fitted
    attributes. One plan serves one fit or a whole layer sweep (:func:`fastprobe.sweep.fit_layers`).

    Attributes
    ----------
    solver : {"ridge", "logistic", "mass_mean"}
    grid : list of float
        The alphas (ridge) or Cs (logistic) solved; empty for mass-mean.
    targets : ndarray
        float64 targets (ridge) or int64 class indices.
    n_classes : int
    options : dict
        The solver's other keyword arguments.
    finish : callable
        ``finish(estimator, raw)`` sets the fitted attributes from the solver's raw result.
    """

    solver: str
    grid: list[float]
    targets: np.ndarray
    n_classes: int
    options: dict[str, Any]
    finish: Callable[[Any, Any], None]


def solver_plan(estimator: BaseEstimator, y: Any) -> SolverPlan:
    """Return the plan a Rust-solved estimator's ``fit`` runs for targets ``y``.

    Sets what the targets alone decide (``classes_`` of a classifier) and checks the estimator's parameters.

    Parameters
    ----------
    estimator : RidgeProbe, RidgeClassifierProbe, LogisticProbe or MassMeanProbe
    y : array-like of shape (n_samples,) or (n_samples, n_targets)

    Returns
    -------
    SolverPlan

    Raises
    ------
    InvalidEstimatorError
        If ``estimator`` is not fitted by one of fastprobe's planned Rust solvers.
    """
    plan = getattr(estimator, "_plan", None)
    if plan is None:
        raise InvalidEstimatorError(
            f"{type(estimator).__name__} has no solver plan; expected RidgeProbe, RidgeClassifierProbe, "
            "LogisticProbe or MassMeanProbe"
        )
    result: SolverPlan = plan(y)
    return result


def solve(plan: SolverPlan, X: np.ndarray, sample_weight: Any, n_threads: int | None) -> Any:
    """Run the plan's Rust solver on one design matrix; the raw result goes to ``plan.finish``."""
    X32 = float32(X)
    w = weights(sample_weight, X32)
    o = plan.options
    if plan.solver == "ridge":
        return _core.ridge_path(X32, plan.targets, w, plan.grid, o["fit_intercept"], o["mode"], n_threads)
    if plan.solver == "logistic":
        return _core.logistic_path(
            X32, plan.targets, plan.n_classes, w, plan.grid, o["fit_intercept"], o["max_iter"], o["tol"], n_threads
        )
    return _core.mass_mean_fit(X32, plan.targets, w, o["whiten"], o["shrinkage"], n_threads)


def fit_planned(est: Any, X: np.ndarray, y: Any, sample_weight: Any) -> Any:
    """Fit ``est`` (which has ``_plan`` and ``n_threads``) on validated ``X`` and ``y``; returns ``est``."""
    plan = est._plan(y)
    plan.finish(est, solve(plan, X, sample_weight, est.n_threads))
    return est

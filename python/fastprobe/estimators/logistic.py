"""L2 logistic regression probe (binary or multinomial) and a warm-started path over C, solved by L-BFGS in Rust."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.utils.validation import validate_data

from fastprobe import _core
from fastprobe._validation import as_float, check_max_iter
from fastprobe.estimators._base import (
    LinearClassifierMixin,
    SolverPlan,
    binary_proba,
    encode_classes,
    fit_planned,
    float32,
    warn_not_converged,
    weights,
)
from fastprobe.exceptions import ArgumentTypeError, InvalidInputError

__all__ = ["LogisticProbe", "logistic_path"]


def logistic_path(
    X: Any,
    y: Any,
    Cs: Sequence[float],
    *,
    sample_weight: Any = None,
    fit_intercept: bool = True,
    max_iter: int = 100,
    tol: float = 1e-4,
    n_threads: int | None = None,
) -> list[tuple[np.ndarray, np.ndarray, int]]:
    """Fit L2 logistic regression for each C, in the order given, each warm-started from the previous solution.

    Give the strongest regularization (smallest C) first: each later fit then starts close to its solution.

    Parameters
    ----------
    X : array-like of shape (n_samples, n_features)
    y : array-like of shape (n_samples,)
        Class labels of any type (two classes: binary model; more: multinomial).
    Cs : sequence of float
        Inverse regularization strengths, each > 0.
    sample_weight, fit_intercept, max_iter, tol, n_threads
        As in :class:`LogisticProbe`.

    Returns
    -------
    list of (coef, intercept, n_iter)
        One per C, as :class:`LogisticProbe` would store them.

    Raises
    ------
    InvalidInputError
        If ``Cs`` is empty, a C is not finite and > 0, ``tol`` is not finite and >= 0, or ``max_iter`` is not an
        integer >= 1 (the message names the value given).
    """
    try:
        grid = [float(c) for c in Cs]
    except (TypeError, ValueError):
        raise ArgumentTypeError(f"Cs must be a sequence of numbers > 0; got {Cs!r}") from None
    if not grid:
        raise InvalidInputError(f"Cs must be a non-empty sequence of numbers > 0; got {Cs!r}")
    iterations = check_max_iter(max_iter)
    X = float32(np.asarray(X))
    classes, idx = np.unique(np.asarray(y), return_inverse=True)
    fits = _core.logistic_path(
        X,
        np.ascontiguousarray(idx, dtype=np.int64),
        len(classes),
        weights(sample_weight, X),
        grid,
        bool(fit_intercept),
        iterations,
        as_float(tol, "tol"),
        n_threads,
    )
    return [(coef, intercept, n_iter) for coef, intercept, n_iter, _ in fits]


class LogisticProbe(LinearClassifierMixin, ClassifierMixin, BaseEstimator):
    """L2-regularized logistic regression probe (binary or multinomial), solved by L-BFGS in Rust.

    Minimizes the same objective as ``sklearn.linear_model.LogisticRegression(C=C, solver="lbfgs")`` with the same
    stopping rule for ``tol``, so coefficients and probabilities agree with it.

    Parameters
    ----------
    C : float, default=1.0
        Inverse regularization strength (> 0).
    fit_intercept : bool, default=True
    max_iter : int, default=100
        L-BFGS iterations at most; a :class:`~sklearn.exceptions.ConvergenceWarning` says when they ran out.
    tol : float, default=1e-4
        Stop when the largest gradient entry is at most this.
    n_threads : int, optional

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
    coef_ : ndarray of shape (1, n_features) or (n_classes, n_features)
    intercept_ : ndarray of shape (1,) or (n_classes,)
    n_iter_ : ndarray of shape (1,)
    n_features_in_ : int
    """

    def __init__(
        self,
        C: float = 1.0,
        *,
        fit_intercept: bool = True,
        max_iter: int = 100,
        tol: float = 1e-4,
        n_threads: int | None = None,
    ) -> None:
        self.C = C
        self.fit_intercept = fit_intercept
        self.max_iter = max_iter
        self.tol = tol
        self.n_threads = n_threads

    def fit(self, X: Any, y: Any, sample_weight: Any = None) -> LogisticProbe:
        """Fit on class labels of any type.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : array-like of shape (n_samples,)
        sample_weight : array-like of shape (n_samples,), optional

        Returns
        -------
        self : LogisticProbe

        Raises
        ------
        InvalidInputError
            If ``C`` is not finite and > 0, ``tol`` not finite and >= 0, ``max_iter`` not an integer >= 1, ``y`` has
            one class, or ``X`` holds a value that is not finite (the message names it and where it is).
        """
        X, y = validate_data(self, X, y, dtype=[np.float32, np.float64], ensure_all_finite=False)
        return fit_planned(self, X, y, sample_weight)

    def _plan(self, y: Any) -> SolverPlan:
        idx = encode_classes(self, y)
        max_iter = check_max_iter(self.max_iter)

        def finish(est: LogisticProbe, raw: Any) -> None:
            ((coef, intercept, n_iter, converged),) = raw
            if not converged:
                warn_not_converged(est, stacklevel=4)
            est.coef_ = coef
            est.intercept_ = intercept
            est.n_iter_ = np.array([max(int(n_iter), 1)])

        options = {"fit_intercept": bool(self.fit_intercept), "max_iter": max_iter, "tol": as_float(self.tol, "tol")}
        return SolverPlan("logistic", [as_float(self.C, "C")], idx, len(self.classes_), options, finish)

    def predict_proba(self, X: Any) -> np.ndarray:
        """Class probabilities, columns in ``classes_`` order."""
        scores = self.decision_function(X)
        if scores.ndim == 1:
            return binary_proba(scores)
        scores = scores - scores.max(axis=1, keepdims=True)
        e = np.exp(scores)
        return e / e.sum(axis=1, keepdims=True)

    def predict_log_proba(self, X: Any) -> np.ndarray:
        """Logarithm of :meth:`predict_proba`."""
        return np.log(self.predict_proba(X))

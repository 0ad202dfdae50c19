"""Group-lasso logistic regression over equal blocks of features (layer selection), solved in Rust.

:class:`GroupLassoProbe` is the scikit-learn estimator; :class:`GroupLassoClassifier` is lmprobe's class of the same
model (one group per layer), with lmprobe's signature.
"""

from __future__ import annotations

import numbers
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.utils.validation import validate_data

from fastprobe import _core
from fastprobe._validation import as_float, check_max_iter
from fastprobe.estimators._base import (
    LinearClassifierMixin,
    binary_proba,
    encode_classes,
    float32,
    require_fitted,
    warn_not_converged,
    weights,
)
from fastprobe.exceptions import InvalidInputError, ShapeMismatchError

__all__ = ["GroupLassoClassifier", "GroupLassoProbe"]


class GroupLassoProbe(LinearClassifierMixin, ClassifierMixin, BaseEstimator):
    """Binary logistic regression with a group-lasso penalty over equal blocks of features, solved in Rust.

    Minimizes ``(1/S) sum_i w_i logloss_i + alpha * sum_g |coef_g|_2`` (``S`` the sum of the sample weights; the
    intercept is not penalized) by accelerated proximal gradient. The penalty sets whole blocks of coefficients to
    exactly zero: with one block per layer (``n_groups`` layers side by side), the blocks left non-zero are the layers
    the probe selects. Stops when the optimality conditions hold to within ``tol``.

    Parameters
    ----------
    alpha : float, default=0.01
        Penalty strength (>= 0); larger keeps fewer groups.
    n_groups : int, default=1
        Number of equal, contiguous feature blocks (it must divide the number of features).
    fit_intercept : bool, default=True
    max_iter : int, default=1000
        Iterations at most; a :class:`~sklearn.exceptions.ConvergenceWarning` says when they ran out.
    tol : float, default=1e-4
    n_threads : int, optional

    Attributes
    ----------
    classes_ : ndarray of shape (2,)
    coef_ : ndarray of shape (1, n_features)
    intercept_ : ndarray of shape (1,)
    group_norms_ : ndarray of shape (n_groups,)
        The L2 norm of each block of ``coef_``; exactly 0 for a block the penalty removed.
    selected_groups_ : list of int
        Blocks with a non-zero norm.
    n_iter_ : ndarray of shape (1,)
    objective_ : float
    n_features_in_ : int
    """

    group_norms_: np.ndarray
    selected_groups_: list[int]
    n_iter_: np.ndarray

    def __init__(
        self,
        alpha: float = 0.01,
        *,
        n_groups: int = 1,
        fit_intercept: bool = True,
        max_iter: int = 1000,
        tol: float = 1e-4,
        n_threads: int | None = None,
    ) -> None:
        self.alpha = alpha
        self.n_groups = n_groups
        self.fit_intercept = fit_intercept
        self.max_iter = max_iter
        self.tol = tol
        self.n_threads = n_threads

    def fit(self, X: Any, y: Any, sample_weight: Any = None) -> GroupLassoProbe:
        """Fit on binary labels of any type.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : array-like of shape (n_samples,)
        sample_weight : array-like of shape (n_samples,), optional

        Returns
        -------
        self : GroupLassoProbe
        """
        X, y = validate_data(self, X, y, dtype=[np.float32, np.float64], ensure_all_finite=False)
        idx = encode_classes(self, y)
        if len(self.classes_) != 2:
            raise InvalidInputError(
                f"GroupLassoProbe is a binary classifier; y has {len(self.classes_)} classes ({self.classes_.tolist()})"
            )
        d = X.shape[1]
        if not isinstance(self.n_groups, numbers.Integral) or self.n_groups < 1 or d % self.n_groups:
            raise InvalidInputError(
                f"n_groups must be a positive integer that divides the number of features ({d}); got {self.n_groups!r}"
            )
        max_iter = check_max_iter(self.max_iter)
        X32 = float32(X)
        size = d // int(self.n_groups)
        coef, intercept, norms, n_iter, converged, objective = _core.group_lasso_fit(
            X32,
            idx,
            weights(sample_weight, X32),
            list(range(0, d + 1, size)),
            as_float(self.alpha, "alpha"),
            None,
            bool(self.fit_intercept),
            max_iter,
            as_float(self.tol, "tol"),
            self.n_threads,
        )
        if not converged:
            warn_not_converged(self, stacklevel=2)
        self.coef_ = coef[None, :]
        self.intercept_ = np.array([intercept])
        self.group_norms_ = norms
        self.selected_groups_ = [int(g) for g in np.flatnonzero(norms > 0)]
        self.n_iter_ = np.array([max(int(n_iter), 1)])
        self.objective_ = float(objective)
        return self

    def predict_proba(self, X: Any) -> np.ndarray:
        """Class probabilities, columns in ``classes_`` order."""
        return binary_proba(self.decision_function(X))


class GroupLassoClassifier(ClassifierMixin, BaseEstimator):
    """lmprobe's group-lasso classifier for layer selection, solved by fastprobe's Rust solver (no skglm needed).

    Binary logistic regression whose penalty, ``alpha`` times the sum of the L2 norms of the ``n_layers`` blocks of
    ``hidden_dim`` coefficients, sets whole layers to exactly zero: the blocks left are the layers selected. The
    model is :class:`~fastprobe.estimators.GroupLassoProbe` with one group per layer and an unpenalized intercept.

    Parameters
    ----------
    hidden_dim : int
        Features per layer.
    n_layers : int
        Layers side by side in the features.
    alpha : float, default=0.01
        Penalty strength; larger keeps fewer layers.
    random_state : int, optional
        Accepted for lmprobe's signature; the solver is deterministic.

    Attributes
    ----------
    classes_ : ndarray of shape (2,)
    coef_ : ndarray of shape (hidden_dim * n_layers,)
    intercept_ : ndarray of shape (1,)
    group_norms_ : ndarray of shape (n_layers,)
        The L2 norm of each layer's coefficients; exactly 0 for a layer the penalty removed.
    selected_groups_ : list of int
        The layers (block indices) with a non-zero norm.
    n_iter_ : ndarray of shape (1,)
    n_features_in_ : int
    """

    def __init__(self, hidden_dim: int, n_layers: int, alpha: float = 0.01, random_state: int | None = None) -> None:
        self.hidden_dim = hidden_dim
        self.n_layers = n_layers
        self.alpha = alpha
        self.random_state = random_state

    def fit(self, X: Any, y: Any, sample_weight: Any = None) -> GroupLassoClassifier:
        """Fit on binary labels.

        Parameters
        ----------
        X : array-like of shape (n_samples, hidden_dim * n_layers)
        y : array-like of shape (n_samples,)
        sample_weight : array-like of shape (n_samples,), optional

        Returns
        -------
        self : GroupLassoClassifier

        Raises
        ------
        ShapeMismatchError
            If ``X`` does not have ``hidden_dim * n_layers`` features.
        """
        X, y = validate_data(self, X, y, dtype=[np.float32, np.float64], ensure_all_finite=False)
        expected = int(self.hidden_dim) * int(self.n_layers)
        if X.shape[1] != expected:
            raise ShapeMismatchError(
                f"X has {X.shape[1]} features, expected {expected} "
                f"(hidden_dim={self.hidden_dim} x n_layers={self.n_layers})"
            )
        probe = GroupLassoProbe(alpha=self.alpha, n_groups=int(self.n_layers)).fit(X, y, sample_weight=sample_weight)
        self.classes_ = probe.classes_
        self.coef_ = probe.coef_[0]
        self.intercept_ = probe.intercept_
        self.group_norms_ = probe.group_norms_
        self.selected_groups_ = probe.selected_groups_
        self.n_iter_ = probe.n_iter_
        return self

    def decision_function(self, X: Any) -> np.ndarray:
        """``X @ coef_ + intercept_``, shape (n,) (positive: ``classes_[1]``)."""
        require_fitted(self, "coef_")
        X = validate_data(self, X, dtype=[np.float32, np.float64], reset=False)
        return np.asarray(X, dtype=np.float64) @ self.coef_ + self.intercept_[0]

    def predict_proba(self, X: Any) -> np.ndarray:
        """Sigmoid of the decision values, shape (n, 2)."""
        return binary_proba(self.decision_function(X))

    def predict(self, X: Any) -> np.ndarray:
        """Predict class labels."""
        positive = self.decision_function(X) > 0
        return self.classes_[positive.astype(int)]

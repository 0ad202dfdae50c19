"""scikit-learn estimators over the Rust solvers: ridge, logistic regression, mass-mean probes and layer scaling.

Every estimator follows scikit-learn's contract (parameters stored unmodified in ``__init__``, validation in
``fit``, fitted attributes with a trailing underscore as numpy arrays, ``fit`` returning ``self``), so they work in
``Pipeline``, ``GridSearchCV``, ``cross_val_score``, ``clone`` and pickling.

Data policy: ``X`` is converted once to C-contiguous float32 (a visible copy when it is anything else); the solvers
accumulate in float64 and return float64 coefficients. ``n_threads=None`` uses fastprobe's default pool (sized by
``FASTPROBE_NUM_THREADS``, else the CPU count); pass 1 inside an outer parallel loop.
"""

from __future__ import annotations

import numbers
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin, TransformerMixin
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils.multiclass import check_classification_targets, type_of_target
from sklearn.utils.validation import _check_sample_weight, check_is_fitted, validate_data

from fastprobe import _core
from fastprobe.exceptions import InvalidInputError

__all__ = [
    "GroupLassoProbe",
    "LayerScaler",
    "LogisticProbe",
    "MassMeanProbe",
    "RidgeClassifierProbe",
    "RidgeProbe",
    "logistic_path",
]


def _float32(X: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(X, dtype=np.float32)


def _weights(sample_weight: Any, X: np.ndarray) -> np.ndarray | None:
    if sample_weight is None:
        return None
    return np.ascontiguousarray(_check_sample_weight(sample_weight, X, dtype=np.float64))


def _alphas(alphas: Any) -> list[float]:
    values = np.atleast_1d(np.asarray(alphas, dtype=np.float64))
    if values.ndim != 1 or values.size == 0:
        raise InvalidInputError(f"alphas must be a positive number or a 1-D sequence of them; got {alphas!r}")
    if not np.all(np.isfinite(values)) or np.any(values <= 0):
        raise InvalidInputError(f"every alpha must be finite and > 0; got {values.tolist()}")
    return [float(a) for a in values]


def _encode_classes(estimator: BaseEstimator, y: np.ndarray) -> np.ndarray:
    check_classification_targets(y)
    estimator.classes_, indices = np.unique(y, return_inverse=True)
    if len(estimator.classes_) < 2:
        raise ValueError(
            f"{type(estimator).__name__} needs samples of at least 2 classes; y has only one class "
            f"({estimator.classes_[0]!r})"
        )
    return np.ascontiguousarray(indices, dtype=np.int64)


def _warn_not_converged(est: BaseEstimator, stacklevel: int) -> None:
    warnings.warn(
        f"{type(est).__name__} did not converge in max_iter={est.max_iter} iterations; increase max_iter or "
        "standardize the features",
        ConvergenceWarning,
        stacklevel=stacklevel + 1,
    )


def _binary_proba(scores: np.ndarray) -> np.ndarray:
    """Two-column probabilities ``[1 - sigmoid(s), sigmoid(s)]`` of binary scores."""
    p1 = 1.0 / (1.0 + np.exp(-scores))
    return np.column_stack([1.0 - p1, p1])


class _LinearClassifier:
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
class _Plan:
    """What a fit needs besides ``X``.

    The Rust solver's name and options, the encoded targets, and how to turn the solver's raw result into fitted
    attributes. One plan serves one fit or a whole layer sweep.
    """

    solver: str
    grid: list[float]
    targets: np.ndarray
    n_classes: int
    options: dict[str, Any]
    finish: Callable[[Any, Any], None]


def _solve(plan: _Plan, X: np.ndarray, sample_weight: Any, n_threads: int | None) -> Any:
    """Run the plan's Rust solver on one design matrix; the raw result goes to ``plan.finish``."""
    X32 = _float32(X)
    w = _weights(sample_weight, X32)
    o = plan.options
    if plan.solver == "ridge":
        return _core.ridge_path(X32, plan.targets, w, plan.grid, o["fit_intercept"], o["mode"], n_threads)
    if plan.solver == "logistic":
        return _core.logistic_path(
            X32, plan.targets, plan.n_classes, w, plan.grid, o["fit_intercept"], o["max_iter"], o["tol"], n_threads
        )
    return _core.mass_mean_fit(X32, plan.targets, w, o["whiten"], o["shrinkage"], n_threads)


def _fit_planned(est: Any, X: np.ndarray, y: Any, sample_weight: Any) -> Any:
    """Fit ``est`` (which has ``_plan`` and ``n_threads``) on validated ``X`` and ``y``; returns ``est``."""
    plan = est._plan(y)
    plan.finish(est, _solve(plan, X, sample_weight, est.n_threads))
    return est


class _RidgeBase(BaseEstimator):
    """Shared ridge fitting: one factorization, every alpha, leave-one-out selection."""

    def _ridge_plan(self, Y: np.ndarray, finish: Callable[[Any], None]) -> _Plan:
        alphas = _alphas(self.alphas)

        def done(est: Any, raw: Any) -> None:
            est._set_ridge(raw, alphas)
            finish(est)

        options = {"fit_intercept": bool(self.fit_intercept), "mode": self.mode}
        return _Plan("ridge", alphas, np.ascontiguousarray(Y, dtype=np.float64), 0, options, done)

    def _set_ridge(self, raw: Any, alphas: list[float]) -> None:
        coef, intercept, loo, dual = raw
        self.loo_mse_ = loo
        self.dual_ = bool(dual)
        if self.alpha_per_target:
            best = np.argmin(loo, axis=0)
            targets = np.arange(loo.shape[1])
            self.alpha_ = np.asarray(alphas)[best]
            self.best_score_ = -loo[best, targets]
            self._coef = coef[best, targets]
            self._intercept = intercept[best, targets]
        else:
            i = int(np.argmin(loo.mean(axis=1)))
            self.alpha_ = alphas[i]
            self.best_score_ = -float(loo[i].mean())
            self._coef = coef[i]
            self._intercept = intercept[i]

    @property
    def alpha(self) -> float:
        """The regularization strength when ``alphas`` is one value (scikit-learn's ``Ridge(alpha=...)``).

        Raises
        ------
        AttributeError
            When ``alphas`` holds several values: the one leave-one-out chose is ``alpha_`` after ``fit``.
        """
        values = np.atleast_1d(np.asarray(self.alphas, dtype=np.float64))
        if values.size != 1:
            raise AttributeError(
                f"{type(self).__name__} has {values.size} alphas ({values.tolist()}), so no single alpha; after fit "
                "the one chosen by leave-one-out error is alpha_"
            )
        return float(values[0])


class RidgeProbe(RegressorMixin, _RidgeBase):
    """Ridge regression probe with exact leave-one-out alpha selection.

    All alphas are solved from one factorization (a tridiagonalization of the ``n x n`` kernel when ``n <= d``, else
    an eigendecomposition of the ``d x d`` Gram matrix), and the alpha with the lowest mean squared leave-one-out
    error is kept, as scikit-learn's ``RidgeCV`` does. With one alpha this is plain ``Ridge``.

    Parameters
    ----------
    alphas : float or sequence of float, default=(0.1, 1.0, 10.0)
        Regularization strengths, each > 0.
    fit_intercept : bool, default=True
        Fit an (unpenalized) intercept.
    mode : {"auto", "primal", "dual"}, default="auto"
        Which matrix to factor; "auto" picks the smaller one.
    alpha_per_target : bool, default=False
        Choose an alpha for each target separately.
    n_threads : int, optional
        Threads for the solver.

    Attributes
    ----------
    coef_ : ndarray of shape (n_features,) or (n_targets, n_features)
    intercept_ : float or ndarray of shape (n_targets,)
    alpha_ : float or ndarray of shape (n_targets,)
        The chosen alpha(s).
    best_score_ : float or ndarray
        Minus the mean squared leave-one-out error at the chosen alpha.
    loo_mse_ : ndarray of shape (n_alphas, n_targets)
        Mean squared leave-one-out error of every alpha and target (weighted by ``sample_weight``).
    dual_ : bool
        Whether the kernel (dual) form was used.
    n_features_in_ : int

    Examples
    --------
    >>> import numpy as np
    >>> from fastprobe.estimators import RidgeProbe
    >>> X = np.arange(20, dtype=np.float32).reshape(10, 2)
    >>> y = X @ np.array([1.0, -2.0]) + 3.0
    >>> probe = RidgeProbe(alphas=[1e-6, 1.0]).fit(X, y)
    >>> float(probe.alpha_)
    1e-06
    >>> bool(np.allclose(probe.predict(X), y, atol=1e-3))
    True
    """

    def __init__(
        self,
        alphas: float | Sequence[float] = (0.1, 1.0, 10.0),
        *,
        fit_intercept: bool = True,
        mode: str = "auto",
        alpha_per_target: bool = False,
        n_threads: int | None = None,
    ) -> None:
        self.alphas = alphas
        self.fit_intercept = fit_intercept
        self.mode = mode
        self.alpha_per_target = alpha_per_target
        self.n_threads = n_threads

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        return tags

    def fit(self, X: Any, y: Any, sample_weight: Any = None) -> RidgeProbe:
        """Fit every alpha and keep the one with the lowest leave-one-out error.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : array-like of shape (n_samples,) or (n_samples, n_targets)
        sample_weight : array-like of shape (n_samples,), optional

        Returns
        -------
        self : RidgeProbe
        """
        X, y = validate_data(self, X, y, dtype=[np.float32, np.float64], multi_output=True, y_numeric=True)
        return _fit_planned(self, X, y, sample_weight)

    def _plan(self, y: Any) -> _Plan:
        y = np.asarray(y, dtype=np.float64)
        one = y.ndim == 1

        def finish(est: RidgeProbe) -> None:
            est.coef_ = est._coef[0] if one else est._coef
            est.intercept_ = float(est._intercept[0]) if one else est._intercept
            if one and np.ndim(est.alpha_) == 1:
                est.alpha_ = float(est.alpha_[0])
                est.best_score_ = float(est.best_score_[0])

        return self._ridge_plan(y.reshape(-1, 1) if one else y, finish)

    def predict(self, X: Any) -> np.ndarray:
        """Predict targets: ``X @ coef_.T + intercept_``."""
        check_is_fitted(self)
        X = validate_data(self, X, dtype=[np.float32, np.float64], reset=False)
        return np.asarray(X, dtype=np.float64) @ np.asarray(self.coef_).T + self.intercept_


class RidgeClassifierProbe(_LinearClassifier, ClassifierMixin, _RidgeBase):
    """Ridge classifier probe with exact leave-one-out alpha selection.

    Ridge regression on +1/-1 targets (one column per class beyond two), alphas chosen as scikit-learn's
    ``RidgeClassifierCV`` chooses them.

    Parameters
    ----------
    alphas : float or sequence of float, default=(0.1, 1.0, 10.0)
    fit_intercept : bool, default=True
    mode : {"auto", "primal", "dual"}, default="auto"
    n_threads : int, optional

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
    coef_ : ndarray of shape (1, n_features) or (n_classes, n_features)
    intercept_ : ndarray of shape (1,) or (n_classes,)
    alpha_ : float
    best_score_ : float
    loo_mse_ : ndarray of shape (n_alphas, n_targets)
    dual_ : bool
    n_features_in_ : int
    """

    alpha_per_target = False

    def __init__(
        self,
        alphas: float | Sequence[float] = (0.1, 1.0, 10.0),
        *,
        fit_intercept: bool = True,
        mode: str = "auto",
        n_threads: int | None = None,
    ) -> None:
        self.alphas = alphas
        self.fit_intercept = fit_intercept
        self.mode = mode
        self.n_threads = n_threads

    def fit(self, X: Any, y: Any, sample_weight: Any = None) -> RidgeClassifierProbe:
        """Fit on class labels of any type.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : array-like of shape (n_samples,)
        sample_weight : array-like of shape (n_samples,), optional

        Returns
        -------
        self : RidgeClassifierProbe
        """
        X, y = validate_data(self, X, y, dtype=[np.float32, np.float64])
        return _fit_planned(self, X, y, sample_weight)

    def _plan(self, y: Any) -> _Plan:
        idx = _encode_classes(self, y)
        k = len(self.classes_)
        if k == 2:
            Y = np.where(idx == 1, 1.0, -1.0).reshape(-1, 1)
        else:
            Y = -np.ones((len(idx), k))
            Y[np.arange(len(idx)), idx] = 1.0

        def finish(est: RidgeClassifierProbe) -> None:
            est.coef_ = est._coef
            est.intercept_ = est._intercept

        return self._ridge_plan(Y, finish)


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
    """
    X = _float32(np.asarray(X))
    classes, idx = np.unique(np.asarray(y), return_inverse=True)
    fits = _core.logistic_path(
        X,
        np.ascontiguousarray(idx, dtype=np.int64),
        len(classes),
        _weights(sample_weight, X),
        [float(c) for c in Cs],
        bool(fit_intercept),
        int(max_iter),
        float(tol),
        n_threads,
    )
    return [(coef, intercept, n_iter) for coef, intercept, n_iter, _ in fits]


class LogisticProbe(_LinearClassifier, ClassifierMixin, BaseEstimator):
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
        """
        X, y = validate_data(self, X, y, dtype=[np.float32, np.float64])
        return _fit_planned(self, X, y, sample_weight)

    def _plan(self, y: Any) -> _Plan:
        idx = _encode_classes(self, y)
        if not isinstance(self.max_iter, numbers.Integral) or self.max_iter < 1:
            raise InvalidInputError(f"max_iter must be an integer >= 1; got {self.max_iter!r}")

        def finish(est: LogisticProbe, raw: Any) -> None:
            ((coef, intercept, n_iter, converged),) = raw
            if not converged:
                _warn_not_converged(est, stacklevel=4)
            est.coef_ = coef
            est.intercept_ = intercept
            est.n_iter_ = np.array([max(int(n_iter), 1)])

        options = {"fit_intercept": bool(self.fit_intercept), "max_iter": int(self.max_iter), "tol": float(self.tol)}
        return _Plan("logistic", [float(self.C)], idx, len(self.classes_), options, finish)

    def predict_proba(self, X: Any) -> np.ndarray:
        """Class probabilities, columns in ``classes_`` order."""
        scores = self.decision_function(X)
        if scores.ndim == 1:
            return _binary_proba(scores)
        scores = scores - scores.max(axis=1, keepdims=True)
        e = np.exp(scores)
        return e / e.sum(axis=1, keepdims=True)

    def predict_log_proba(self, X: Any) -> np.ndarray:
        """Logarithm of :meth:`predict_proba`."""
        return np.log(self.predict_proba(X))


class GroupLassoProbe(_LinearClassifier, ClassifierMixin, BaseEstimator):
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
        X, y = validate_data(self, X, y, dtype=[np.float32, np.float64])
        idx = _encode_classes(self, y)
        if len(self.classes_) != 2:
            raise InvalidInputError(
                f"GroupLassoProbe is a binary classifier; y has {len(self.classes_)} classes ({self.classes_.tolist()})"
            )
        d = X.shape[1]
        if not isinstance(self.n_groups, numbers.Integral) or self.n_groups < 1 or d % self.n_groups:
            raise InvalidInputError(
                f"n_groups must be a positive integer that divides the number of features ({d}); got {self.n_groups!r}"
            )
        if not isinstance(self.max_iter, numbers.Integral) or self.max_iter < 1:
            raise InvalidInputError(f"max_iter must be an integer >= 1; got {self.max_iter!r}")
        X32 = _float32(X)
        size = d // int(self.n_groups)
        coef, intercept, norms, n_iter, converged, objective = _core.group_lasso_fit(
            X32,
            idx,
            _weights(sample_weight, X32),
            list(range(0, d + 1, size)),
            float(self.alpha),
            None,
            bool(self.fit_intercept),
            int(self.max_iter),
            float(self.tol),
            self.n_threads,
        )
        if not converged:
            _warn_not_converged(self, stacklevel=2)
        self.coef_ = coef[None, :]
        self.intercept_ = np.array([intercept])
        self.group_norms_ = norms
        self.selected_groups_ = [int(g) for g in np.flatnonzero(norms > 0)]
        self.n_iter_ = np.array([max(int(n_iter), 1)])
        self.objective_ = float(objective)
        return self

    def predict_proba(self, X: Any) -> np.ndarray:
        """Class probabilities, columns in ``classes_`` order."""
        return _binary_proba(self.decision_function(X))


#: Singular values of the standardized within-class data at or below this are dropped (scikit-learn's LDA ``tol``).
_LDA_TOL = 1e-4
_LDA_ROWS = 4096  # rows per block when the within-class Gram matrix is accumulated (more samples than features)


def _lda_svd(X: np.ndarray, idx: np.ndarray, sample_weight: np.ndarray | None) -> tuple[np.ndarray, float, float]:
    """Two-class LDA when the within-class covariance may be singular, as scikit-learn's ``solver="svd"`` fits it.

    Each feature is divided by its within-class standard deviation, the inverse of the (standardized) within-class
    covariance is taken over the singular directions above :data:`_LDA_TOL` only, and the discriminant is
    ``x . coef + b`` with ``coef`` that inverse applied to the mean difference and ``b`` putting the threshold at the
    midpoint of the class means moved by the log prior ratio. Weights are rescaled to sum to the number of samples
    with a positive weight, so unit weights give scikit-learn's model exactly.

    Returns
    -------
    (direction, threshold, slope)
        In :class:`MassMeanProbe`'s terms: ``coef / |coef|``, ``-b / |coef|`` and ``|coef|``, so that its
        probabilities ``sigmoid(slope * decision)`` are LDA's posterior ``sigmoid(x . coef + b)``.
    """
    n, d = X.shape
    w = np.ones(n) if sample_weight is None else np.asarray(sample_weight, dtype=np.float64)
    used = int(np.count_nonzero(w > 0))
    w = w * (used / w.sum())
    totals = np.array([w[idx == c].sum() for c in (0, 1)])
    if np.any(totals <= 0):
        raise InvalidInputError("a class has no sample (with positive weight); both classes are needed")
    means = np.stack([w[idx == c] @ np.asarray(X[idx == c], dtype=np.float64) / totals[c] for c in (0, 1)])

    def centred(rows: slice) -> np.ndarray:
        return np.asarray(X[rows], dtype=np.float64) - means[idx[rows]]

    blocks = [slice(i, min(i + _LDA_ROWS, n)) for i in range(0, n, _LDA_ROWS)]
    var = sum((w[b] @ centred(b) ** 2 for b in blocks), np.zeros(d)) / used
    std = np.sqrt(var)
    flat = std <= 1e-12 * np.abs(means).max(axis=0)  # constant within each class, up to rounding
    std[flat] = 1.0
    factor = 1.0 / used

    def scaled(rows: slice) -> np.ndarray:
        Z = centred(rows) / std
        Z[:, flat] = 0.0
        return np.sqrt(w[rows] * factor)[:, None] * Z

    if n <= d:
        _, S, Vt = np.linalg.svd(scaled(slice(0, n)), full_matrices=False)
        V = Vt.T
    else:  # the d x d Gram matrix, accumulated by blocks of rows, has the same singular vectors
        gram = np.zeros((d, d))
        for b in blocks:
            Z = scaled(b)
            gram += Z.T @ Z
        eig, V = np.linalg.eigh(gram)
        S = np.sqrt(np.clip(eig, 0.0, None))
    keep = S > _LDA_TOL
    if not np.any(keep):
        raise InvalidInputError(
            "every sample sits on its class mean, so the within-class covariance is zero and LDA has no direction; "
            "use classifier='mass_mean'"
        )
    T = V[:, keep] / std[:, None] / S[keep]  # maps x to coordinates where the within-class covariance is I
    diff = means[1] - means[0]
    coef = T @ (T.T @ diff)
    norm = float(np.linalg.norm(coef))
    if not (np.isfinite(norm) and norm > 0.0):
        if np.any(diff != 0):
            raise InvalidInputError(
                "the class means differ only along directions in which no sample varies within its class, so LDA "
                "has no direction; set shrinkage > 0, or use classifier='mass_mean'"
            )
        raise InvalidInputError("the two class means are identical; there is no direction to find")
    b = -coef @ (means[0] + means[1]) / 2 + np.log(totals[1] / totals[0])
    return coef / norm, float(-b / norm), norm


class MassMeanProbe(ClassifierMixin, BaseEstimator):
    """Mass-mean probe: the direction between the two class means, optionally whitened.

    ``whiten=False`` gives the plain difference of class means; ``whiten=True`` multiplies it by the inverse of the
    within-class covariance (what linear discriminant analysis computes), shrunk by ``shrinkage`` towards a scaled
    identity. The direction is unit length and the threshold sits at the midpoint of the class means; probabilities
    come from Platt scaling (of the slope) fitted on the training data.

    With ``whiten=True`` and ``shrinkage=0`` a singular within-class covariance (fewer samples than features, or a
    feature constant within each class) is handled as scikit-learn's ``LinearDiscriminantAnalysis()`` (solver "svd")
    handles it, in numpy: features are divided by their within-class standard deviations and the covariance is
    inverted over its singular directions above 1e-4 only. The fit is then scikit-learn's LDA: the threshold is the
    midpoint moved by the log ratio of the class priors (the weighted class shares), and ``predict_proba`` is LDA's
    posterior (``platt_slope_`` is the length of LDA's coefficient vector, not a Platt fit).

    Parameters
    ----------
    whiten : bool, default=False
    shrinkage : float, default=0.0
        In [0, 1]; only used when ``whiten``. 0 inverts the covariance as above.
    n_threads : int, optional

    Attributes
    ----------
    classes_ : ndarray of shape (2,)
    coef_ : ndarray of shape (1, n_features)
        The unit direction.
    intercept_ : ndarray of shape (1,)
        Minus the threshold.
    platt_slope_ : float
        Platt's slope: ``P(classes_[1]) = sigmoid(platt_slope_ * decision_function(X))`` (no offset, so probability
        1/2 sits at the threshold and ``predict`` agrees with ``predict_proba``).
    n_features_in_ : int
    """

    def __init__(self, *, whiten: bool = False, shrinkage: float = 0.0, n_threads: int | None = None) -> None:
        self.whiten = whiten
        self.shrinkage = shrinkage
        self.n_threads = n_threads

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_class = False
        return tags

    def fit(self, X: Any, y: Any, sample_weight: Any = None) -> MassMeanProbe:
        """Fit on labels of exactly two classes.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : array-like of shape (n_samples,)
        sample_weight : array-like of shape (n_samples,), optional

        Returns
        -------
        self : MassMeanProbe
        """
        X, y = validate_data(self, X, y, dtype=[np.float32, np.float64])
        plan = self._plan(y)
        if not self._lda_fallback():
            plan.finish(self, _solve(plan, X, sample_weight, self.n_threads))
            return self
        w = _weights(sample_weight, X)
        n_used = X.shape[0] if w is None else int(np.count_nonzero(w > 0))
        if n_used - 2 < X.shape[1]:  # the within-class covariance has rank n_used - 2 at most
            plan.finish(self, _lda_svd(X, plan.targets, w))
            return self
        try:
            raw = _solve(plan, X, w, self.n_threads)
        except InvalidInputError:  # singular all the same (say a constant feature); else the SVD path says why
            raw = _lda_svd(X, plan.targets, w)
        plan.finish(self, raw)
        return self

    def _lda_fallback(self) -> bool:
        """Whether a singular within-class covariance is inverted in numpy (whitened, no shrinkage) or refused."""
        return bool(self.whiten) and float(self.shrinkage) == 0.0

    def _plan(self, y: Any) -> _Plan:
        y_type = type_of_target(y, input_name="y", raise_unknown=True)
        if y_type not in ("binary", "unknown") and len(np.unique(y)) > 2:
            raise ValueError(
                f"Only binary classification is supported. The type of the target is {y_type} "
                f"({len(np.unique(y))} classes); MassMeanProbe separates exactly two classes."
            )
        idx = _encode_classes(self, y)

        def finish(est: MassMeanProbe, raw: Any) -> None:
            direction, threshold, slope = raw
            est.coef_ = direction.reshape(1, -1)
            est.intercept_ = np.array([-threshold])
            est.platt_slope_ = float(slope)

        options = {"whiten": bool(self.whiten), "shrinkage": float(self.shrinkage)}
        return _Plan("mass_mean", [], idx, 2, options, finish)

    def decision_function(self, X: Any) -> np.ndarray:
        """Projection on the direction minus the threshold (positive: ``classes_[1]``), shape (n,)."""
        check_is_fitted(self)
        X = validate_data(self, X, dtype=[np.float32, np.float64], reset=False)
        return np.asarray(X, dtype=np.float64) @ self.coef_[0] + self.intercept_[0]

    def predict_proba(self, X: Any) -> np.ndarray:
        """Platt-scaled probabilities, shape (n, 2)."""
        check_is_fitted(self)
        z = self.platt_slope_ * self.decision_function(X)
        p1 = 1.0 / (1.0 + np.exp(-z))
        return np.column_stack([1.0 - p1, p1])

    def predict(self, X: Any) -> np.ndarray:
        """Predict class labels."""
        positive = self.decision_function(X) > 0
        return self.classes_[positive.astype(int)]


class LayerScaler(TransformerMixin, BaseEstimator):
    """Standardize features that are several layers' activations side by side.

    Parameters
    ----------
    n_layers : int, default=1
        Number of equal-width layer blocks in the features.
    mode : {"per_neuron", "per_layer"}, default="per_neuron"
        One mean and standard deviation per feature, or per layer block (keeping the relative scale of a layer's
        neurons). Standard deviations use ddof=0; a zero one becomes 1.
    n_threads : int, optional

    Attributes
    ----------
    mean_ : ndarray of shape (n_features,)
    scale_ : ndarray of shape (n_features,)
    n_features_in_ : int
    """

    def __init__(self, n_layers: int = 1, *, mode: str = "per_neuron", n_threads: int | None = None) -> None:
        self.n_layers = n_layers
        self.mode = mode
        self.n_threads = n_threads

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.transformer_tags.preserves_dtype = ["float32"]
        return tags

    def fit(self, X: Any, y: Any = None) -> LayerScaler:
        """Compute the means and scales."""
        X = validate_data(self, X, dtype=[np.float32, np.float64])
        self.mean_, self.scale_ = _core.fit_scaler(_float32(X), int(self.n_layers), self.mode, self.n_threads)
        return self

    def transform(self, X: Any) -> np.ndarray:
        """Return ``(X - mean_) / scale_`` as a new float32 array."""
        check_is_fitted(self)
        X = validate_data(self, X, dtype=[np.float32, np.float64], reset=False)
        out = np.array(X, dtype=np.float32, order="C", copy=True)
        _core.scale_in_place(out, self.mean_, self.scale_, self.n_threads)
        return out

    def inverse_transform(self, X: Any) -> np.ndarray:
        """Undo :meth:`transform`."""
        check_is_fitted(self)
        X = np.asarray(X, dtype=np.float64)
        return (X * self.scale_ + self.mean_).astype(np.float32)

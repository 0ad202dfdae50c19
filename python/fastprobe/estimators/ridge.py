"""Ridge regression and ridge classification probes: every alpha from one factorization, leave-one-out selection."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin
from sklearn.utils.validation import check_is_fitted, validate_data

from fastprobe.estimators._base import LinearClassifierMixin, SolverPlan, encode_classes, fit_planned
from fastprobe.exceptions import ArgumentTypeError, InvalidInputError

__all__ = ["RidgeClassifierProbe", "RidgeProbe"]


def _alphas(alphas: Any) -> list[float]:
    try:
        values = np.atleast_1d(np.asarray(alphas, dtype=np.float64))
    except (TypeError, ValueError):
        raise ArgumentTypeError(
            f"alphas must be a positive number or a 1-D sequence of them; got {alphas!r} ({type(alphas).__name__})"
        ) from None
    if values.ndim != 1 or values.size == 0:
        raise InvalidInputError(f"alphas must be a positive number or a 1-D sequence of them; got {alphas!r}")
    if not np.all(np.isfinite(values)) or np.any(values <= 0):
        raise InvalidInputError(f"every alpha must be finite and > 0; got {values.tolist()}")
    return [float(a) for a in values]


class _RidgeBase(BaseEstimator):
    """Shared ridge fitting: one factorization, every alpha, leave-one-out selection."""

    def _ridge_plan(self, Y: np.ndarray, finish: Callable[[Any], None]) -> SolverPlan:
        alphas = _alphas(self.alphas)

        def done(est: Any, raw: Any) -> None:
            est._set_ridge(raw, alphas)
            finish(est)

        options = {"fit_intercept": bool(self.fit_intercept), "mode": self.mode}
        return SolverPlan("ridge", alphas, np.ascontiguousarray(Y, dtype=np.float64), 0, options, done)

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
        X, y = validate_data(
            self, X, y, dtype=[np.float32, np.float64], ensure_all_finite=False, multi_output=True, y_numeric=True
        )
        return fit_planned(self, X, y, sample_weight)

    def _plan(self, y: Any) -> SolverPlan:
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


class RidgeClassifierProbe(LinearClassifierMixin, ClassifierMixin, _RidgeBase):
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
        X, y = validate_data(self, X, y, dtype=[np.float32, np.float64], ensure_all_finite=False)
        return fit_planned(self, X, y, sample_weight)

    def _plan(self, y: Any) -> SolverPlan:
        idx = encode_classes(self, y)
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

"""Mass-mean probes: the direction between the two class means, optionally whitened (LDA's direction).

:class:`MassMeanProbe` is the scikit-learn estimator (Rust solver, with scikit-learn's LDA ``solver="svd"`` in numpy
when the within-class covariance is singular); :class:`MassMeanClassifier` is lmprobe's class of the plain model.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.utils.multiclass import type_of_target
from sklearn.utils.validation import check_is_fitted, validate_data

from fastprobe._validation import as_float
from fastprobe.estimators._base import (
    SolverPlan,
    binary_proba,
    encode_classes,
    require_fitted,
    solve,
    weights,
)
from fastprobe.exceptions import InvalidInputError

__all__ = ["MassMeanClassifier", "MassMeanProbe"]


#: Singular values of the standardized within-class data at or below this are dropped (scikit-learn's LDA ``tol``).
_LDA_TOL = 1e-4
_LDA_ROWS = 4096  # rows per block when the within-class Gram matrix is accumulated (more samples than features)


def _check_finite(X: np.ndarray) -> None:
    """Raise the Rust solvers' error for the first value of ``X`` that is not finite."""
    bad = np.argwhere(~np.isfinite(X))
    if len(bad):
        i, j = (int(k) for k in bad[0])
        v = X[i, j]
        shown = "NaN" if np.isnan(v) else ("inf" if v > 0 else "-inf")
        raise InvalidInputError(f"X contains {shown} at row {i}, column {j}; every value must be finite")


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

        Raises
        ------
        InvalidInputError
            If ``y`` does not have exactly two classes, ``shrinkage`` is not in [0, 1], ``X`` holds a value that is
            not finite, or the data give no direction (the message says which).
        """
        X, y = validate_data(self, X, y, dtype=[np.float32, np.float64], ensure_all_finite=False)
        plan = self._plan(y)
        if not self.lda_fallback:
            plan.finish(self, solve(plan, X, sample_weight, self.n_threads))
            return self
        _check_finite(X)  # the numpy path below does not check, and the Rust solver's refusal is caught
        w = weights(sample_weight, X)
        n_used = X.shape[0] if w is None else int(np.count_nonzero(w > 0))
        if n_used - 2 < X.shape[1]:  # the within-class covariance has rank n_used - 2 at most
            plan.finish(self, _lda_svd(X, plan.targets, w))
            return self
        try:
            raw = solve(plan, X, w, self.n_threads)
        except InvalidInputError:  # singular all the same (say a constant feature); else the SVD path says why
            raw = _lda_svd(X, plan.targets, w)
        plan.finish(self, raw)
        return self

    @property
    def lda_fallback(self) -> bool:
        """Whether a singular within-class covariance is inverted in numpy (whitened, no shrinkage) or refused.

        When true, a fit the Rust solver refuses as singular is made as scikit-learn's LDA (``solver="svd"``) makes
        it; a layer sweep (:func:`fastprobe.sweep.fit_layers`) then fits each layer that way.
        """
        return bool(self.whiten) and as_float(self.shrinkage, "shrinkage") == 0.0

    def _plan(self, y: Any) -> SolverPlan:
        y_type = type_of_target(y, input_name="y", raise_unknown=True)
        if y_type not in ("binary", "unknown") and len(np.unique(y)) > 2:
            raise InvalidInputError(
                f"Only binary classification is supported. The type of the target is {y_type} "
                f"({len(np.unique(y))} classes); MassMeanProbe separates exactly two classes."
            )
        idx = encode_classes(self, y)

        def finish(est: MassMeanProbe, raw: Any) -> None:
            direction, threshold, slope = raw
            est.coef_ = direction.reshape(1, -1)
            est.intercept_ = np.array([-threshold])
            est.platt_slope_ = float(slope)

        options = {"whiten": bool(self.whiten), "shrinkage": as_float(self.shrinkage, "shrinkage")}
        return SolverPlan("mass_mean", [], idx, 2, options, finish)

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


class MassMeanClassifier(MassMeanProbe):
    """lmprobe's mass-mean probe (``"mass_mean"``): the unit direction from one class mean to the other.

    :class:`~fastprobe.estimators.MassMeanProbe` without whitening, with lmprobe's interface: no parameters,
    ``coef_`` of shape (n_features,) and a float ``intercept_``, the class means stored, and a
    :class:`~fastprobe.exceptions.NotFittedError` (a RuntimeError) before ``fit``. The threshold sits at the midpoint
    of the class means; ``predict_proba`` is Platt-scaled (a slope fitted on the training scores, so probability 1/2
    sits at the threshold). Unlike lmprobe's, ``fit`` accepts ``sample_weight`` and takes the two classes from the
    labels (lmprobe fixes them to 0 and 1).

    Attributes
    ----------
    classes_ : ndarray of shape (2,)
    coef_ : ndarray of shape (n_features,)
        The unit direction from ``mean_negative_`` to ``mean_positive_``.
    intercept_ : float
        Minus the projection of the midpoint of the class means.
    mean_positive_ : ndarray of shape (n_features,)
        The (weighted) mean of the samples of ``classes_[1]``. Set by ``fit``; a layer sweep fitted in Rust
        (:func:`fastprobe.sweep.fit_layers`), which never holds a layer in Python, leaves it unset.
    mean_negative_ : ndarray of shape (n_features,)
        The mean of the samples of ``classes_[0]``; set as ``mean_positive_``.
    platt_slope_ : float
        ``P(classes_[1]) = sigmoid(platt_slope_ * decision_function(X))``.
    n_features_in_ : int

    References
    ----------
    Marks and Tegmark, "The Geometry of Truth" (2023).
    """

    whiten = False
    shrinkage = 0.0
    n_threads = None

    def __init__(self) -> None:
        pass

    def set_params(self, **params: Any) -> MassMeanClassifier:
        """Accept and ignore any parameter: this classifier has none (lmprobe's contract).

        Returns
        -------
        self : MassMeanClassifier
        """
        return self

    def _plan(self, y: Any) -> SolverPlan:
        present = np.unique(np.asarray(y))
        if len(present) < 2:
            raise InvalidInputError(
                f"Both classes must have at least one sample; y has only {present.tolist()} ({len(y)} samples)"
            )
        plan = super()._plan(y)
        finish = plan.finish

        def flat(est: Any, raw: Any) -> None:
            finish(est, raw)
            est.coef_ = est.coef_[0]
            est.intercept_ = float(est.intercept_[0])

        plan.finish = flat
        return plan

    def fit(self, X: Any, y: Any, sample_weight: Any = None) -> MassMeanClassifier:
        """Fit on labels of exactly two classes.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : array-like of shape (n_samples,)
        sample_weight : array-like of shape (n_samples,), optional

        Returns
        -------
        self : MassMeanClassifier

        Raises
        ------
        InvalidInputError
            If a class has no sample ("Both classes must have at least one sample").
        """
        X, y = validate_data(self, X, y, dtype=[np.float32, np.float64], ensure_all_finite=False)
        super().fit(X, y, sample_weight=sample_weight)
        side = np.searchsorted(self.classes_, y)
        given = weights(sample_weight, X)
        w = np.ones(len(y)) if given is None else given
        X64 = np.asarray(X, dtype=np.float64)
        self.mean_negative_ = np.average(X64[side == 0], axis=0, weights=w[side == 0])
        self.mean_positive_ = np.average(X64[side == 1], axis=0, weights=w[side == 1])
        return self

    def decision_function(self, X: Any) -> np.ndarray:
        """``X @ coef_ + intercept_``, shape (n,) (positive: ``classes_[1]``)."""
        require_fitted(self, "coef_")
        X = validate_data(self, X, dtype=[np.float32, np.float64], reset=False)
        return np.asarray(X, dtype=np.float64) @ self.coef_ + self.intercept_

    def predict_proba(self, X: Any) -> np.ndarray:
        """Platt-scaled probabilities, shape (n, 2)."""
        return binary_proba(self.platt_slope_ * self.decision_function(X))

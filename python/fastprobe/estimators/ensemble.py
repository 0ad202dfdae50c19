"""lmprobe's ensemble classifier: logistic regressions over several C, their class probabilities averaged.

With fastprobe's options the members are fitted in Rust along one warm-started regularization path.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.utils.validation import validate_data

from fastprobe import _core
from fastprobe.estimators._base import (
    encode_classes,
    float32,
    only_options,
    positive_option,
    require_fitted,
    warn_not_converged,
    weights,
)
from fastprobe.estimators.logistic import LogisticProbe
from fastprobe.exceptions import InvalidInputError

__all__ = ["EnsembleClassifier", "LogisticEnsemble"]

_ENSEMBLE_CS = (0.01, 0.1, 0.5, 1.0, 5.0)


class EnsembleClassifier(ClassifierMixin, BaseEstimator):
    """lmprobe's ensemble (``"ensemble"``): logistic regressions over several C, class probabilities averaged.

    With the default ``solver="lbfgs"`` and only options fastprobe's solver has (``tol``, ``fit_intercept``,
    ``n_threads``), the members are fitted in Rust along one warm-started regularization path (smallest C first) and
    are :class:`~fastprobe.estimators.LogisticProbe` objects; any other solver or option fits one scikit-learn
    ``LogisticRegression`` per C with it. Unlike lmprobe's, extra options survive ``get_params`` and ``clone``, and
    ``fit`` accepts ``sample_weight``.

    Parameters
    ----------
    C_values : list of float, optional
        Inverse regularization strengths; None means ``[0.01, 0.1, 0.5, 1.0, 5.0]``.
    solver : str, default="lbfgs"
    max_iter : int, default=1000
    random_state : int, optional
        Passed to scikit-learn's solvers (fastprobe's is deterministic).
    **kwargs
        More options of ``LogisticRegression`` (say ``tol``, ``penalty``, ``class_weight``).

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
    estimators_ : list of estimators
        One fitted logistic regression per C, in the order of ``C_values``.
    coef_ : ndarray of shape (n_rows, n_features)
        The members' mean coefficients (one row for two classes).
    intercept_ : ndarray of shape (n_rows,)
    n_features_in_ : int
    """

    _RUST_OPTIONS: Mapping[str, Any] = {
        "tol": None,
        "fit_intercept": None,
        "n_threads": None,
        "penalty": ("l2",),
        "n_jobs": None,
        "verbose": (0, False),
    }

    def __init__(
        self,
        C_values: list[float] | None = None,
        solver: str = "lbfgs",
        max_iter: int = 1000,
        random_state: int | None = None,
        **kwargs: Any,
    ) -> None:
        self.C_values = list(_ENSEMBLE_CS) if C_values is None else C_values
        self.solver = solver
        self.max_iter = max_iter
        self.random_state = random_state
        self._options = kwargs

    def get_params(self, deep: bool = True) -> dict[str, Any]:
        """Return the parameters, with any extra option given to the constructor or :meth:`set_params`.

        Parameters
        ----------
        deep : bool, default=True
            Unused (no nested estimators).

        Returns
        -------
        dict
        """
        params = {
            "C_values": self.C_values,
            "solver": self.solver,
            "max_iter": self.max_iter,
            "random_state": self.random_state,
        }
        return params | dict(self._options)

    def set_params(self, **params: Any) -> EnsembleClassifier:
        """Set parameters; a name that is not a constructor parameter becomes an extra option.

        Returns
        -------
        self : EnsembleClassifier
        """
        for key, value in params.items():
            if key in ("C_values", "solver", "max_iter", "random_state"):
                setattr(self, key, value)
            else:
                self._options = {**self._options, key: value}
        return self

    def _rust(self) -> bool:
        return self.solver == "lbfgs" and only_options(self._options, self._RUST_OPTIONS)

    def fit(self, X: Any, y: Any, sample_weight: Any = None) -> EnsembleClassifier:
        """Fit one logistic regression per C.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : array-like of shape (n_samples,)
        sample_weight : array-like of shape (n_samples,), optional

        Returns
        -------
        self : EnsembleClassifier
        """
        from sklearn.linear_model import LogisticRegression

        X, y = validate_data(self, X, y, dtype=[np.float32, np.float64])
        cs = list(self.C_values)
        if not cs:
            raise InvalidInputError(f"C_values must be a non-empty list of numbers > 0; got {self.C_values!r}")
        if not self._rust():
            options = {k: v for k, v in self._options.items() if k != "n_threads"}
            members: list[Any] = [
                LogisticRegression(
                    C=c, solver=self.solver, max_iter=self.max_iter, random_state=self.random_state, **options
                ).fit(X, y, sample_weight=sample_weight)
                for c in cs
            ]
            self.classes_ = members[0].classes_
        else:
            for c in cs:
                positive_option(c, "C_values")
            idx = encode_classes(self, y)
            X32 = float32(X)
            order = np.argsort(cs)
            opts = {
                "fit_intercept": bool(self._options.get("fit_intercept", True)),
                "tol": self._options.get("tol", 1e-4),
            }
            fits = _core.logistic_path(
                X32,
                idx,
                len(self.classes_),
                weights(sample_weight, X32),
                [float(cs[i]) for i in order],
                opts["fit_intercept"],
                int(self.max_iter),
                float(opts["tol"]),
                self._options.get("n_threads"),
            )
            members = [None] * len(cs)
            for i, (coef, intercept, n_iter, converged) in zip(order, fits, strict=True):
                member = LogisticProbe(
                    C=cs[i], max_iter=self.max_iter, n_threads=self._options.get("n_threads"), **opts
                )
                member.classes_, member.coef_, member.intercept_ = self.classes_, coef, intercept
                member.n_iter_ = np.array([max(int(n_iter), 1)])
                member.n_features_in_ = self.n_features_in_
                if hasattr(self, "feature_names_in_"):
                    member.feature_names_in_ = self.feature_names_in_
                if not converged:
                    warn_not_converged(member, stacklevel=2)
                members[i] = member
        self.estimators_ = members
        self.coef_ = np.mean([m.coef_ for m in members], axis=0)
        self.intercept_ = np.mean([m.intercept_ for m in members], axis=0)
        return self

    def predict_proba(self, X: Any) -> np.ndarray:
        """Return the mean of the members' class probabilities, columns in ``classes_`` order."""
        require_fitted(self, "estimators_")
        return np.mean([m.predict_proba(X) for m in self.estimators_], axis=0)

    def predict(self, X: Any) -> np.ndarray:
        """Predict the class with the highest mean probability."""
        return self.classes_[np.argmax(self.predict_proba(X), axis=1)]


#: The name an earlier release gave the ``"ensemble"`` classifier; the same class.
LogisticEnsemble = EnsembleClassifier

"""The classifiers a :class:`~fastprobe.Probe` accepts by name, and lmprobe's helpers that build and check them.

Each name in :data:`CLASSIFIERS` means what it means in lmprobe (same defaults, ``classifier_kwargs`` override
them), except ``"mlp"``, fastprobe's own (a one-hidden-layer network, :class:`MLPProbe`, for classification). Where
a Rust solver computes the same model, the name builds a fastprobe estimator; options that solver does not have (say
``penalty="l1"``) fall back to the scikit-learn estimator lmprobe would build, so every option keeps working.
:func:`build_classifier` says which one a configuration gets.
"""

from __future__ import annotations

import functools
import numbers
import warnings
from collections.abc import Mapping
from typing import Any

from sklearn.base import BaseEstimator, clone

from fastprobe.estimators._base import only_options, positive_option
from fastprobe.estimators.ensemble import EnsembleClassifier
from fastprobe.estimators.logistic import LogisticProbe
from fastprobe.estimators.mass_mean import MassMeanClassifier, MassMeanProbe
from fastprobe.estimators.mlp import MLPProbe
from fastprobe.estimators.ridge import RidgeClassifierProbe, RidgeProbe
from fastprobe.estimators.sgd_torch import SGDTorchClassifier
from fastprobe.exceptions import InvalidEstimatorError, UnknownOptionError

__all__ = [
    "BUILTIN_CLASSIFIERS",
    "CLASSIFICATION_CLASSIFIERS",
    "CLASSIFIERS",
    "REGRESSION_CLASSIFIERS",
    "build_classifier",
    "cuml_available",
    "resolve_classifier",
    "validate_classifier",
]

#: Every classifier name a probe accepts.
CLASSIFIERS: tuple[str, ...] = (
    "logistic_regression",
    "logistic_regression_cv",
    "ridge",
    "ridge_regression",
    "svm",
    "sgd",
    "sgd_gpu",
    "mass_mean",
    "lda",
    "ensemble",
    "mlp",
)
#: lmprobe's sets of the same names: all of them, those for classification, those for regression.
BUILTIN_CLASSIFIERS: frozenset[str] = frozenset(CLASSIFIERS)
CLASSIFICATION_CLASSIFIERS: frozenset[str] = BUILTIN_CLASSIFIERS - {"ridge_regression"}
REGRESSION_CLASSIFIERS: frozenset[str] = frozenset({"ridge_regression"})
_REGRESSORS = ("logistic_regression", "ridge_regression")
_COMPUTE_BACKENDS = ("sklearn", "auto")  # as Probe's compute_backend: fastprobe's solvers serve both; no cuML path


@functools.lru_cache(maxsize=1)
def cuml_available() -> bool:
    """Whether cuML is installed and imports (the answer is cached; ``cuml_available.cache_clear()`` resets it).

    fastprobe has no cuML path (its Rust solvers replace it); this answers the question lmprobe's function answers.

    Returns
    -------
    bool
    """
    try:
        import cuml  # noqa: F401
    except ImportError:
        return False
    return True


def _check_interface(clf: Any, *, proba: bool, stacklevel: int) -> None:
    names = ", ".join(CLASSIFIERS)
    for method in ("fit", "predict"):
        if not hasattr(clf, method):
            raise InvalidEstimatorError(
                f"Classifier {type(clf).__name__} must have a {method}() method; expected a classifier name "
                f"({names}) or an estimator with fit and predict"
            )
    if proba and not hasattr(clf, "predict_proba"):
        warnings.warn(
            f"{type(clf).__name__} does not support predict_proba(): probe.predict_proba(), AUROC and score "
            "pooling will raise",
            UserWarning,
            stacklevel=stacklevel + 1,
        )


def validate_classifier(clf: Any) -> None:
    """Check that an object can serve as a probe's classifier.

    Parameters
    ----------
    clf : estimator
        Needs ``fit`` and ``predict``; ``predict_proba`` is optional.

    Raises
    ------
    InvalidEstimatorError
        (A TypeError.) If ``clf`` has no ``fit`` or no ``predict`` method.

    Warns
    -----
    UserWarning
        If ``clf`` has no ``predict_proba`` ("does not support predict_proba").
    """
    _check_interface(clf, proba=True, stacklevel=2)


def resolve_classifier(
    classifier: str | Any,
    random_state: int | None = None,
    classifier_kwargs: Mapping[str, Any] | None = None,
    compute_backend: str = "sklearn",
) -> Any:
    """Return the estimator a classifier specification means, checked with :func:`validate_classifier`.

    Parameters
    ----------
    classifier : str or estimator
        A name (built by :func:`build_classifier`) or an estimator, returned as it is (not cloned).
    random_state : int, optional
        For a name only.
    classifier_kwargs : mapping, optional
        For a name only; an estimator object keeps its own settings.
    compute_backend : {"sklearn", "auto"}, default="sklearn"
        For a name only.

    Returns
    -------
    estimator

    Raises
    ------
    UnknownOptionError
        For an unknown name or compute_backend.
    InvalidEstimatorError
        If the estimator has no ``fit`` or ``predict``.

    Warns
    -----
    UserWarning
        If the estimator has no ``predict_proba``.
    """
    if isinstance(classifier, str):
        clf = build_classifier(classifier, random_state, classifier_kwargs, compute_backend)
    else:
        clf = classifier
    _check_interface(clf, proba=True, stacklevel=2)
    return clf


def build_classifier(
    name: str | Any,
    random_state: int | None = None,
    classifier_kwargs: Mapping[str, Any] | None = None,
    compute_backend: str = "sklearn",
    *,
    task: str = "classification",
) -> BaseEstimator:
    """Build the unfitted estimator a probe configuration names.

    =========================  =====================================================  ==================================
    name                       estimator (defaults)                                   Rust when the kwargs allow
    =========================  =====================================================  ==================================
    ``logistic_regression``    ``LogisticRegression(max_iter=1000, solver="lbfgs")``  ``LogisticProbe`` (C, max_iter,
                                                                                      tol, fit_intercept)
    ``logistic_regression_cv`` ``LogisticRegressionCV(cv=5, max_iter=1000)``         no
    ``ridge``                  ``RidgeClassifier(alpha=1)``                           ``RidgeClassifierProbe``
    ``ridge_regression``       ``Ridge(alpha=1)``                                     ``RidgeProbe``
    ``svm``                    ``SVC(kernel="linear", probability=True)``             no
    ``sgd``                    ``SGDClassifier(loss="log_loss")``                     no
    ``sgd_gpu``                :class:`SGDTorchClassifier` (torch)                    no
    ``mass_mean``              :class:`MassMeanClassifier` (``MassMeanProbe(**kw)``   always
                               when given options)
    ``lda``                    linear discriminant analysis                           ``MassMeanProbe(whiten=True)``
                                                                                      (shrinkage); else sklearn's LDA
    ``ensemble``               :class:`EnsembleClassifier` (C in 0.01 ... 5)          solver "lbfgs"
    ``mlp``                    :class:`MLPProbe` (torch; hidden_size=128, Adam,       no (torch); classification only
                               early stopping on a 10% hold-out)
    =========================  =====================================================  ==================================

    With ``task="regression"`` the default ``"logistic_regression"`` means ridge regression (``alpha=1``).

    Parameters
    ----------
    name : str or estimator
        A name above, or any scikit-learn estimator with ``fit`` and ``predict`` (cloned, never modified).
    random_state : int, optional
        Passed to the estimators that take one.
    classifier_kwargs : mapping, optional
        Options overriding the defaults (never modified).
    compute_backend : {"sklearn", "auto"}, default="sklearn"
        Accepted for lmprobe's signature: fastprobe's solvers serve both (there is no cuML path).
    task : {"classification", "regression"}, default="classification"

    Returns
    -------
    estimator
        Unfitted.

    Raises
    ------
    UnknownOptionError
        If the name is unknown ("Unknown classifier"; the message lists the valid ones), is a classifier used for
        regression, or ``compute_backend`` is not one of the two.
    InvalidEstimatorError
        (A TypeError.) If an estimator object lacks ``fit`` or ``predict``.
    """
    if compute_backend not in _COMPUTE_BACKENDS:
        raise UnknownOptionError(
            f"Unknown compute_backend {compute_backend!r}; expected one of: {', '.join(_COMPUTE_BACKENDS)} "
            "(fastprobe's Rust solvers replace cuML)"
        )
    kwargs = dict(classifier_kwargs or {})
    if not isinstance(name, str):
        _check_interface(name, proba=task == "classification", stacklevel=2)
        est = clone(name)
        return est.set_params(**kwargs) if kwargs else est
    if name not in CLASSIFIERS:
        raise UnknownOptionError(
            f"Unknown classifier {name!r}; expected one of: {', '.join(CLASSIFIERS)}, or an estimator object"
        )
    if task == "regression":
        if name not in _REGRESSORS:
            raise UnknownOptionError(
                f"classifier {name!r} is a classifier; for task='regression' use one of: "
                f"{', '.join(_REGRESSORS)} (both ridge regression), or a regressor object"
            )
        name = "ridge_regression"
    return _named(name, random_state, kwargs)


def _named(name: str, random_state: int | None, kwargs: dict[str, Any]) -> BaseEstimator:
    from sklearn.discriminant_analysis import LinearDiscriminantAnalysis
    from sklearn.linear_model import (
        LogisticRegression,
        LogisticRegressionCV,
        Ridge,
        RidgeClassifier,
        SGDClassifier,
    )
    from sklearn.svm import SVC

    if name == "logistic_regression":
        rust: dict[str, Any] = {"C": None, "max_iter": None, "tol": None, "fit_intercept": None, "random_state": None}
        rust |= {"solver": ("lbfgs",), "penalty": ("l2",), "n_jobs": None, "verbose": (0, False)}
        if only_options(kwargs, rust):
            return LogisticProbe(
                C=positive_option(kwargs.get("C", 1.0), "C"),
                max_iter=kwargs.get("max_iter", 1000),
                tol=kwargs.get("tol", 1e-4),
                fit_intercept=kwargs.get("fit_intercept", True),
            )
        return LogisticRegression(**{"max_iter": 1000, "solver": "lbfgs", "random_state": random_state, **kwargs})
    if name in ("ridge", "ridge_regression"):
        if only_options(kwargs, {"alpha": None, "fit_intercept": None, "random_state": None}):
            alpha = positive_option(kwargs.get("alpha", 1.0), "alpha")
            cls = RidgeClassifierProbe if name == "ridge" else RidgeProbe
            return cls(alphas=alpha, fit_intercept=kwargs.get("fit_intercept", True))
        if name == "ridge":
            return RidgeClassifier(**{"random_state": random_state, **kwargs})
        return Ridge(**{"alpha": 1.0, **kwargs})
    if name == "mass_mean":
        return MassMeanProbe(**kwargs) if kwargs else MassMeanClassifier()
    if name == "lda":
        shrinkage = kwargs.get("shrinkage", 0.0)
        if only_options(kwargs, {"shrinkage": None, "solver": ("lsqr", "eigen")}) and isinstance(
            shrinkage, numbers.Real
        ):
            return MassMeanProbe(whiten=True, shrinkage=float(shrinkage))
        return LinearDiscriminantAnalysis(**kwargs)
    if name == "ensemble":
        return EnsembleClassifier(**{"random_state": random_state, **kwargs})
    if name == "logistic_regression_cv":
        return LogisticRegressionCV(**{"cv": 5, "max_iter": 1000, "random_state": random_state, **kwargs})
    if name == "svm":
        return SVC(**{"kernel": "linear", "probability": True, "random_state": random_state, **kwargs})
    if name == "sgd":
        return SGDClassifier(**{"loss": "log_loss", "random_state": random_state, **kwargs})
    if name == "mlp":
        return MLPProbe(**{"random_state": random_state, **kwargs})
    return SGDTorchClassifier(**{"random_state": random_state, **kwargs})

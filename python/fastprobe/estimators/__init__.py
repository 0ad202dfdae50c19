"""scikit-learn estimators over the Rust solvers: ridge, logistic regression, mass-mean probes and layer scaling.

Every estimator follows scikit-learn's contract (parameters stored unmodified in ``__init__``, validation in
``fit``, fitted attributes with a trailing underscore as numpy arrays, ``fit`` returning ``self``), so they work in
``Pipeline``, ``GridSearchCV``, ``cross_val_score``, ``clone`` and pickling.

Data policy: ``X`` is converted once to C-contiguous float32 (a visible copy when it is anything else); the solvers
accumulate in float64 and return float64 coefficients. ``n_threads=None`` uses fastprobe's default pool (sized by
``FASTPROBE_NUM_THREADS``, else the CPU count); pass 1 inside an outer parallel loop.

One file per family: :mod:`~fastprobe.estimators.ridge`, :mod:`~fastprobe.estimators.logistic`,
:mod:`~fastprobe.estimators.group_lasso`, :mod:`~fastprobe.estimators.mass_mean`,
:mod:`~fastprobe.estimators.scaler`, :mod:`~fastprobe.estimators.sgd_torch`, :mod:`~fastprobe.estimators.mlp` (a
one-hidden-layer network in torch), :mod:`~fastprobe.estimators.ensemble`; :mod:`~fastprobe.estimators.registry`
builds them from lmprobe's classifier names (and fastprobe's ``"mlp"``). lmprobe's classes and helpers are also
importable from ``fastprobe.classifiers`` and ``fastprobe.scaling``.
"""

from fastprobe.estimators._base import SolverPlan, solver_plan
from fastprobe.estimators.ensemble import EnsembleClassifier, LogisticEnsemble
from fastprobe.estimators.group_lasso import GroupLassoClassifier, GroupLassoProbe
from fastprobe.estimators.logistic import LogisticProbe, logistic_path
from fastprobe.estimators.mass_mean import MassMeanClassifier, MassMeanProbe
from fastprobe.estimators.mlp import MLPProbe
from fastprobe.estimators.registry import (
    BUILTIN_CLASSIFIERS,
    CLASSIFICATION_CLASSIFIERS,
    CLASSIFIERS,
    REGRESSION_CLASSIFIERS,
    build_classifier,
    cuml_available,
    resolve_classifier,
    validate_classifier,
)
from fastprobe.estimators.ridge import RidgeClassifierProbe, RidgeProbe
from fastprobe.estimators.scaler import LayerScaler, PerLayerScaler
from fastprobe.estimators.sgd_torch import SGDTorchClassifier

__all__ = [
    "BUILTIN_CLASSIFIERS",
    "CLASSIFICATION_CLASSIFIERS",
    "CLASSIFIERS",
    "REGRESSION_CLASSIFIERS",
    "EnsembleClassifier",
    "GroupLassoClassifier",
    "GroupLassoProbe",
    "LayerScaler",
    "LogisticEnsemble",
    "LogisticProbe",
    "MLPProbe",
    "MassMeanClassifier",
    "MassMeanProbe",
    "PerLayerScaler",
    "RidgeClassifierProbe",
    "RidgeProbe",
    "SGDTorchClassifier",
    "SolverPlan",
    "build_classifier",
    "cuml_available",
    "logistic_path",
    "resolve_classifier",
    "solver_plan",
    "validate_classifier",
]

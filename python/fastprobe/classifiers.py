"""lmprobe's ``classifiers`` module: the classifier names a :class:`~fastprobe.Probe` accepts, and the classes.

A facade: every name lives in :mod:`fastprobe.estimators` (the name tables and :func:`build_classifier` in
``fastprobe.estimators.registry``). Each name in :data:`CLASSIFIERS` means what it means in lmprobe; where a Rust
solver computes the same model, the name builds a fastprobe estimator. ``"mlp"`` (:class:`MLPProbe`) is fastprobe's
own addition.
"""

from fastprobe.estimators import (  # noqa: F401  (importable from this module before; not lmprobe's names)
    BUILTIN_CLASSIFIERS,
    CLASSIFICATION_CLASSIFIERS,
    CLASSIFIERS,
    REGRESSION_CLASSIFIERS,
    EnsembleClassifier,
    GroupLassoClassifier,
    GroupLassoProbe,
    LogisticEnsemble,
    LogisticProbe,
    MassMeanClassifier,
    MassMeanProbe,
    MLPProbe,
    RidgeClassifierProbe,
    RidgeProbe,
    SGDTorchClassifier,
    build_classifier,
    cuml_available,
    resolve_classifier,
    validate_classifier,
)

__all__ = [
    "BUILTIN_CLASSIFIERS",
    "CLASSIFICATION_CLASSIFIERS",
    "CLASSIFIERS",
    "REGRESSION_CLASSIFIERS",
    "EnsembleClassifier",
    "GroupLassoClassifier",
    "LogisticEnsemble",
    "MLPProbe",
    "MassMeanClassifier",
    "SGDTorchClassifier",
    "build_classifier",
    "cuml_available",
    "resolve_classifier",
    "validate_classifier",
]

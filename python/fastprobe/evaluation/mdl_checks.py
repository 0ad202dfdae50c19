"""Checks of an online code's inputs (:mod:`fastprobe.evaluation.mdl`): fractions, seed, probe, precision, block."""

from __future__ import annotations

import itertools
import math
import numbers
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from fastprobe.estimators import build_classifier
from fastprobe.exceptions import ArgumentTypeError, InvalidEstimatorError, InvalidInputError

__all__ = [
    "DEFAULT_RELATIVE_PRECISION",
    "build_estimator",
    "check_first_block",
    "check_fractions",
    "check_precision",
    "check_seed",
]

#: The default ``precision`` of the Gaussian code, as a fraction of the target range (a uniform code of
#: ``log2(1000)``, about 9.97 bits, per target).
DEFAULT_RELATIVE_PRECISION = 1e-3


def check_fractions(fractions: Any) -> list[float]:
    """Return the block fractions as floats, or raise naming what is wrong with them."""
    if isinstance(fractions, (str, bytes)) or not isinstance(fractions, Sequence | np.ndarray):
        raise ArgumentTypeError(
            f"fractions must be a sequence of numbers in (0, 1] ending at 1.0; got {type(fractions).__name__}"
        )
    values = []
    for f in fractions:
        if isinstance(f, bool) or not isinstance(f, numbers.Real):
            raise ArgumentTypeError(f"fractions must be numbers in (0, 1]; got {f!r} ({type(f).__name__})")
        values.append(float(f))
    if not values:
        raise InvalidInputError("fractions is empty; give block ends in (0, 1] ending at 1.0, e.g. (0.25, 0.5, 1.0)")
    outside = [f for f in values if not (0.0 < f <= 1.0)]
    if outside:
        raise InvalidInputError(f"fractions must lie in (0, 1]; got {outside} in {tuple(values)}")
    if any(b <= a for a, b in itertools.pairwise(values)):
        raise InvalidInputError(f"fractions must be strictly increasing; got {tuple(values)}")
    if values[-1] != 1.0:
        raise InvalidInputError(
            f"fractions must end at 1.0 (the last block ends at the last example); got {tuple(values)}"
        )
    return values


def check_seed(random_state: Any) -> int:
    """Return the seed as an int, or raise :class:`ArgumentTypeError`."""
    if isinstance(random_state, bool) or not isinstance(random_state, numbers.Integral):
        raise ArgumentTypeError(
            f"random_state must be an int seed; got {random_state!r} ({type(random_state).__name__})"
        )
    return int(random_state)


def build_estimator(estimator: Any, task: str, random_state: int, kwargs: Mapping[str, Any] | None) -> Any:
    """Return the unfitted probe an online code clones for every block (classification needs ``predict_proba``)."""
    if not isinstance(estimator, str) and not (hasattr(estimator, "fit") and hasattr(estimator, "predict")):
        raise InvalidEstimatorError(
            f"estimator must be a classifier name or an estimator with fit and predict; got {type(estimator).__name__}"
        )
    if task == "classification" and not isinstance(estimator, str) and not hasattr(estimator, "predict_proba"):
        raise InvalidEstimatorError(
            f"the online code of classes needs predict_proba; {type(estimator).__name__} has none"
        )
    template = build_classifier(estimator, random_state, kwargs, task=task)
    if task == "classification" and not hasattr(template, "predict_proba"):
        raise InvalidEstimatorError(
            f"the online code of classes needs predict_proba; {estimator!r} builds {type(template).__name__}, which "
            "has none (use 'logistic_regression' or 'mlp')"
        )
    return template


def check_precision(precision: Any, low: float, high: float) -> float:
    """Return the Gaussian code's cell width: the one given, checked, or the default share of the target range."""
    if precision is None:
        return (high - low) * DEFAULT_RELATIVE_PRECISION
    if isinstance(precision, bool) or not isinstance(precision, numbers.Real):
        raise ArgumentTypeError(f"precision must be a number > 0; got {precision!r} ({type(precision).__name__})")
    eps = float(precision)
    if not (math.isfinite(eps) and 0.0 < eps < high - low):
        raise InvalidInputError(
            f"precision must be > 0 and below the target range {high - low!r} (from {low!r} to {high!r}); got {eps!r}"
        )
    return eps


def check_first_block(classes: np.ndarray, shuffled: np.ndarray, t1: int, fractions: Sequence[float]) -> None:
    """Raise unless the first block holds every class, naming the missing ones and a first fraction that works."""
    missing = np.setdiff1d(np.arange(len(classes)), shuffled[:t1])
    if len(missing) == 0:
        return
    first_seen = np.array([int(np.argmax(shuffled == c)) for c in range(len(classes))])
    needed = int(first_seen.max()) + 1
    n = len(shuffled)
    raise InvalidInputError(
        f"the first MDL block (the first {t1} of {n} shuffled examples, fraction {fractions[0]!r}) lacks classes "
        f"{classes[missing].tolist()}; every block's probe must have seen every class. Every class appears within "
        f"the first {needed} shuffled examples: give a larger first fraction (at least {needed / n:.4g}), or "
        "another random_state"
    )

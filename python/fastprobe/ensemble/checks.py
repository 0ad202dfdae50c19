"""Checks of an ensemble's members and options: one model, classifiers, weights, voting, seeds."""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from fastprobe.exceptions import InvalidInputError, ShapeMismatchError, UnknownOptionError
from fastprobe.model import model_identity
from fastprobe.probe import Probe

__all__ = [
    "VOTING",
    "check_members",
    "check_random_state",
    "check_same_model",
    "check_voting",
    "model_key",
    "normalise_weights",
]

#: The voting rules: average the members' probabilities, or take the weighted majority of their predictions.
VOTING: tuple[str, ...] = ("soft", "hard")


def check_members(probes: Any) -> list[Probe]:
    """Return the members as a list, refusing non-probes, repeats, regressors and members on different models."""
    if isinstance(probes, Probe) or not isinstance(probes, (list, tuple)):
        raise InvalidInputError(f"probes must be a list of Probe objects; got {type(probes).__name__}")
    if not probes:
        raise InvalidInputError("probes must be a non-empty list of Probe objects; got an empty list")
    seen: dict[int, int] = {}
    for i, probe in enumerate(probes):
        if not isinstance(probe, Probe):
            raise InvalidInputError(f"probes[{i}] must be a fastprobe Probe; got {type(probe).__name__}")
        if id(probe) in seen:
            raise InvalidInputError(
                f"probes[{seen[id(probe)]}] and probes[{i}] are the same Probe object; every member needs its own "
                "(sklearn.base.clone(probe) makes an unfitted copy)"
            )
        seen[id(probe)] = i
        if probe.task != "classification":
            raise InvalidInputError(
                f"an ensemble votes on classes, so its members must be classifiers; probes[{i}] has task={probe.task!r}"
            )
    check_same_model(list(probes))
    return list(probes)


def model_key(model: Any, revision: str | None = None) -> str | None:
    """Return a probe's ``model`` argument, a local path made absolute (so ``"m"`` and ``Path("m")`` agree).

    A Hub id's revision is part of it (``"org/name@v2"``): two revisions are two models.
    """
    if model is None:
        return None
    name = os.fspath(model) if isinstance(model, (str, os.PathLike)) else str(model)
    key = os.path.realpath(name) if os.path.exists(name) else name
    return key if revision is None else f"{key}@{revision}"


def check_same_model(probes: list[Probe]) -> None:
    """Refuse members on different models: fitted ones by their models' identities, unfitted ones by ``model``."""
    prints: list[tuple[int, dict[str, Any]]] = []
    bare: list[int] = []
    for i, probe in enumerate(probes):
        fp = getattr(probe, "model_fingerprint_", None)
        if fp:
            prints.append((i, fp))
        else:
            bare.append(i)
    for i, fp in prints[1:]:
        i0, fp0 = prints[0]
        if model_identity(fp) != model_identity(fp0):
            raise InvalidInputError(
                f"ensemble members must probe the same model; probes[{i0}] was fitted on {fp0.get('model')!r} "
                f"({fp0.get('architecture')}, weights {fp0.get('weights')}) but probes[{i}] on {fp.get('model')!r} "
                f"({fp.get('architecture')}, weights {fp.get('weights')})"
            )
    if not bare:
        return
    if prints:  # a fitted member's own model argument, or the model it was fitted on
        i0, fp0 = prints[0]
        reference = [model_key(probes[i0].model, getattr(probes[i0], "revision", None)), model_key(fp0.get("model"))]
    else:
        i0 = bare[0]
        reference = [model_key(probes[i0].model, getattr(probes[i0], "revision", None))]
    for i in bare:
        key = model_key(probes[i].model, getattr(probes[i], "revision", None))
        if key not in reference:
            raise InvalidInputError(
                f"ensemble members must probe the same model; probes[{i0}] is on {reference[0]!r} but "
                f"probes[{i}] is on {key!r}"
            )


def normalise_weights(weights: Any, n: int) -> np.ndarray:
    """Return the members' weights summing to 1 (equal weights for None), checked."""
    if weights is None:
        return np.full(n, 1.0 / n)
    if isinstance(weights, (str, bytes)):
        raise InvalidInputError(f"weights must be a list of numbers, one per probe; got {weights!r}")
    try:
        w = np.asarray(weights, dtype=np.float64)
    except (TypeError, ValueError):
        raise InvalidInputError(f"weights must be a list of numbers, one per probe; got {weights!r}") from None
    if w.ndim != 1 or len(w) != n:
        raise ShapeMismatchError(
            f"weights length must match the number of probes: expected {n} numbers, got shape {w.shape}"
        )
    if not np.all(np.isfinite(w)):
        raise InvalidInputError(f"weights must be finite; got {w.tolist()}")
    if np.any(w < 0):
        raise InvalidInputError(f"weights must be >= 0; got {w.tolist()}")
    total = float(w.sum())
    if total <= 0:
        raise InvalidInputError(f"weights must sum to a positive number; got {w.tolist()}")
    return np.asarray(w / total)


def check_voting(voting: Any) -> str:
    """Return ``voting`` if it is one of :data:`VOTING`."""
    if not isinstance(voting, str) or voting not in VOTING:
        raise UnknownOptionError(f"Unknown voting strategy {voting!r}; expected one of: {', '.join(VOTING)}")
    return voting


def check_random_state(random_state: Any) -> None:
    """Refuse a seed that is not None, an int >= 0 or a numpy Generator."""
    ok = (
        random_state is None
        or isinstance(random_state, np.random.Generator)
        or (isinstance(random_state, (int, np.integer)) and not isinstance(random_state, bool) and random_state >= 0)
    )
    if not ok:
        raise InvalidInputError(f"random_state must be None, an int >= 0 or a numpy Generator; got {random_state!r}")

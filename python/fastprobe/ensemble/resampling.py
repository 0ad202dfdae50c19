"""Bootstrap resampling of an ensemble's training rows: draws holding every class, within groups."""

from __future__ import annotations

import math

import numpy as np

from fastprobe.exceptions import InvalidInputError

__all__ = ["MAX_DRAWS", "draw", "resample", "token_rows"]

#: Draws of a bootstrap resample before giving up on one that holds every class.
MAX_DRAWS = 100


def draw(rng: np.random.Generator, y: np.ndarray, groups: np.ndarray | None, w: np.ndarray | None) -> np.ndarray:
    """One bootstrap draw of row indices (see :meth:`ProbeEnsemble.bootstrap` for the procedure)."""
    n = len(y)
    if groups is None:
        return np.asarray(rng.choice(n, size=n, replace=True))
    names = np.unique(groups)
    per_group = math.ceil(n / len(names))
    parts = []
    for name in names:
        members = np.flatnonzero(groups == name)
        p = None
        if w is not None:
            p = w[members] / w[members].sum()
        parts.append(rng.choice(members, size=per_group, replace=True, p=p))
    return np.concatenate(parts)


def resample(rng: np.random.Generator, y: np.ndarray, groups: np.ndarray | None, w: np.ndarray | None) -> np.ndarray:
    """Draw a bootstrap resample holding every class of ``y``, trying up to :data:`MAX_DRAWS` times."""
    n_classes = len(np.unique(y))
    for _ in range(MAX_DRAWS):
        idx = draw(rng, y, groups, w)
        if len(np.unique(y[idx])) == n_classes:
            return idx
    how = " group-balanced" if groups is not None else ""
    raise InvalidInputError(
        f"no{how} bootstrap resample held every class ({np.unique(y).tolist()}) in {MAX_DRAWS} draws; "
        "give more prompts of the rarest class"
        + (" (or groups and sample_weight under which every class can be drawn)" if groups is not None else "")
    )


def token_rows(offsets: np.ndarray, idx: np.ndarray) -> np.ndarray:
    """Return the per-token rows of prompts ``idx``, in that order, given each prompt's row offsets."""
    counts = np.diff(offsets)[idx]
    starts = offsets[:-1][idx]
    shift = np.repeat(starts - (np.cumsum(counts) - counts), counts)
    return np.asarray(np.arange(int(counts.sum())) + shift)

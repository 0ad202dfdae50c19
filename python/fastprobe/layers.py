"""Layer specifications: which decoder blocks' outputs a probe reads.

Layer ``i`` is the output of decoder block ``i`` (so layer 0 is not the embeddings), and the last layer is taken
before the model's final norm. Negative indices count from the end.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from fastprobe.exceptions import InvalidInputError, UnknownOptionError

__all__ = [
    "AUTO_SPECS",
    "DEFAULT_AUTO_CANDIDATES",
    "LAYER_SPECS",
    "LayerSpec",
    "is_auto",
    "is_sweep",
    "resolve_auto_candidates",
    "resolve_layers",
    "resolve_sweep",
]

LayerSpec = int | Sequence[int] | str
#: The named layer specifications.
LAYER_SPECS: tuple[str, ...] = ("middle", "last", "all")
#: The automatic layer selections: group lasso over the candidates, or the top candidates by coefficient norm.
AUTO_SPECS: tuple[str, ...] = ("auto", "fast_auto")
#: Candidate layers of automatic selection when none are given: fractions of the depth.
DEFAULT_AUTO_CANDIDATES: tuple[float, ...] = (0.25, 0.5, 0.75)


def _index(layer: object, n_layers: int) -> int:
    if isinstance(layer, bool) or not isinstance(layer, (int, np.integer)):
        raise InvalidInputError(f"a layer index must be an int; got {layer!r} of type {type(layer).__name__}")
    idx = int(layer)
    resolved = idx + n_layers if idx < 0 else idx
    if not 0 <= resolved < n_layers:
        raise InvalidInputError(
            f"layer {idx} is out of range for a model with {n_layers} layers (valid: {-n_layers} to {n_layers - 1})"
        )
    return resolved


def resolve_layers(spec: LayerSpec, n_layers: int) -> list[int]:
    """Turn a layer specification into sorted, distinct block indices.

    Parameters
    ----------
    spec : int, sequence of int, or {"middle", "last", "all"}
        An index (negative counts from the end), a list of indices, ``"middle"`` (the middle third:
        ``range(n // 3, n - n // 3)``), ``"last"`` or ``"all"``.
    n_layers : int
        The model's number of decoder blocks.

    Returns
    -------
    list of int
        Ascending, without duplicates: the order in which layers' features are concatenated.

    Raises
    ------
    InvalidInputError
        If an index is out of range or the list is empty.
    UnknownOptionError
        If a string is not a known specification.

    Examples
    --------
    >>> resolve_layers("middle", 30)[:3], resolve_layers(-1, 30), resolve_layers([5, -1, 5], 30)
    ([10, 11, 12], [29], [5, 29])
    """
    if isinstance(spec, str):
        if spec == "middle":
            return list(range(n_layers // 3, n_layers - n_layers // 3))
        if spec == "last":
            return [n_layers - 1]
        if spec == "all":
            return list(range(n_layers))
        if is_sweep(spec):
            return resolve_sweep(spec, n_layers)
        if is_auto(spec):
            raise InvalidInputError(
                f"layers={spec!r} selects layers while fitting; resolve its candidates with resolve_auto_candidates"
            )
        raise UnknownOptionError(
            f"unknown layer specification {spec!r}; expected an int, a list of ints, or one of: "
            f"{', '.join(LAYER_SPECS)}, 'auto', 'fast_auto', 'sweep', 'sweep:K' (every K-th layer), 'sweep:A-B' "
            "(layers A to B)"
        )
    if isinstance(spec, (int, np.integer)):
        return [_index(spec, n_layers)]  # rejects bools with a clear message
    layers = sorted({_index(layer, n_layers) for layer in spec})
    if not layers:
        raise InvalidInputError("the layer list is empty; give at least one layer index")
    return layers


def is_auto(spec: object) -> bool:
    """Whether a layer specification asks for automatic selection (``"auto"`` or ``"fast_auto"``)."""
    return isinstance(spec, str) and spec in AUTO_SPECS


def resolve_auto_candidates(candidates: Sequence[float] | Sequence[int] | None, n_layers: int) -> list[int]:
    """List the candidate layers of automatic selection.

    Parameters
    ----------
    candidates : sequence of float or int, optional
        Fractions of the depth when every value is a float in [0, 1] (``f`` becomes layer ``int(f * (n_layers -
        1))``), else layer indices (negative counts from the end). None: :data:`DEFAULT_AUTO_CANDIDATES`.
    n_layers : int

    Returns
    -------
    list of int
        Ascending, without duplicates.

    Raises
    ------
    InvalidInputError
        If the list is empty, mixes fractions with other values, or an index is out of range.

    Examples
    --------
    >>> resolve_auto_candidates(None, 30), resolve_auto_candidates([2, -1, 2], 30)
    ([7, 14, 21], [2, 29])
    """
    values = list(DEFAULT_AUTO_CANDIDATES if candidates is None else candidates)
    if isinstance(candidates, str) or not values:
        raise InvalidInputError(
            f"auto_candidates must be a non-empty list of layer indices or fractions; got {candidates!r}"
        )
    if all(isinstance(v, float) and 0.0 <= v <= 1.0 for v in values):
        return sorted({min(int(v * (n_layers - 1)), n_layers - 1) for v in values})
    if any(isinstance(v, float) and not float(v).is_integer() for v in values):
        raise InvalidInputError(
            f"auto_candidates mixes fractions with other values ({values}); give only fractions in [0, 1] or only "
            "layer indices"
        )
    return sorted({_index(int(v), n_layers) for v in values})


def is_sweep(spec: object) -> bool:
    """Whether a layer specification asks for a sweep (``"sweep"``, ``"sweep:K"``, ``"sweep:A-B"``)."""
    return isinstance(spec, str) and (spec == "sweep" or spec.startswith("sweep:"))


def resolve_sweep(spec: str, n_layers: int) -> list[int]:
    """List the layers a sweep specification covers.

    Parameters
    ----------
    spec : str
        ``"sweep"`` (every layer), ``"sweep:K"`` (every K-th layer from 0) or ``"sweep:A-B"`` (layers A to B inclusive,
        clipped to the model).
    n_layers : int

    Returns
    -------
    list of int
        Ascending.

    Raises
    ------
    InvalidInputError
        If the step or range is malformed, or covers no layer of the model.

    Examples
    --------
    >>> resolve_sweep("sweep:10", 30), resolve_sweep("sweep:27-40", 30)
    ([0, 10, 20], [27, 28, 29])
    """
    if spec == "sweep":
        return list(range(n_layers))
    suffix = spec.removeprefix("sweep:")
    start, dash, end = suffix.partition("-")
    try:
        if dash:
            a, b = int(start), int(end)
            layers = [i for i in range(a, b + 1) if 0 <= i < n_layers]
        else:
            step = int(suffix)
            if step < 1:
                raise ValueError
            layers = list(range(0, n_layers, step))
    except ValueError:
        raise InvalidInputError(
            f"malformed sweep specification {spec!r}; expected 'sweep', 'sweep:K' with K >= 1, or 'sweep:A-B' "
            "with 0 <= A <= B"
        ) from None
    if not layers:
        raise InvalidInputError(f"{spec!r} covers no layer of a model with {n_layers} layers (0 to {n_layers - 1})")
    return layers

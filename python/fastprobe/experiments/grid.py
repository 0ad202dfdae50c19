"""An experiment's grid: JSON-able values, their canonical form, the cells and the key that names each cell.

A cell's configuration is a dict of JSON values: one value per grid axis plus the experiment's fixed settings. Its
key is the SHA-256 (hex) of the canonical JSON of ``{"config": configuration, "experiment": name}``: keys sorted,
no whitespace, UTF-8, no NaN or infinity. The key depends on nothing else (not on the order of the grid's axes, the
process, the platform or the fastprobe version), so the same configuration has the same key in every process.
Types are kept: ``1`` and ``1.0``, ``True`` and ``1`` are different configurations. Tuples become lists, and numpy
scalars and arrays become their Python values (``.item()``, ``.tolist()``) before anything is hashed.
"""

from __future__ import annotations

import copy
import hashlib
import itertools
import json
import math
from collections.abc import Iterator, Mapping
from typing import Any

import numpy as np

from fastprobe.exceptions import ArgumentTypeError, InvalidInputError

__all__ = ["JSON_TYPES", "canonical_json", "cell_key", "check_grid", "expand_grid", "to_json_value"]

#: What a configuration or result value may be, as the error messages say.
JSON_TYPES = "None, bool, int, float, str, and lists and str-keyed dicts of these"


def to_json_value(value: Any, *, where: str, allow_nan: bool = False) -> Any:
    """Return ``value`` as plain JSON data (dicts, lists, str, int, float, bool, None), or raise.

    Parameters
    ----------
    value : Any
        The value to convert. Tuples and numpy arrays become lists, numpy scalars their Python value.
    where : str
        What the value is, for the error message (``"grid axis 'layer'"``).
    allow_nan : bool, default False
        Accept NaN and infinite floats (results may hold an undefined metric; a configuration may not).

    Returns
    -------
    Any
        The converted value.

    Raises
    ------
    ArgumentTypeError
        If the value (or something inside it) is not JSON-able, or a dict has a key that is not a str.
    InvalidInputError
        If a float is NaN or infinite and ``allow_nan`` is False.
    """
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        if not allow_nan and not math.isfinite(value):
            raise InvalidInputError(f"{where} holds {value!r}; expected a finite float (NaN and infinity are not JSON)")
        return float(value)
    if isinstance(value, np.generic):
        return to_json_value(value.item(), where=where, allow_nan=allow_nan)
    if isinstance(value, np.ndarray):
        return to_json_value(value.tolist(), where=where, allow_nan=allow_nan)
    if isinstance(value, (list, tuple)):
        return [to_json_value(item, where=where, allow_nan=allow_nan) for item in value]
    if isinstance(value, Mapping):
        out: dict[str, Any] = {}
        for key, item in value.items():
            if not isinstance(key, str):
                raise ArgumentTypeError(
                    f"{where} holds a dict with the key {key!r} ({type(key).__name__}); JSON dict keys must be str"
                )
            out[key] = to_json_value(item, where=where, allow_nan=allow_nan)
        return out
    raise ArgumentTypeError(
        f"{where} holds {_short_repr(value)} of type {type(value).__name__}; expected JSON-able values ({JSON_TYPES}). "
        "Give an estimator by its name or its parameters, data by its hash"
    )


def canonical_json(value: Any) -> str:
    """Return the canonical JSON text of plain JSON data: sorted keys, no whitespace, non-ASCII kept, no NaN.

    Parameters
    ----------
    value : Any
        Data as :func:`to_json_value` returns it.

    Returns
    -------
    str
    """
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def cell_key(experiment: str, config: Mapping[str, Any]) -> str:
    """Return the key of one cell: the SHA-256 (hex) of the canonical JSON of its experiment name and configuration.

    Parameters
    ----------
    experiment : str
        The experiment's name.
    config : Mapping[str, Any]
        The cell's full configuration (grid values and fixed settings).

    Returns
    -------
    str
        64 hexadecimal digits.

    Examples
    --------
    >>> import hashlib
    >>> key = cell_key("demo", {"model": "m", "layer": 3})
    >>> key == hashlib.sha256(b'{"config":{"layer":3,"model":"m"},"experiment":"demo"}').hexdigest()
    True
    """
    if not isinstance(experiment, str):
        raise ArgumentTypeError(f"experiment must be a str; got {type(experiment).__name__}")
    plain = to_json_value(config, where="the cell's configuration")
    if not isinstance(plain, dict):
        raise ArgumentTypeError(f"a cell's configuration must be a mapping; got {type(config).__name__}")
    text = canonical_json({"config": plain, "experiment": experiment})
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def check_grid(grid: Any, fixed: Any) -> tuple[dict[str, list[Any]], dict[str, Any]]:
    """Check an experiment's grid and fixed settings; return them as plain JSON data.

    Parameters
    ----------
    grid : Mapping[str, Sequence]
        Axis name -> the values it takes (a list, tuple, range or 1-D numpy array; at least one, no duplicates).
    fixed : Mapping[str, Any] or None
        Settings shared by every cell, part of every cell's configuration (and so of its key).

    Returns
    -------
    tuple[dict[str, list], dict[str, Any]]
        The axes (in the given order) and the fixed settings.

    Raises
    ------
    ArgumentTypeError
        If the grid or ``fixed`` is not a mapping with str keys, an axis's values are not a sequence, or a value is
        not JSON-able.
    InvalidInputError
        If an axis has no value or a repeated value, or a fixed setting has the name of an axis.
    """
    if not isinstance(grid, Mapping):
        raise ArgumentTypeError(f"grid must be a mapping of axis name -> list of values; got {type(grid).__name__}")
    fixed = {} if fixed is None else fixed
    if not isinstance(fixed, Mapping):
        raise ArgumentTypeError(f"fixed must be a mapping of setting name -> value; got {type(fixed).__name__}")
    axes: dict[str, list[Any]] = {}
    for name, values in grid.items():
        if not isinstance(name, str) or not name:
            raise ArgumentTypeError(f"grid axis names must be non-empty str; got {name!r}")
        if isinstance(values, (str, bytes)) or not isinstance(values, (list, tuple, range, np.ndarray)):
            raise ArgumentTypeError(
                f"grid axis {name!r} must be a list of values; got {type(values).__name__} {_short_repr(values)}"
            )
        plain = [to_json_value(value, where=f"grid axis {name!r}") for value in values]
        if not plain:
            raise InvalidInputError(f"grid axis {name!r} has no value; expected at least one")
        seen: dict[str, Any] = {}
        for value in plain:
            text = canonical_json(value)
            if text in seen:
                raise InvalidInputError(f"grid axis {name!r} lists the value {text} twice; expected distinct values")
            seen[text] = value
        axes[name] = plain
    settings: dict[str, Any] = {}
    for name, value in fixed.items():
        if not isinstance(name, str) or not name:
            raise ArgumentTypeError(f"fixed setting names must be non-empty str; got {name!r}")
        if name in axes:
            raise InvalidInputError(f"fixed setting {name!r} is also a grid axis; expected a name used once")
        settings[name] = to_json_value(value, where=f"fixed setting {name!r}")
    return axes, settings


def expand_grid(axes: Mapping[str, list[Any]], fixed: Mapping[str, Any]) -> Iterator[dict[str, Any]]:
    """Yield every cell's configuration: the product of the axes (the last axis varies fastest), then ``fixed``.

    Parameters
    ----------
    axes : Mapping[str, list]
        As :func:`check_grid` returns them.
    fixed : Mapping[str, Any]
        As :func:`check_grid` returns them.

    Yields
    ------
    dict[str, Any]
        A fresh dict per cell: the axes in their order, then the fixed settings.
    """
    names = list(axes)
    for values in itertools.product(*(axes[name] for name in names)):
        config = dict(zip(names, values, strict=True))
        config.update(fixed)
        yield copy.deepcopy(config)


def _short_repr(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."

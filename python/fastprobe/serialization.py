"""Safe storage of fitted estimators: arrays in a safetensors file, everything else as JSON in its header.

:func:`encode` turns a tree of values (numbers, strings, arrays, lists, dicts, and estimators from scikit-learn or
fastprobe) into JSON plus named arrays; :func:`decode` rebuilds it. An estimator is stored as its class path and its
attribute dictionary, and rebuilt without calling any code of its own (``__new__``, then the attributes), and only
classes from ``sklearn`` and ``fastprobe`` are accepted, so a stored file cannot run code on load. A value outside this
vocabulary (a user's own estimator class, say) is pickled into the file, and :func:`decode` refuses it unless
``trust_pickle=True``.
"""

from __future__ import annotations

import importlib
import json
import os
import pathlib
import pickle
import tempfile
from collections.abc import Callable
from typing import Any, BinaryIO

import numpy as np

from fastprobe._config import DEFAULT_BATCH_SIZE, DefaultBatchSize
from fastprobe.exceptions import FastprobeError, FastprobeIOError

_TRUSTED_MODULES = ("sklearn.", "fastprobe.")
MAGIC = "fastprobe.probe"


class PickleRefused(FastprobeError):
    """A stored value needs unpickling, which was not allowed."""


class _Encoder:
    def __init__(self) -> None:
        self.arrays: dict[str, np.ndarray] = {}
        self.pickled: list[str] = []

    def _array(self, arr: np.ndarray) -> dict[str, Any]:
        key = f"a{len(self.arrays)}"
        self.arrays[key] = np.ascontiguousarray(arr)
        return {"__array__": key}

    def encode(self, value: Any, where: str) -> Any:
        from sklearn.base import BaseEstimator

        if value is None or isinstance(value, (bool, str)):
            return value
        if isinstance(value, DefaultBatchSize):  # lmprobe's default batch size, kept as "not set"
            return {"__default_batch_size__": int(value)}
        if isinstance(value, (int, float)) and type(value) in (int, float):
            return value
        if isinstance(value, np.generic) and value.dtype.kind in "biuf":
            return {"__scalar__": value.dtype.str, "value": value.item()}
        if isinstance(value, np.ndarray):
            if value.dtype.kind in "biuf" and value.dtype.byteorder in "=|<":
                return self._array(value)
            if value.dtype.kind in "USO":
                items = value.tolist()
                if _plain(items):
                    return {"__list_array__": items, "dtype": value.dtype.str, "shape": list(value.shape)}
            return self._pickle(value, where)
        if isinstance(value, np.dtype):
            return {"__dtype__": value.str}
        if isinstance(value, pathlib.PurePath):
            return {"__path__": str(value)}
        if isinstance(value, list):
            return [self.encode(v, f"{where}[{i}]") for i, v in enumerate(value)]
        if isinstance(value, tuple):
            return {"__tuple__": [self.encode(v, f"{where}[{i}]") for i, v in enumerate(value)]}
        if isinstance(value, dict) and all(isinstance(k, str) for k in value):
            return {"__dict__": {k: self.encode(v, f"{where}.{k}") for k, v in value.items()}}
        if isinstance(value, dict) and all(isinstance(k, (int, np.integer)) for k in value):
            return {"__intdict__": [[int(k), self.encode(v, f"{where}[{k}]")] for k, v in value.items()]}
        cls = type(value)
        if isinstance(value, BaseEstimator) and cls.__module__.startswith(_TRUSTED_MODULES):
            state = value.__getstate__()
            if not isinstance(state, dict):
                return self._pickle(value, where)
            inner = f"{where}<{cls.__name__}>"
            kept: dict[str, Any] = {}
            for key, item in state.items():
                n_arrays, n_pickled = len(self.arrays), len(self.pickled)
                encoded = self.encode(item, f"{inner}.{key}")
                if key.startswith("_") and len(self.pickled) > n_pickled:
                    # A private helper object (say a compiled loss), rebuilt by the estimator when needed: drop it.
                    for extra in list(self.arrays)[n_arrays:]:
                        del self.arrays[extra]
                    del self.pickled[n_pickled:]
                    continue
                kept[key] = encoded
            return {"__estimator__": f"{cls.__module__}:{cls.__qualname__}", "state": {"__dict__": kept}}
        if isinstance(value, type) and value.__module__ == "numpy":
            return {"__numpy_type__": value.__name__}
        return self._pickle(value, where)

    def _pickle(self, value: Any, where: str) -> dict[str, Any]:
        self.pickled.append(where)
        ref = self._array(np.frombuffer(pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL), dtype=np.uint8))
        return {"__pickle__": ref["__array__"], "where": where, "type": type(value).__qualname__}


def _plain(items: Any) -> bool:
    if isinstance(items, list):
        return all(_plain(i) for i in items)
    return items is None or isinstance(items, (str, int, float, bool))


def encode(tree: Any) -> tuple[Any, dict[str, np.ndarray], list[str]]:
    """Return (JSON-able tree, arrays by key, the places that had to be pickled)."""
    enc = _Encoder()
    doc = enc.encode(tree, "probe")
    return doc, enc.arrays, enc.pickled


def _class(path: str) -> Any:
    from sklearn.base import BaseEstimator

    module, _, qualname = path.partition(":")
    if not module.startswith(_TRUSTED_MODULES):
        raise FastprobeError(f"refusing to load class {path!r}: only sklearn and fastprobe classes are rebuilt")
    obj: Any = importlib.import_module(module)
    for part in qualname.split("."):
        obj = getattr(obj, part)
    if not (isinstance(obj, type) and issubclass(obj, BaseEstimator)):
        raise FastprobeError(f"refusing to load {path!r}: not an estimator class")
    return obj


def decode(doc: Any, arrays: dict[str, np.ndarray], *, trust_pickle: bool) -> Any:
    """Rebuild the tree :func:`encode` stored.

    Raises
    ------
    PickleRefused
        If a value was pickled and ``trust_pickle`` is false (the message names the value and its type).
    """
    if isinstance(doc, list):
        return [decode(v, arrays, trust_pickle=trust_pickle) for v in doc]
    if not isinstance(doc, dict):
        return doc
    if "__array__" in doc:
        return arrays[doc["__array__"]].copy()
    if "__default_batch_size__" in doc:
        return DEFAULT_BATCH_SIZE
    if "__scalar__" in doc:
        return np.dtype(doc["__scalar__"]).type(doc["value"])
    if "__list_array__" in doc:
        return np.array(doc["__list_array__"], dtype=np.dtype(doc["dtype"])).reshape(doc["shape"])
    if "__dtype__" in doc:
        return np.dtype(doc["__dtype__"])
    if "__path__" in doc:
        return pathlib.Path(doc["__path__"])
    if "__numpy_type__" in doc:
        return getattr(np, doc["__numpy_type__"])
    if "__tuple__" in doc:
        return tuple(decode(v, arrays, trust_pickle=trust_pickle) for v in doc["__tuple__"])
    if "__dict__" in doc:
        return {k: decode(v, arrays, trust_pickle=trust_pickle) for k, v in doc["__dict__"].items()}
    if "__intdict__" in doc:
        return {k: decode(v, arrays, trust_pickle=trust_pickle) for k, v in doc["__intdict__"]}
    if "__estimator__" in doc:
        cls = _class(doc["__estimator__"])
        obj = cls.__new__(cls)
        state = decode(doc["state"], arrays, trust_pickle=trust_pickle)
        if hasattr(obj, "__setstate__"):
            obj.__setstate__(state)
        else:
            obj.__dict__.update(state)
        return obj
    if "__pickle__" in doc:
        if not trust_pickle:
            raise PickleRefused(
                f"{doc['where']} (a {doc['type']}) is stored as a pickle, and unpickling can run arbitrary code; "
                "pass trust_pickle=True to load it if you trust the file's source"
            )
        return pickle.loads(arrays[doc["__pickle__"]].tobytes())
    raise FastprobeError(f"unrecognised entry in a stored probe: {sorted(doc)}")


def write_atomically(path: str | os.PathLike[str], write: Callable[[BinaryIO], object], what: str) -> None:
    """Write ``path`` through ``write(file)`` into a temporary file beside it, synced, then renamed over ``path``.

    A failure (or a killed process) leaves an earlier ``path`` intact and no temporary file behind.

    Raises
    ------
    FastprobeIOError
        If the file cannot be written (``"could not save {what} to {path}: ..."``).
    """
    target = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(target))
    try:
        fd, tmp = tempfile.mkstemp(prefix=".fastprobe-", suffix=".tmp", dir=folder)
    except OSError as err:
        raise FastprobeIOError(f"could not save {what} to {target!r}: {err}") from err
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, target)
    except BaseException as err:
        if os.path.exists(tmp):
            os.unlink(tmp)
        if isinstance(err, OSError):
            raise FastprobeIOError(f"could not save {what} to {target!r}: {err}") from err
        raise


def write(path: str | os.PathLike[str], doc: Any, arrays: dict[str, np.ndarray]) -> None:
    """Write a safetensors file atomically (a temporary file renamed over ``path``): failures leave ``path`` intact."""
    from safetensors.numpy import save

    blob = save(arrays, metadata={"format": MAGIC, "state": json.dumps(doc)})
    write_atomically(path, lambda f: f.write(blob), "the probe")


def read(path: str | os.PathLike[str]) -> tuple[str, Any, dict[str, np.ndarray]]:
    """Read a saved file: ("fastprobe", doc, arrays), or ("pickle", None, {}) for a pickle file.

    Raises
    ------
    FastprobeIOError
        If the file cannot be read.
    FastprobeError
        If it is neither a fastprobe probe nor a pickle, or is truncated or corrupt.
    """
    from safetensors import SafetensorError
    from safetensors.numpy import load

    target = os.fspath(path)
    try:
        with open(target, "rb") as f:
            data = f.read()
    except OSError as err:
        raise FastprobeIOError(f"could not read a probe from {target!r}: {err}") from err
    # A pickle (protocol 2 and later) starts with the PROTO opcode 0x80; a safetensors file starts with its header
    # length (little-endian u64, whose first byte may be 0x80 too) and then the JSON header's "{".
    if data[:1] == b"\x80" and data[8:9] != b"{":
        return "pickle", None, {}
    try:
        header_len = int.from_bytes(data[:8], "little")
        header = json.loads(data[8 : 8 + header_len])
        meta = header.get("__metadata__", {})
        if meta.get("format") != MAGIC:
            raise ValueError("not a fastprobe probe")
        arrays = load(data)
        return "fastprobe", json.loads(meta["state"]), arrays
    except (ValueError, KeyError, SafetensorError, UnicodeDecodeError) as err:
        raise FastprobeError(
            f"{target!r} is not a probe saved by fastprobe (or lmprobe's pickle), or it is truncated or corrupt: {err}"
        ) from err

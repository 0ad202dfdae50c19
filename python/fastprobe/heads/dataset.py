"""Position datasets: one activation vector per text, read at one token position, with a class label.

:func:`build_position_dataset` runs a model once over labelled examples ``(text, where, label)`` and reads chosen
sites (a head, a residual stream, ...; :mod:`fastprobe.sites`) at one token position of each text; the result is a
:class:`PositionDataset`: the matrix ``X``, the labels and everything needed to know where they came from (model and
fingerprint, sites, positions, interventions, class names, user metadata).

Two file formats:

- :meth:`PositionDataset.save` / :meth:`PositionDataset.load`: one safetensors file. Its tensors are ``X``
  (float32), ``labels`` and ``positions`` (int64); the texts, class names, sites and metadata are JSON strings in
  the safetensors header's ``__metadata__`` (no sidecar file), with a SHA-256 of the tensors' bytes. Loading runs no
  code from the file (no pickle) and checks every key, shape and the checksum.
- :meth:`PositionDataset.to_jsonl` / :meth:`PositionDataset.from_jsonl`: the JSON Lines format of the attention-head
  probing workflow: line 1 a metadata object (``layer``, ``head``, ``class_labels``, ``llm``, ``timestamp``, the
  user's keys), then one ``{"activation": [...], "label": k}`` line per example. Each float32 value is written as
  the Python float it equals, at ``repr`` precision, so activations round-trip exactly.
"""

from __future__ import annotations

import copy
import hashlib
import json
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

import numpy as np

from fastprobe._core import __version__
from fastprobe.exceptions import ArgumentTypeError, FastprobeIOError, InvalidInputError, UnknownOptionError
from fastprobe.serialization import write_atomically
from fastprobe.sites import SiteSpec, parse_site

__all__ = ["DATASET_FORMAT", "PositionDataset", "json_copy", "utc_timestamp"]

#: The ``format`` entry of a saved dataset's safetensors header.
DATASET_FORMAT = "fastprobe.position_dataset"
_FORMAT_VERSION = "1"
_TENSORS = ("X", "labels", "positions")
_HEADER_JSON = ("texts", "class_names", "sites", "metadata")
#: Keys of a JSONL file's first line that :meth:`PositionDataset.from_jsonl` reads itself (the rest is user metadata).
_JSONL_KEYS = ("layer", "head", "class_labels", "llm", "timestamp", "sites")


def utc_timestamp() -> str:
    """Return the current UTC time as ``YYYY-MM-DDTHH:MM:SSZ``."""
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def json_copy(value: Any, what: str) -> Any:
    """Return ``value`` as it reads back from JSON (a deep copy); raise if it is not JSON-able."""
    try:
        return json.loads(json.dumps(value))
    except (TypeError, ValueError) as err:
        raise ArgumentTypeError(f"{what} must be JSON-able (str keys; numbers, strings, lists, dicts); {err}") from None


def _check_path(path: Any, what: str) -> str:
    if not isinstance(path, (str, os.PathLike)):
        raise ArgumentTypeError(f"{what} must be a str or os.PathLike; got {type(path).__name__} {path!r}")
    return os.fspath(path)


def _digest(arrays: Mapping[str, np.ndarray]) -> str:
    h = hashlib.sha256()
    for key in _TENSORS:
        arr = np.ascontiguousarray(arrays[key])
        h.update(f"{key}:{arr.dtype.str}:{arr.shape};".encode())
        h.update(arr.data)
    return h.hexdigest()


def _layer_head(names: Sequence[str]) -> tuple[int | None, int | None]:
    """Return the JSONL ``layer`` and ``head`` of exported sites: set for one head or residual site, else null."""
    if len(names) != 1:
        return None, None
    try:
        site = parse_site(names[0])
    except (UnknownOptionError, InvalidInputError):
        return None, None
    if site.kind == "head":
        return site.layer, site.head
    if site.kind == "resid":
        return site.layer, None
    return None, None


def _sites_from_jsonl(first: Mapping[str, Any], dim: int) -> list[str]:
    listed = first.get("sites")
    if isinstance(listed, list) and listed and all(isinstance(s, str) for s in listed) and dim % len(listed) == 0:
        return list(listed)
    layer, head = first.get("layer"), first.get("head")
    if isinstance(layer, int) and not isinstance(layer, bool):
        if isinstance(head, int) and not isinstance(head, bool):
            return [f"head.{layer}.{head}"]
        if head is None:
            return ["embed"] if layer == -1 else [f"resid.{layer}"]
    return ["unknown"]


@dataclass(eq=False)
class PositionDataset:
    """Activations read at one token position per text, with class labels and where they came from.

    Made by :func:`build_position_dataset`, :meth:`load` or :meth:`from_jsonl`. The constructor checks that the
    parts agree (raising :class:`~fastprobe.exceptions.InvalidInputError` otherwise) and converts ``X`` to
    C-contiguous float32 and ``labels`` to int64 (a copy only where the input is not already so).

    Attributes
    ----------
    X : numpy.ndarray of shape (n, d), float32
        The sites' vectors, concatenated in the order of :attr:`sites` (each site ``d / len(sites)`` columns).
    labels : numpy.ndarray of shape (n,), int64
        Indices into :attr:`class_names`.
    class_names : list of str
    texts : list of str
        The examples' texts (empty strings when unknown, as after :meth:`from_jsonl`).
    positions : list of int
        The token position read in each text, counted as the model sees it (special tokens included), non-negative;
        -1 when unknown.
    sites : list of str
        The resolved site names, in column order (``["unknown"]`` when unknown).
    metadata : dict
        ``model``, ``fingerprint``, ``sites``, ``hidden_size``, ``class_names``, ``interventions`` (their
        identities), ``created`` (UTC, ``YYYY-MM-DDTHH:MM:SSZ``), ``fastprobe_version`` and ``user`` (the metadata
        given to :func:`build_position_dataset`); a subset made by :meth:`split` adds ``split``.
    """

    X: np.ndarray
    labels: np.ndarray
    class_names: list[str]
    texts: list[str]
    positions: list[int]
    sites: list[str]
    metadata: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        X = np.asarray(self.X)
        if X.ndim != 2 or X.dtype.kind not in "fiu":
            raise InvalidInputError(f"X must be a 2-D array of numbers (n, d); got shape {X.shape}, dtype {X.dtype}")
        self.X = np.ascontiguousarray(X, dtype=np.float32)
        n = X.shape[0]
        labels = np.asarray(self.labels)
        if labels.ndim != 1 or labels.dtype.kind not in "iu":
            raise InvalidInputError(
                f"labels must be a 1-D array of class indices (ints); got shape {labels.shape}, dtype {labels.dtype}"
            )
        self.labels = labels.astype(np.int64, copy=False)
        for what, value in (("class_names", self.class_names), ("texts", self.texts), ("sites", self.sites)):
            if isinstance(value, str) or not isinstance(value, Sequence) or not all(isinstance(v, str) for v in value):
                raise InvalidInputError(f"{what} must be a list of strings; got {value!r:.200}")
        self.class_names, self.texts, self.sites = list(self.class_names), list(self.texts), list(self.sites)
        if isinstance(self.positions, str) or not isinstance(self.positions, (Sequence, np.ndarray)):
            raise InvalidInputError(f"positions must be a list of ints; got {self.positions!r:.200}")
        if not all(isinstance(p, (int, np.integer)) and not isinstance(p, bool) for p in self.positions):
            raise InvalidInputError(f"positions must be a list of ints; got {list(self.positions)!r:.200}")
        self.positions = [int(p) for p in self.positions]
        for what, count in (
            ("labels", len(self.labels)),
            ("texts", len(self.texts)),
            ("positions", len(self.positions)),
        ):
            if count != n:
                raise InvalidInputError(f"{what} has {count} entries; X has {n} rows, one per example")
        if not self.class_names or len(set(self.class_names)) != len(self.class_names):
            raise InvalidInputError(f"class_names must be distinct and non-empty; got {self.class_names}")
        if n and (self.labels.min() < 0 or self.labels.max() >= len(self.class_names)):
            bad = int(self.labels[(self.labels < 0) | (self.labels >= len(self.class_names))][0])
            raise InvalidInputError(
                f"label {bad} is outside class_names, which has {len(self.class_names)} classes "
                f"(valid: 0 to {len(self.class_names) - 1})"
            )
        if not self.sites or self.X.shape[1] % len(self.sites):
            raise InvalidInputError(
                f"X has {self.X.shape[1]} columns, which do not split evenly into the {len(self.sites)} sites "
                f"{self.sites}"
            )
        if not isinstance(self.metadata, dict):
            raise InvalidInputError(f"metadata must be a dict; got {type(self.metadata).__name__}")

    def __len__(self) -> int:
        return int(self.X.shape[0])

    def __repr__(self) -> str:
        return (
            f"PositionDataset(n={len(self)}, dim={self.X.shape[1]}, sites={self.sites}, "
            f"classes={self.class_names}, model={self.metadata.get('model')!r})"
        )

    @property
    def hidden_size(self) -> int:
        """Columns per site."""
        return int(self.X.shape[1] // len(self.sites))

    def site(self, name: SiteSpec) -> np.ndarray:
        """Return one site's columns of :attr:`X` (a view).

        Parameters
        ----------
        name : str, int or Site
            A site of :attr:`sites` (``"head.1.0"``; an int ``L`` is ``"resid.L"``).

        Raises
        ------
        UnknownOptionError
            If the dataset has no such site (the message lists its sites).
        """
        j, h = self.sites.index(self._site_name(name)), self.hidden_size
        return self.X[:, j * h : (j + 1) * h]

    def _site_name(self, name: SiteSpec) -> str:
        if isinstance(name, str) and name in self.sites:
            return name
        try:
            key = parse_site(name).name
        except (UnknownOptionError, InvalidInputError):
            key = None
        if key is None or key not in self.sites:
            raise UnknownOptionError(f"unknown site {name!r}; this dataset has the sites: {', '.join(self.sites)}")
        return key

    def subset(self, indices: Sequence[int] | np.ndarray) -> PositionDataset:
        """Return the examples at ``indices`` (in that order), with a copy of the metadata."""
        idx = np.asarray(indices, dtype=np.int64)
        if idx.ndim != 1 or (idx.size and (idx.min() < -len(self) or idx.max() >= len(self))):
            raise InvalidInputError(f"indices must be a 1-D list of example indices below {len(self)}; got {indices!r}")
        return PositionDataset(
            X=self.X[idx],
            labels=self.labels[idx],
            class_names=list(self.class_names),
            texts=[self.texts[i] for i in idx],
            positions=[self.positions[i] for i in idx],
            sites=list(self.sites),
            metadata=copy.deepcopy(self.metadata),
        )

    def split(
        self, test_size: float = 0.2, *, random_state: int = 0, stratify: bool = True
    ) -> tuple[PositionDataset, PositionDataset]:
        """Split into a training and a test set, reproducibly.

        Stratified (each class in the test set in proportion to its size, as scikit-learn's ``train_test_split``
        with ``stratify=labels``) when ``stratify`` is true, every class present has at least 2 examples, and each
        part can hold one example of every class; otherwise a plain shuffle seeded by ``random_state``.
        ``metadata["split"]`` of each part records how it was made.

        Parameters
        ----------
        test_size : float or int, default=0.2
            A fraction in (0, 1) (the test set has ``ceil(test_size * n)`` examples) or a count.
        random_state : int, default=0
            The seed: the same seed gives the same split.
        stratify : bool, default=True

        Returns
        -------
        (PositionDataset, PositionDataset)
            The training and the test set, each in the dataset's order.

        Raises
        ------
        InvalidInputError
            If either part would be empty.
        ArgumentTypeError
            If ``test_size`` or ``random_state`` has the wrong type.
        """
        n = len(self)
        if isinstance(test_size, bool) or not isinstance(test_size, (int, float, np.integer, np.floating)):
            raise ArgumentTypeError(f"test_size must be a fraction or a count; got {test_size!r}")
        if isinstance(random_state, bool) or not isinstance(random_state, (int, np.integer)):
            raise ArgumentTypeError(f"random_state must be an int seed; got {random_state!r}")
        if not 0 <= int(random_state) < 2**32:
            raise InvalidInputError(f"random_state must be in 0..2**32-1; got {random_state}")
        if isinstance(test_size, (int, np.integer)):
            n_test = int(test_size)
        elif 0.0 < float(test_size) < 1.0:
            n_test = math.ceil(float(test_size) * n)
        else:
            raise InvalidInputError(f"a fractional test_size must be in (0, 1); got {test_size}")
        if not 1 <= n_test <= n - 1:
            raise InvalidInputError(
                f"test_size={test_size!r} gives {n_test} test examples of {n}; both parts need at least one example"
            )
        counts = np.bincount(self.labels, minlength=len(self.class_names))
        present = counts[counts > 0]
        stratified = bool(stratify and present.min() >= 2 and n_test >= len(present) and n - n_test >= len(present))
        if stratified:
            from sklearn.model_selection import train_test_split

            train, test = train_test_split(
                np.arange(n), test_size=n_test, random_state=int(random_state), stratify=self.labels
            )
        else:
            order = np.random.default_rng(int(random_state)).permutation(n)
            test, train = order[:n_test], order[n_test:]
        parts = []
        for part, idx in (("train", np.sort(train)), ("test", np.sort(test))):
            subset = self.subset(idx)
            subset.metadata["split"] = {
                "part": part,
                "of": n,
                "test_size": int(test_size) if isinstance(test_size, (int, np.integer)) else float(test_size),
                "random_state": int(random_state),
                "stratified": stratified,
            }
            parts.append(subset)
        return parts[0], parts[1]

    # -- the safetensors file ------------------------------------------------------------------------------------

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write the dataset to one safetensors file, atomically.

        The tensors ``X`` (float32), ``labels`` and ``positions`` (int64) are the file's tensors; ``texts``,
        ``class_names``, ``sites`` and ``metadata`` are JSON strings in its header's ``__metadata__``, beside
        ``format`` (:data:`DATASET_FORMAT`), ``format_version`` and ``sha256`` (of the tensors' bytes). The file is
        written beside ``path`` under a temporary name and renamed over it, so an interrupted save leaves ``path``
        as it was.

        Raises
        ------
        ArgumentTypeError
            If ``path`` is not a path, or the metadata is not JSON-able.
        FastprobeIOError
            If the file cannot be written.
        """
        from safetensors.numpy import save

        target = _check_path(path, "path")
        arrays: dict[str, np.ndarray] = {
            "X": np.ascontiguousarray(self.X, dtype=np.float32),
            "labels": np.ascontiguousarray(self.labels, dtype=np.int64),
            "positions": np.asarray(self.positions, dtype=np.int64).reshape(-1),
        }
        header = {"format": DATASET_FORMAT, "format_version": _FORMAT_VERSION, "sha256": _digest(arrays)}
        for key in _HEADER_JSON:
            try:
                header[key] = json.dumps(getattr(self, key))
            except (TypeError, ValueError) as err:
                raise ArgumentTypeError(f"the dataset's {key} must be JSON-able to be saved: {err}") from None
        blob = save(arrays, metadata=header)
        write_atomically(target, lambda f: f.write(blob), "a position dataset")

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> PositionDataset:
        """Read a dataset written by :meth:`save` (no code from the file runs: safetensors and JSON only).

        Raises
        ------
        FastprobeIOError
            If the file cannot be opened.
        InvalidInputError
            If it is not a position dataset, or is truncated or corrupt (a missing key, a tensor of the wrong type
            or shape, lengths that disagree, a checksum mismatch); the message names the file and the fault.
        """
        from safetensors import SafetensorError, safe_open

        target = _check_path(path, "path")
        try:
            with safe_open(target, framework="numpy") as f:
                header = dict(f.metadata() or {})
                keys = set(f.keys())
                if header.get("format") != DATASET_FORMAT:
                    raise InvalidInputError(
                        f"{target!r} is not a position dataset: its header's format is {header.get('format')!r}, "
                        f"expected {DATASET_FORMAT!r}"
                    )
                missing = [k for k in _TENSORS if k not in keys]
                if missing:
                    raise InvalidInputError(
                        f"{target!r} lacks the tensor(s) {missing}; a position dataset holds {list(_TENSORS)}"
                    )
                arrays = {k: f.get_tensor(k) for k in _TENSORS}
        except OSError as err:
            raise FastprobeIOError(f"could not read a position dataset from {target!r}: {err}") from err
        except SafetensorError as err:
            raise InvalidInputError(
                f"{target!r} is not a readable safetensors file (truncated or corrupt): {err}"
            ) from err
        if header.get("format_version") != _FORMAT_VERSION:
            raise InvalidInputError(
                f"{target!r} has format_version {header.get('format_version')!r}; this fastprobe reads "
                f"{_FORMAT_VERSION!r}"
            )
        parts: dict[str, Any] = {}
        for key in _HEADER_JSON:
            if key not in header:
                raise InvalidInputError(f"{target!r} lacks the header entry {key!r}; expected {list(_HEADER_JSON)}")
            try:
                parts[key] = json.loads(header[key])
            except ValueError as err:
                raise InvalidInputError(f"{target!r}: the header entry {key!r} is not valid JSON: {err}") from None
        expected = {"X": (np.float32, 2), "labels": (np.int64, 1), "positions": (np.int64, 1)}
        for key, (dtype, ndim) in expected.items():
            arr = arrays[key]
            if arr.dtype != dtype or arr.ndim != ndim:
                raise InvalidInputError(
                    f"{target!r}: tensor {key!r} must be {np.dtype(dtype).name} with {ndim} dimension(s); "
                    f"got {arr.dtype.name} of shape {arr.shape}"
                )
        if header.get("sha256") != _digest(arrays):
            raise InvalidInputError(
                f"{target!r} is corrupt: its tensors do not match the SHA-256 recorded when it was saved"
            )
        try:
            return cls(
                X=arrays["X"],
                labels=arrays["labels"],
                positions=arrays["positions"].tolist(),
                **parts,
            )
        except InvalidInputError as err:
            raise InvalidInputError(f"{target!r} holds an inconsistent position dataset: {err}") from None

    # -- the attention-head probing workflow's JSON Lines ---------------------------------------------------------

    def to_jsonl(self, path: str | os.PathLike[str], site: SiteSpec | None = None) -> None:
        """Write the dataset in the attention-head probing workflow's JSON Lines format, atomically.

        Line 1 is a metadata object: ``layer`` and ``head`` (for one exported site: ``head.L.H`` gives ``L`` and
        ``H``, ``resid.L`` gives ``L`` and null; anything else null), ``class_labels``, ``llm`` (the model's name),
        ``timestamp`` (when the dataset was made), ``sites`` (the exported site names, which :meth:`from_jsonl`
        reads back), then every key of the user metadata (the user's keys win on collision). Each following line is
        ``{"activation": [floats], "label": k}``, one per example; each float32 value is written as the Python float
        it equals, at ``repr`` precision, so it reads back exactly.

        Parameters
        ----------
        path : str or os.PathLike
        site : str, int or Site, optional
            Export only this site's columns (default: all of :attr:`X`).

        Raises
        ------
        UnknownOptionError
            For a site the dataset lacks.
        ArgumentTypeError
            If the user metadata is not JSON-able.
        FastprobeIOError
            If the file cannot be written.
        """
        target = _check_path(path, "path")
        if site is None:
            X, names = self.X, list(self.sites)
        else:
            X, names = self.site(site), [self._site_name(site)]
        layer, head = _layer_head(names)
        first: dict[str, Any] = {
            "layer": layer,
            "head": head,
            "class_labels": list(self.class_names),
            "llm": self.metadata.get("model"),
            "timestamp": self.metadata.get("created") or utc_timestamp(),
            "sites": names,
        }
        user = self.metadata.get("user") or {}
        if isinstance(user, Mapping):
            first.update(user)
        try:
            head_line = json.dumps(first)
        except (TypeError, ValueError) as err:
            raise ArgumentTypeError(f"the user metadata must be JSON-able to be exported: {err}") from None

        def write(f: Any) -> None:
            f.write(head_line.encode() + b"\n")
            for row, label in zip(X, self.labels.tolist(), strict=True):
                f.write(json.dumps({"activation": row.tolist(), "label": label}).encode() + b"\n")

        write_atomically(target, write, "a JSONL dataset")

    @classmethod
    def from_jsonl(cls, path: str | os.PathLike[str]) -> PositionDataset:
        """Read a dataset in the attention-head probing workflow's JSON Lines format (see :meth:`to_jsonl`).

        Line 1 must be an object with ``class_labels`` (a list of class names; numbers are turned into strings);
        every other non-blank line an object with ``activation`` (a list of numbers, the same length on every line)
        and ``label`` (an int index into ``class_labels``). The texts are unknown (empty strings) and so are the
        positions (-1). The sites are line 1's ``sites`` when present; else ``head.L.H`` from ``layer`` and ``head``,
        ``resid.L`` from ``layer`` with a null ``head`` (``embed`` for layer -1, the workflow's embedding layer);
        else ``["unknown"]``. Line 1's other keys become ``metadata["user"]``.

        Raises
        ------
        FastprobeIOError
            If the file cannot be read.
        InvalidInputError
            For a malformed line, a missing key, rows of different lengths or a label outside the class names; the
            message names the file, the line number, what was expected and what was found.
        """
        target = _check_path(path, "path")
        first: dict[str, Any] | None = None
        rows: list[np.ndarray] = []
        labels: list[int] = []
        classes: list[str] = []
        try:
            with open(target, encoding="utf-8") as f:
                for number, line in enumerate(f, start=1):
                    if not line.strip():
                        continue
                    where = f"{target!r}, line {number}"
                    try:
                        obj = json.loads(line)
                    except ValueError as err:
                        raise InvalidInputError(
                            f"{where}: expected a JSON object; the line is not JSON ({err})"
                        ) from None
                    if not isinstance(obj, dict):
                        raise InvalidInputError(f"{where}: expected a JSON object; got {type(obj).__name__}")
                    if first is None:
                        first, classes = obj, _class_labels(obj, where)
                        continue
                    rows.append(_activation(obj, where, len(rows[0]) if rows else None))
                    labels.append(_label(obj, where, classes))
        except OSError as err:
            raise FastprobeIOError(f"could not read a JSONL dataset from {target!r}: {err}") from err
        except UnicodeDecodeError as err:
            raise InvalidInputError(f"{target!r} is not UTF-8 text: {err}") from None
        if first is None:
            raise InvalidInputError(f"{target!r} is empty; expected a metadata line with class_labels, then examples")
        if not rows:
            raise InvalidInputError(f"{target!r} has a metadata line but no example lines")
        dim = len(rows[0])
        sites = _sites_from_jsonl(first, dim)
        created = first.get("timestamp", first.get("datetime"))
        metadata = {
            "model": first.get("llm"),
            "fingerprint": None,
            "sites": sites,
            "hidden_size": dim // len(sites),
            "class_names": list(classes),
            "interventions": [],
            "created": created if isinstance(created, str) else None,
            "fastprobe_version": __version__,
            "user": {k: v for k, v in first.items() if k not in _JSONL_KEYS},
            "source": {"format": "jsonl", "path": target, "layer": first.get("layer"), "head": first.get("head")},
        }
        n = len(rows)
        return cls(
            X=np.stack(rows).astype(np.float32, copy=False),
            labels=np.asarray(labels, dtype=np.int64),
            class_names=classes,
            texts=[""] * n,
            positions=[-1] * n,
            sites=sites,
            metadata=metadata,
        )


def _class_labels(obj: Mapping[str, Any], where: str) -> list[str]:
    names = obj.get("class_labels")
    if "class_labels" not in obj:
        raise InvalidInputError(
            f"{where}: expected the metadata object with 'class_labels'; got the keys {sorted(obj)}"
        )
    if (
        not isinstance(names, list)
        or not names
        or not all(isinstance(v, (str, int, float)) and not isinstance(v, bool) for v in names)
    ):
        raise InvalidInputError(f"{where}: expected 'class_labels' to be a non-empty list of names; got {names!r:.200}")
    out = [v if isinstance(v, str) else str(v) for v in names]
    if len(set(out)) != len(out):
        raise InvalidInputError(f"{where}: expected distinct 'class_labels'; got {names!r:.200}")
    return out


def _activation(obj: Mapping[str, Any], where: str, dim: int | None) -> np.ndarray:
    if "activation" not in obj or "label" not in obj:
        lacking = [k for k in ("activation", "label") if k not in obj]
        raise InvalidInputError(
            f"{where}: expected an example with the keys 'activation' and 'label'; it lacks {lacking} "
            f"(has {sorted(obj)})"
        )
    value = obj["activation"]
    arr = np.asarray(value) if isinstance(value, list) else None
    if arr is None or arr.ndim != 1 or arr.dtype.kind not in "fi" or arr.size == 0:
        raise InvalidInputError(f"{where}: expected 'activation' to be a non-empty list of numbers; got {value!r:.80}")
    if dim is not None and arr.size != dim:
        raise InvalidInputError(
            f"{where}: expected an activation of {dim} values (as on the first example line); got {arr.size}"
        )
    return arr.astype(np.float32)


def _label(obj: Mapping[str, Any], where: str, classes: Sequence[str]) -> int:
    label = obj["label"]
    if isinstance(label, bool) or not isinstance(label, int):
        raise InvalidInputError(f"{where}: expected 'label' to be an int class index; got {label!r}")
    if not 0 <= label < len(classes):
        raise InvalidInputError(
            f"{where}: expected 'label' to index class_labels (0 to {len(classes) - 1}, {len(classes)} classes); "
            f"got {label}"
        )
    return label

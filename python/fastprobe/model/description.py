"""A model described without loading anything: its fingerprint and shape, remembered per version of its files.

A fit, a prediction or a sweep on a warm cache needs the model's fingerprint (to find its activation store) and its
number of blocks (to resolve layers), never its weights, and not even torch or transformers. The first time a model is
loaded, :func:`remember_model` writes a small JSON record of both into a directory the caller names (the activation
cache keeps it beside its stores). :func:`describe_model` answers from that record as long as it still holds:

- every file of the model's directory (weights, configuration, tokenizer files; links followed) has the size and
  modification time it had when the record was written, so an edited or replaced file makes the model load again;
- the fastprobe, transformers and tokenizers versions are those that wrote it (a tokenizer class or a fingerprint
  field may change with them);
- a Hub id resolves to the same snapshot: the revision is a commit, or the Hub is offline (``HF_HUB_OFFLINE=1``) and
  the local cache's reference for the revision still names the recorded commit. Online, a branch may have moved, so
  the model is resolved the usual way.

Otherwise it answers None and the caller loads the model (which writes a new record). Nothing here imports torch,
transformers or huggingface_hub.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import re
import tempfile
from importlib import metadata
from pathlib import Path
from typing import Any

from fastprobe.model.loading import LoadedModel
from fastprobe.model.source import ModelSource, file_versions

__all__ = ["DESCRIPTION_VERSION", "describe_model", "remember_model"]

#: The layout of a description record; a record of another version is ignored.
DESCRIPTION_VERSION = 1
_COMMIT = re.compile(r"[0-9a-f]{40}")
_LIBRARIES = ("fastprobe", "transformers", "tokenizers")


@functools.cache
def _libraries() -> dict[str, str]:
    """Return the installed versions of the libraries a record depends on (read once per process)."""
    out = {}
    for name in _LIBRARIES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "absent"
    return out


def _record_path(directory: Path, name: str, revision: str | None, dtype: str, backend: str) -> Path:
    key = json.dumps([name, revision, dtype, backend])
    return directory / f"{hashlib.sha256(key.encode()).hexdigest()[:32]}.json"


def remember_model(
    loaded: LoadedModel, fingerprint: dict[str, Any], dtype: str, directory: str | os.PathLike[str]
) -> None:
    """Record a loaded model's fingerprint and shape for :func:`describe_model`; a remote or quantized one is not.

    The record is written atomically (a temporary file renamed); a directory that cannot be written only means the
    next process loads the model again.

    Parameters
    ----------
    loaded : LoadedModel
        The model as loaded (its :class:`~fastprobe.model.ModelSource` names the files).
    fingerprint : dict
        Its fingerprint (:func:`~fastprobe.model.fingerprint_of`).
    dtype : str
        The dtype it was loaded in (one of :data:`~fastprobe.model.MODEL_DTYPES`).
    directory : str or path-like
        Where records live.
    """
    source = loaded.source
    if source is None or loaded.remote or loaded.quantization:
        return
    record = {
        "version": DESCRIPTION_VERSION,
        "libraries": dict(_libraries()),
        "name": source.name,
        "revision": source.revision,
        "path": source.path,
        "commit": source.commit,
        "files": file_versions(source.path),
        "fingerprint": fingerprint,
        "n_layers": loaded.n_layers,
        "hidden_size": loaded.hidden_size,
    }
    folder = Path(directory)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=".description-", suffix=".tmp")
        with os.fdopen(fd, "w") as f:
            json.dump(record, f)
        os.replace(tmp, _record_path(folder, source.name, source.revision, dtype, loaded.backend))
    except (OSError, TypeError, ValueError):  # read-only, full, or a fingerprint JSON cannot hold: load next time
        return


def _offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").strip().upper() in ("1", "ON", "YES", "TRUE")


def _same_snapshot(record: dict[str, Any], revision: str | None) -> bool:
    """Whether a Hub id and revision still resolve to the recorded snapshot (see the module's description)."""
    commit = record.get("commit")
    if commit is None:
        return False
    if revision is not None and _COMMIT.fullmatch(revision):
        return bool(revision == commit)
    if not _offline():
        return False
    ref = Path(record["path"]).parent.parent / "refs" / (revision or "main")
    try:
        return ref.read_text().strip() == commit
    except OSError:
        return False


def describe_model(
    model: Any,
    revision: str | None,
    device: str,
    dtype: str,
    backend: str,
    directory: str | os.PathLike[str],
) -> tuple[LoadedModel, dict[str, Any]] | None:
    """Return a model described from its record, with no weights, and its fingerprint; None if the record is stale.

    The :class:`~fastprobe.model.LoadedModel` has ``model`` and ``tokenizer`` None: it names the model, its files and
    its shape (``n_layers``, ``hidden_size``), enough to find and read its activation store, and nothing can run on
    it.

    Parameters
    ----------
    model : str or path-like
        A local directory or a Hub id, as given to the loaders.
    revision : str or None
    device : str
        The device the loaded model would use (kept as given).
    dtype : str
        The dtype the model would be loaded in.
    backend : str
    directory : str or path-like
        Where :func:`remember_model` wrote records.

    Returns
    -------
    (LoadedModel, dict) or None
    """
    if not isinstance(model, (str, os.PathLike)):
        return None
    name = os.fspath(model)
    try:
        record = json.loads(_record_path(Path(directory), name, revision, dtype, backend).read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(record, dict) or record.get("version") != DESCRIPTION_VERSION:
        return None
    if record.get("name") != name or record.get("revision") != revision or record.get("libraries") != _libraries():
        return None
    if os.path.isdir(name) and revision is None:
        if record.get("commit") is not None or record.get("path") != name:
            return None
    elif not _same_snapshot(record, revision):
        return None
    path = str(record["path"])
    if file_versions(path) != record.get("files"):
        return None
    source = ModelSource(name, path, record.get("commit"), revision)
    described = LoadedModel(
        name, None, None, device, int(record["n_layers"]), int(record["hidden_size"]), backend, source=source
    )
    return described, dict(record["fingerprint"])

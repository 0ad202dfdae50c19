"""Resolve a model name (a local directory or a Hub id with a revision) to its files, and load from them."""

from __future__ import annotations

import hashlib
import os
import pathlib
import stat
from dataclasses import dataclass
from typing import Any

from fastprobe.exceptions import InvalidInputError, ModelLoadError

__all__ = ["ModelSource", "file_versions", "from_pretrained", "resolve_model", "weights_digest"]

#: File names that hold a model's weights (their digest is part of the model's fingerprint).
WEIGHT_SUFFIXES: tuple[str, ...] = (".safetensors", ".bin", ".pt", ".gguf")


@dataclass(frozen=True)
class ModelSource:
    """Where a model's files are.

    Attributes
    ----------
    name : str
        What the user passed: a Hub id (``"org/name"``) or a local directory.
    path : str
        The local directory holding the model's files: the directory itself, or for a Hub model its snapshot in the
        Hugging Face cache (weights appear there once a full load has downloaded them).
    commit : str or None
        The Hub commit the name and revision resolved to (None for a local directory).
    revision : str or None
        The revision asked for (a branch, tag or commit; None means the default branch).
    """

    name: str
    path: str
    commit: str | None = None
    revision: str | None = None

    @property
    def hub(self) -> bool:
        """Whether the model comes from the Hugging Face Hub (or its local cache)."""
        return self.commit is not None


def _looks_like_path(name: str) -> bool:
    """Tell whether a name cannot be a Hub id: absolute, relative with ``.``/``~``, or not a valid repository id."""
    from huggingface_hub.utils import HFValidationError, validate_repo_id

    if name.startswith((os.sep, ".", "~")) or (os.altsep is not None and os.altsep in name):
        return True
    try:
        validate_repo_id(name)
    except HFValidationError:
        return True
    return False


def resolve_model(model: Any, revision: str | None = None) -> ModelSource:
    """Resolve ``model`` to the files of that model on this machine, as transformers would load it.

    A local directory is used as it is. Anything else is taken as a Hugging Face Hub id: its configuration is looked
    up in the local Hugging Face cache when offline (``HF_HUB_OFFLINE=1``) and fetched into it otherwise, and the
    ``revision`` (branch, tag or commit; None: the default branch) is resolved to the commit it names. Later loads
    pin that commit, so the configuration, tokenizer and weights all come from the same one.

    Parameters
    ----------
    model : str or path-like
        A local directory or a Hub id (``"org/name"``).
    revision : str, optional
        The Hub revision; only for Hub ids.

    Returns
    -------
    ModelSource

    Raises
    ------
    ModelLoadError
        If the model is neither a local directory nor a Hub model transformers can find: the message names it, says
        whether the Hub was offline, and gives transformers' reason. Also an :class:`OSError`.
    InvalidInputError
        If ``model`` is not a string or path, or ``revision`` is given with a local directory.
    """
    if not isinstance(model, (str, os.PathLike)):
        raise InvalidInputError(
            f"model must be a Hugging Face Hub id or a local directory (a str or path); got {type(model).__name__}"
        )
    name = os.fspath(model)
    if not name:
        raise InvalidInputError("model must be a Hugging Face Hub id or a local directory; got an empty string")
    if os.path.isdir(name):
        if revision is not None:
            raise InvalidInputError(
                f"revision={revision!r} applies to Hugging Face Hub ids; {name!r} is a local directory"
            )
        return ModelSource(name, name)
    if isinstance(model, os.PathLike) or _looks_like_path(name):
        raise ModelLoadError(f"model path {name!r} does not exist or is not a directory")
    return _resolve_hub(name, revision)


def _offline() -> bool:
    from huggingface_hub import constants

    return bool(constants.HF_HUB_OFFLINE)


def _resolve_hub(name: str, revision: str | None) -> ModelSource:
    from transformers.utils import cached_file

    try:
        config = cached_file(name, "config.json", revision=revision)
    except OSError as err:
        where = (
            "the local Hugging Face cache (HF_HUB_OFFLINE=1, so nothing is downloaded)"
            if _offline()
            else "the Hugging Face Hub or its local cache"
        )
        at = f" at revision {revision!r}" if revision is not None else ""
        raise ModelLoadError(
            f"model {name!r}{at} could not be loaded: it is not a local directory, and transformers could not find "
            f"it in {where}: {err}"
        ) from err
    if config is None:  # transformers returns None only when told not to raise
        raise ModelLoadError(f"model {name!r} has no config.json")
    snapshot = pathlib.Path(config).parent
    commit = snapshot.name if snapshot.parent.name == "snapshots" else None
    if commit is None:
        raise ModelLoadError(
            f"model {name!r} resolved to {snapshot}, which is not a Hugging Face cache snapshot; pass the directory "
            "itself as the model"
        )
    return ModelSource(name, str(snapshot), commit, revision)


def from_pretrained(cls: Any, source: ModelSource, **kwargs: Any) -> Any:
    """Call ``cls.from_pretrained`` on a resolved source: the Hub id pinned to its commit, or the local directory.

    Parameters
    ----------
    cls : type
        A transformers auto class (``AutoModel``, ``AutoTokenizer``, ``AutoConfig``, ...).
    source : ModelSource
    **kwargs
        Passed on (``dtype``, ...).

    Raises
    ------
    ModelLoadError
        If transformers cannot load the files: a missing or damaged file (its ``OSError``), or a configuration this
        class cannot build, such as an unknown architecture or a model without the head the class needs (its
        ``ValueError`` or ``KeyError``). The message names the model and gives transformers' reason, which is
        also the error's ``__cause__``.
    """
    try:
        if source.hub:
            return cls.from_pretrained(source.name, revision=source.commit, **kwargs)
        return cls.from_pretrained(source.path, **kwargs)
    except (OSError, ValueError, KeyError) as err:
        if isinstance(err, ModelLoadError):
            raise
        raise ModelLoadError(f"model {source.name!r} could not be loaded by {cls.__name__}: {err}") from err


def file_versions(path: str | os.PathLike[str]) -> list[list[Any]]:
    """Return ``[name, size, modification time in ns]`` of each regular file in ``path`` (links followed), by name.

    ``path`` (a model directory) that is not a directory gives an empty list. Together the entries name a version of
    the model's files: a file replaced, edited or touched changes them.
    """
    folder = os.fspath(path)
    if not os.path.isdir(folder):
        return []
    out: list[list[Any]] = []
    for name in sorted(os.listdir(folder)):
        try:
            st = os.stat(os.path.join(folder, name))
        except OSError:  # a dangling link (a Hub snapshot whose blob is gone)
            continue
        if stat.S_ISREG(st.st_mode):
            out.append([name, st.st_size, st.st_mtime_ns])
    return out


def weights_digest(path: str | os.PathLike[str]) -> str | None:
    """SHA-256 over each weight file's name, size and first and last MiB (cheap, and changes with the weights).

    Symbolic links (a Hugging Face cache snapshot links its files to blobs) are followed. Computed once per version of
    the files (their sizes and modification times) in a process; across processes, a model's recorded description
    (:func:`~fastprobe.model.describe_model`) holds it.

    Parameters
    ----------
    path : str or path-like
        A model directory.

    Returns
    -------
    str or None
        ``"sha256:<hex>"``, or None when the directory holds no weight file (a Hub snapshot before its weights were
        downloaded, or not a directory).
    """
    folder = os.fspath(path)
    if not os.path.isdir(folder):
        return None
    versions = [tuple(v) for v in file_versions(folder) if v[0].endswith(WEIGHT_SUFFIXES)]
    names = [str(v[0]) for v in versions]
    key = (os.path.realpath(folder), tuple(versions))
    if key not in _DIGESTS:
        _DIGESTS[key] = _digest(folder, names)
    return _DIGESTS[key]


# (directory, each weight file's name, size and modification time) -> digest: read once per version of the files
_DIGESTS: dict[tuple[str, tuple[tuple[str, int, int], ...]], str | None] = {}


def _digest(folder: str, names: list[str]) -> str | None:
    h = hashlib.sha256()
    for name in names:
        full = os.path.join(folder, name)
        size = os.path.getsize(full)
        h.update(f"{name}:{size}:".encode())
        with open(full, "rb") as f:
            h.update(f.read(1 << 20))
            if size > 2 << 20:
                f.seek(-(1 << 20), os.SEEK_END)
                h.update(f.read(1 << 20))
    return "sha256:" + h.hexdigest() if names else None

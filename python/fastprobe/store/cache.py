"""fastprobe's cache of extracted activations: a root directory holding one :class:`ActivationStore` per fingerprint.

This module holds the cache's process-wide state (the settings made in code and the open stores, under one lock).
Configuration, each settable in code or by environment variable (read by :mod:`fastprobe._config`):

- cache root: :func:`set_cache_backend` / ``FASTPROBE_CACHE_DIR``, default ``~/.cache/fastprobe/activations``;
- byte budget: :func:`set_cache_limit` / ``FASTPROBE_CACHE_MAX_GB`` (unset: unlimited), enforced by :func:`evict`;
- storage dtype of new stores: :func:`set_cache_dtype` / ``FASTPROBE_CACHE_DTYPE`` (default ``float16``);
- what a probe caches: :func:`set_cache_tokens` / ``FASTPROBE_CACHE_TOKENS`` (``"auto"`` or ``"always"``).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fastprobe._config import (
    CACHE_TOKENS_MODES,
    env_cache_dir,
    env_cache_dtype,
    env_cache_limit_bytes,
    env_cache_tokens,
)
from fastprobe.exceptions import ArgumentTypeError, InvalidInputError, UnknownOptionError
from fastprobe.store.activation_store import STORAGE_DTYPES, ActivationStore

__all__ = [
    "CACHE_TOKENS_MODES",
    "SIDECAR_SITES",
    "CacheInfo",
    "ModelCacheInfo",
    "activation_dirs",
    "cache_dir",
    "cache_info",
    "cache_keeps_tokens",
    "clear_cache",
    "enable_cache_logging",
    "evict",
    "invalidate_extraction_cache",
    "logger",
    "model_dirs",
    "model_store",
    "open_store",
    "set_cache_backend",
    "set_cache_dtype",
    "set_cache_limit",
    "set_cache_tokens",
]

_LOCK = threading.RLock()
_UNSET: Any = object()
_settings: dict[str, Any] = {"dir": _UNSET, "limit": _UNSET, "dtype": _UNSET, "tokens": _UNSET}
_stores: dict[tuple[str, str], ActivationStore] = {}


def cache_dir() -> Path:
    """Return the cache root: :func:`set_cache_backend`, else ``FASTPROBE_CACHE_DIR``, else the default.

    Returns
    -------
    pathlib.Path
    """
    with _LOCK:
        if _settings["dir"] is not _UNSET and _settings["dir"] is not None:
            return Path(_settings["dir"])
    return env_cache_dir()


def _cache_dtype() -> str:
    with _LOCK:
        if _settings["dtype"] is not _UNSET and _settings["dtype"] is not None:
            return str(_settings["dtype"])
    return env_cache_dtype()


def cache_keeps_tokens(needed: bool) -> bool:
    """Return whether the cache should keep tokens for a probe whose poolings need them (``needed``) or not."""
    with _LOCK:
        mode = _settings["tokens"]
    if mode is _UNSET or mode is None:
        mode = env_cache_tokens()
    return needed or mode == "always"


def _cache_limit_bytes() -> int | None:
    with _LOCK:
        if _settings["limit"] is not _UNSET:
            gb = _settings["limit"]
            return None if gb is None else int(float(gb) * 1024**3)
    return env_cache_limit_bytes()


def set_cache_backend(backend: str | os.PathLike[str] | None) -> None:
    """Use ``backend`` (a local directory) as the cache root; None goes back to ``FASTPROBE_CACHE_DIR`` / default.

    Parameters
    ----------
    backend : str, path-like or None

    Raises
    ------
    ArgumentTypeError
        If ``backend`` is neither a path nor None (also a :class:`TypeError`).
    UnknownOptionError
        For a URI of another storage (``s3://...``): the cache is a local directory.
    """
    if backend is not None and not isinstance(backend, (str, os.PathLike)):
        raise ArgumentTypeError(
            f"Expected CacheBackend, str, or None: set_cache_backend takes a local directory path or None; got "
            f"{type(backend).__name__}"
        )
    if isinstance(backend, str) and "://" in backend and not backend.startswith("file://"):
        raise UnknownOptionError(
            f"Unsupported cache backend {backend!r}: fastprobe's activation cache is a local directory (a path, or "
            "a file:// URI)"
        )
    if isinstance(backend, str) and backend.startswith("file://"):
        backend = backend.removeprefix("file://")
    with _LOCK:
        _settings["dir"] = None if backend is None else os.fspath(backend)
        _stores.clear()


def set_cache_dtype(dtype: str | None = None) -> None:
    """Set the storage dtype of stores created from now on; None goes back to ``FASTPROBE_CACHE_DTYPE`` / float16.

    Parameters
    ----------
    dtype : {"float32", "float16", "bfloat16"} or None
    """
    if dtype is not None and dtype not in STORAGE_DTYPES:
        raise UnknownOptionError(f"Unknown dtype {dtype!r} for the cache; expected one of: {', '.join(STORAGE_DTYPES)}")
    with _LOCK:
        _settings["dtype"] = dtype


def set_cache_tokens(mode: str | None = None) -> None:
    """Choose what probes cache; None goes back to ``FASTPROBE_CACHE_TOKENS`` / ``"auto"``.

    Parameters
    ----------
    mode : {"auto", "always"} or None
        ``"auto"``: keep every token only when the probe's pooling needs them (``max``, ``min``, a ``score:``
        pooling, ``"all"``), else store the pooled vectors alone (last token, mean, first token): 30% of the bytes
        on 10-token statements, less on longer prompts. A later probe that needs the tokens of prompts cached
        pooled-only runs them again, once.
        ``"always"``: keep every token, so that any pooling can be tried later without running the model.
    """
    if mode is not None and mode not in CACHE_TOKENS_MODES:
        raise UnknownOptionError(
            f"unknown cache tokens mode {mode!r}; expected one of: {', '.join(CACHE_TOKENS_MODES)}"
        )
    with _LOCK:
        _settings["tokens"] = mode


def set_cache_limit(gb: float | None = None) -> None:
    """Set the cache's byte budget in GiB (None: unlimited); :func:`evict` enforces it.

    Parameters
    ----------
    gb : float or None
    """
    if gb is not None and (not isinstance(gb, (int, float)) or gb < 0):
        raise InvalidInputError(f"the cache limit must be a non-negative number of gigabytes or None; got {gb!r}")
    with _LOCK:
        _settings["limit"] = gb


def _fingerprint_id(fingerprint: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(fingerprint, sort_keys=True).encode()).hexdigest()[:16]


def model_store(fingerprint: dict[str, Any]) -> ActivationStore:
    """Return (opening or creating) the cache's store for a model fingerprint.

    Parameters
    ----------
    fingerprint : dict
        Everything that changes activations (model id or path, revision or weights hash, dtype, tokenizer and
        special-token settings, hook site); its ``"model"`` entry names the model for listings.

    Returns
    -------
    ActivationStore
    """
    root = cache_dir()
    fid = _fingerprint_id(fingerprint)
    with _LOCK:
        key = (os.fspath(root), fid)
        if key not in _stores:
            _stores[key] = ActivationStore(root / fid, dtype=_cache_dtype(), fingerprint=fingerprint)
        return _stores[key]


#: Fingerprint sites of the stores that hold something other than activations (one row of values per prompt).
SIDECAR_SITES: tuple[str, ...] = ("perplexity", "logits")


def activation_dirs(model: str | None = None) -> list[tuple[Path, dict[str, Any]]]:
    """Return the stores of activations (not the perplexity or logits sidecars) of ``model`` (or of every model)."""
    return [(d, fp) for d, fp in model_dirs(model) if fp.get("site") not in SIDECAR_SITES]


def _sidecar_key(fp: dict[str, Any]) -> str:
    """Return what a sidecar store belongs to: its fingerprint without the sidecar's own entries, as a string."""
    rest = {k: v for k, v in fp.items() if k not in ("site", "positions", "top_k")}
    return json.dumps(rest, sort_keys=True)


def model_dirs(model: str | None = None) -> list[tuple[Path, dict[str, Any]]]:
    """Return the cache's stores (directory and fingerprint) of ``model`` (or of every model), sorted by directory.

    Parameters
    ----------
    model : str, optional
        Only stores whose fingerprint's ``"model"`` entry is this.

    Returns
    -------
    list of (pathlib.Path, dict)
    """
    root = cache_dir()
    if not root.is_dir():
        return []
    out = []
    for d in sorted(root.iterdir()):
        desc = d / "store.json"
        if not desc.is_file():
            continue
        try:
            fp = json.loads(desc.read_text()).get("fingerprint", {})
        except (OSError, ValueError):
            continue
        if model is None or fp.get("model") == model:
            out.append((d, fp))
    return out


def open_store(d: Path) -> ActivationStore:
    """Return the cache's open handle to the store in directory ``d`` (opening it on first use).

    Parameters
    ----------
    d : pathlib.Path
        A store's directory in the cache (one of :func:`model_dirs`).

    Returns
    -------
    ActivationStore
    """
    with _LOCK:
        key = (os.fspath(d.parent), d.name)
        if key not in _stores:
            _stores[key] = ActivationStore(d)
        return _stores[key]


@dataclass
class ModelCacheInfo:
    """Cache usage of one model fingerprint."""

    model_name: str | None
    model_hash: str
    size_bytes: int
    num_prompts: int
    num_layers: int
    has_pooled: bool
    has_perplexity: bool
    has_logits: bool = False

    @property
    def size_gb(self) -> float:
        """Size in GiB."""
        return self.size_bytes / 1024**3

    def __repr__(self) -> str:
        flags = [("pooled", self.has_pooled), ("logits", self.has_logits), ("perplexity", self.has_perplexity)]
        extra = "".join(f", {name}" for name, on in flags if on)
        name = self.model_name if self.model_name else f"(store {self.model_hash})"
        return f"  {name}  {self.size_gb:.2f} GB  ({self.num_prompts} prompts, {self.num_layers} layers{extra})"


@dataclass
class CacheInfo:
    """Cache usage report."""

    cache_dir: Path | str
    total_size_bytes: int
    models: list[ModelCacheInfo] = field(default_factory=list)
    oldest_mtime: float | None = None
    newest_mtime: float | None = None
    cache_limit_bytes: int | None = None

    @property
    def total_size_gb(self) -> float:
        """Total size in GiB."""
        return self.total_size_bytes / 1024**3

    def __repr__(self) -> str:
        import time

        lines = [f"Cache directory: {self.cache_dir}", f"Total size: {self.total_size_gb:.2f} GB"]
        if self.cache_limit_bytes:
            lines.append(f"Size limit: {self.cache_limit_bytes / 1024**3:.2f} GB")
        if self.models:
            lines.append("Models:")
            lines += [repr(m) for m in sorted(self.models, key=lambda m: -m.size_bytes)]
        for label, stamp in (("Oldest entry", self.oldest_mtime), ("Newest entry", self.newest_mtime)):
            if stamp:
                lines.append(f"{label}: {time.strftime('%Y-%m-%d', time.localtime(stamp))}")
        return "\n".join(lines)


def cache_info(model: str | None = None) -> CacheInfo:
    """Report the cache's size, per model fingerprint.

    Parameters
    ----------
    model : str, optional
        Only stores whose fingerprint names this model.

    Returns
    -------
    CacheInfo
    """
    models = []
    mtimes: list[float] = []
    every = model_dirs(model)
    sidecars: dict[str, set[str]] = {}
    for _, fp in every:
        if fp.get("site") in SIDECAR_SITES:
            sidecars.setdefault(_sidecar_key(fp), set()).add(str(fp["site"]))
    for d, fp in every:
        stats = open_store(d).stats()
        mtimes.extend(p.stat().st_mtime for p in d.rglob("*") if p.is_file())
        if fp.get("site") in SIDECAR_SITES:
            continue
        beside = sidecars.get(_sidecar_key(fp), set())
        models.append(
            ModelCacheInfo(
                model_name=fp.get("model"),
                model_hash=d.name,
                size_bytes=int(stats["disk_bytes"]),
                num_prompts=int(stats["prompts"]),
                num_layers=len(stats["sites"]),
                has_pooled=stats["records"] > 0,
                has_perplexity="perplexity" in beside,
                has_logits="logits" in beside,
            )
        )
    return CacheInfo(
        cache_dir=cache_dir(),
        total_size_bytes=sum(m.size_bytes for m in models),
        models=models,
        oldest_mtime=min(mtimes) if mtimes else None,
        newest_mtime=max(mtimes) if mtimes else None,
        cache_limit_bytes=_cache_limit_bytes(),
    )


def evict() -> None:
    """Trim the cache to its limit (:func:`set_cache_limit`), least recently used records first.

    Stores are visited from the least recently used; each is trimmed just enough for the whole cache to fit.
    """
    limit = _cache_limit_bytes()
    if limit is None:
        return
    dirs = model_dirs()

    def last_used(d: Path) -> float:
        files = [d / "access.bin", d / "index.fpi"]
        return max((f.stat().st_mtime for f in files if f.exists()), default=0.0)

    sizes = {d: open_store(d).stats()["disk_bytes"] for d, _ in dirs}
    for d, _ in sorted(dirs, key=lambda x: last_used(x[0])):
        total = sum(sizes.values())
        if total <= limit:
            break
        open_store(d).evict(max(0, limit - (total - sizes[d])))
        sizes[d] = open_store(d).stats()["disk_bytes"]


def clear_cache() -> int:
    """Delete every store in the cache; returns the number of (prompt, store) entries deleted.

    Returns
    -------
    int
    """
    count = 0
    with _LOCK:
        for d, _ in model_dirs():
            count += int(open_store(d).stats()["prompts"])
            shutil.rmtree(d, ignore_errors=True)
        _stores.clear()
    return count


#: The logger of cache hits, misses and writes (see :func:`enable_cache_logging`).
logger = logging.getLogger("fastprobe.cache")


def enable_cache_logging(level: int = logging.INFO) -> None:
    """Print the cache's hits and misses (which prompts are read back, which run through the model).

    Parameters
    ----------
    level : int, default=logging.INFO
        ``logging.INFO`` for one line per call; ``logging.DEBUG`` adds the store of each call.
    """
    logger.setLevel(level)
    if not any(getattr(h, "_fastprobe_cache", False) for h in logger.handlers):
        stream = logging.StreamHandler()
        stream.setFormatter(logging.Formatter("[cache] %(message)s"))
        stream._fastprobe_cache = True  # type: ignore[attr-defined]
        logger.addHandler(stream)
    for handler in logger.handlers:
        handler.setLevel(level)


def invalidate_extraction_cache(cache_dir: str | os.PathLike[str]) -> None:
    """Delete one store of the cache (a directory :func:`model_store` made, as named by :func:`cache_info`).

    Nothing happens when it does not exist. Open handles to it are dropped, so the next read or write starts a new
    store there.

    Parameters
    ----------
    cache_dir : str or path-like
        The store's directory (``cache_dir() / model_hash``).
    """
    path = Path(cache_dir)
    with _LOCK:
        for key in [k for k in _stores if Path(k[0]) / k[1] == path]:
            del _stores[key]
        if path.is_dir():
            shutil.rmtree(path)

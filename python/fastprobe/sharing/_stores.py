"""Which of fastprobe's activation stores a push reads from and a pull writes into."""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable
from typing import Any

from fastprobe.store import ActivationStore

#: Provenance key under which a fastprobe push records the fingerprint of the store it read.
FINGERPRINT_KEY = "fastprobe_fingerprint"
#: Residual-stream site ids are the layer numbers; other sites (embeddings, attention, heads) have ids >= 2**24.
_RESIDUAL_LIMIT = 1 << 24


def _light(model: str, revision: str | None = None) -> Any:
    """Return the context of a :class:`~fastprobe.Probe` on ``model`` (float32, defaults), found without weights.

    None when the model's files are not on this machine (or it cannot be described without loading it).
    """
    from fastprobe.features import weightless_context

    try:
        return weightless_context(model, "cpu", "local", revision)
    except Exception:  # an unusual model: no store to name
        return None


def source_store(model_name: str, prompts: list[str]) -> tuple[ActivationStore | None, dict[str, tuple[set[int], int]]]:
    """Find the store holding ``model_name``'s activations of the most of ``prompts``.

    The candidates are the store a probe on the model would use (when the model's files are here) and every store
    of the cache whose fingerprint names the model (another dtype or revision, or a model no longer on this machine).

    Returns
    -------
    store : ActivationStore or None
        None when no store holds any of the prompts.
    cached : dict
        For each prompt of ``prompts`` in that store: its residual layers and token count.
    """
    from fastprobe.store import model_dirs, open_store

    candidates: list[ActivationStore] = []
    light = _light(model_name)
    if light is not None:
        candidates.append(light.store)
    for d, _fp in model_dirs(model_name):
        store = open_store(d)
        if all(os.fspath(store.path) != os.fspath(c.path) for c in candidates):
            candidates.append(store)
    wanted = set(prompts)
    best: tuple[ActivationStore | None, dict[str, tuple[set[int], int]]] = (None, {})
    for store in candidates:
        found: dict[str, tuple[set[int], int]] = {}
        for prompt, sites, count in store.prompts():
            if prompt in wanted:
                layers = {s for s in sites if s < _RESIDUAL_LIMIT}
                if layers:
                    found[prompt] = (layers, count)
        if len(found) > len(best[1]):
            best = (store, found)
    return best


TokenCounter = Callable[[list[str]], list[int]]


def target_store(info: dict[str, Any]) -> tuple[ActivationStore | None, str, TokenCounter | None]:
    """Return the store a pull writes into, why not when there is none, and the model's token counter if here.

    A dataset pushed by fastprobe records the fingerprint of the store its activations came from: they go back into
    the store of that fingerprint (a probe on the same model finds them there, with or without the model's files
    here). Otherwise (a dataset pushed by lmprobe) the store is the one a probe on the dataset's model at its
    revision uses, which needs the model's files on this machine.
    """
    from fastprobe.store import model_store

    fingerprint = (info.get("provenance") or {}).get(FINGERPRINT_KEY)
    if isinstance(fingerprint, dict) and fingerprint.get("model"):
        return model_store(fingerprint), "", None
    model = info.get("model") or {}
    name = str(model.get("name") or "")
    revision = model.get("revision")
    if not name:
        return None, "the dataset names no model", None
    ctx = _light(name, None if os.path.isdir(name) or not revision else str(revision))
    if ctx is None:
        at = f" at revision {revision}" if revision and not os.path.isdir(name) else ""
        return (
            None,
            (
                f"the model {name!r}{at} is not on this machine, so the store a probe on it would read cannot be named "
                "(download the model, e.g. by loading it once, then pull again)"
            ),
            None,
        )

    def count(prompts: list[str]) -> list[int]:
        from fastprobe.model.tokens import tokenize

        return [len(r["input_ids"]) for r in tokenize(ctx.loaded, prompts)]

    return ctx.store, "", count


def warn_no_store(reason: str) -> None:
    """Say that pulled activations were not written into fastprobe's cache."""
    warnings.warn(
        f"the activations were downloaded into the Hugging Face cache but not written into fastprobe's activation "
        f"cache: {reason}",
        UserWarning,
        stacklevel=3,
    )

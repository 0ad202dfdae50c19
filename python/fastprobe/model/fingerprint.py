"""A model's fingerprint (the key of its activation store) and identity (what a saved probe must match)."""

from __future__ import annotations

from typing import Any

from fastprobe.model.loading import LoadedModel
from fastprobe.model.registry import register_model_cache
from fastprobe.model.source import weights_digest

__all__ = ["adopt_fingerprint", "fingerprint_of", "model_fingerprint", "model_identity"]


def model_fingerprint(loaded: LoadedModel, site: str = "residual") -> dict[str, Any]:
    """Describe everything that changes a model's activations, as the key of its activation store.

    Parameters
    ----------
    loaded : LoadedModel
        From :func:`~fastprobe.model.load_model`.
    site : str, default="residual"
        The hook site scheme (``"residual"``: site ``i`` is the output of block ``i``).

    Returns
    -------
    dict
        ``model`` (id or path), ``revision`` (the Hub commit the model resolved to, when it is a Hub model),
        ``weights`` (a digest of the weight files: the local directory's, or the Hub snapshot's), ``dtype``,
        ``tokenizer`` (class, padding side, special tokens, vocabulary size) and ``site``; and ``quantization``
        for a model loaded quantized. Two revisions of a Hub model never share a fingerprint.
    """
    tok = loaded.tokenizer
    config = loaded.model.config
    source = loaded.source
    return {
        "model": loaded.name,
        "revision": source.commit if source is not None and source.hub else getattr(config, "_commit_hash", None),
        "weights": weights_digest(source.path) if source is not None else None,
        "dtype": str(next(loaded.model.parameters()).dtype).removeprefix("torch."),
        "architecture": type(loaded.model).__name__,
        "tokenizer": {
            "class": type(tok).__name__,
            "padding_side": tok.padding_side,
            "vocab_size": len(tok),
            "special_tokens": {k: str(v) for k, v in sorted(tok.special_tokens_map.items())},
            "add_bos": bool(getattr(tok, "add_bos_token", False)),
        },
        "site": site,
    } | ({"quantization": loaded.quantization} if loaded.quantization else {})


# id(loaded) -> (loaded, its fingerprint); the model is kept so that a reused id never returns a stale fingerprint.
_FINGERPRINTS: dict[int, tuple[LoadedModel, dict[str, Any]]] = register_model_cache({})


def fingerprint_of(loaded: LoadedModel) -> dict[str, Any]:
    """Return :func:`model_fingerprint` of a loaded model, computed once per model object in this process.

    The weight digest reads the weight files, so the fingerprint is memoized per :class:`LoadedModel` (cleared by
    :func:`~fastprobe.model.clear_model_cache`).

    Parameters
    ----------
    loaded : LoadedModel

    Returns
    -------
    dict
        The same dict on every call for the same model (do not modify it).
    """
    memo = _FINGERPRINTS.get(id(loaded))
    if memo is None or memo[0] is not loaded:
        memo = (loaded, model_fingerprint(loaded))
        _FINGERPRINTS[id(loaded)] = memo
    return memo[1]


def adopt_fingerprint(loaded: LoadedModel, fingerprint: dict[str, Any]) -> None:
    """Make ``fingerprint`` what :func:`fingerprint_of` returns for ``loaded`` (a model described, not loaded).

    Parameters
    ----------
    loaded : LoadedModel
    fingerprint : dict
        Its fingerprint, as recorded when the model was loaded (:func:`~fastprobe.model.describe_model`).
    """
    _FINGERPRINTS[id(loaded)] = (loaded, fingerprint)


def model_identity(fp: dict[str, Any]) -> tuple[Any, ...]:
    """Return what must match for a probe to apply to a model: architecture, weights (or name), vocabulary size.

    Parameters
    ----------
    fp : dict
        A fingerprint (:func:`model_fingerprint`).

    Returns
    -------
    tuple
        ``(architecture, weights digest or model name, vocabulary size)``.
    """
    weights = fp.get("weights") or fp.get("model")
    return fp.get("architecture"), weights, fp.get("tokenizer", {}).get("vocab_size")

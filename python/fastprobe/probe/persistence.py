"""Saving and loading probes: fastprobe's safetensors file, and lmprobe's pickles."""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from fastprobe import serialization
from fastprobe.exceptions import FastprobeError, InvalidInputError
from fastprobe.layers import is_sweep
from fastprobe.probe.config import FITTED
from fastprobe.probe.pipeline import check_fitted

__all__ = ["LMPROBE_PARAMS", "from_lmprobe", "load_probe", "probe_from_state", "probe_state", "save_probe"]

#: The constructor parameters lmprobe's pickles hold.
LMPROBE_PARAMS: tuple[str, ...] = tuple(
    (
        "model layers pooling train_pooling inference_pooling classifier task device remote random_state "
        "batch_size auto_candidates auto_alpha normalize_layers fast_auto_top_k backend dtype "
        "mass_mean_augment preprocessing pca_components"
    ).split()
)


def probe_state(probe: Any) -> dict[str, Any]:
    """Return what a file keeps of a fitted probe: its parameters and its fitted attributes (ensembles' too)."""
    fitted = {name: getattr(probe, name, None) for name in FITTED}
    fitted["evaluation_results_"] = getattr(probe, "evaluation_results_", None)
    return {"params": probe.get_params(deep=False), "fitted": fitted}


def probe_from_state(cls: Any, state: dict[str, Any], model: Any, revision: str | None) -> Any:
    """Rebuild a probe of class ``cls`` from :func:`probe_state`'s record, on ``model`` when it is given."""
    params = dict(state["params"])
    if model is not None:
        params["model"] = model
        params["revision"] = revision
    probe = cls(**params)
    for name, value in state["fitted"].items():
        setattr(probe, name, value)
    probe.sweep_result_ = None
    return probe


def save_probe(probe: Any, path: str | os.PathLike[str]) -> None:
    """Write a fitted probe to one file (see :meth:`Probe.save`)."""
    check_fitted(probe)
    doc, arrays, _ = serialization.encode({"version": 1, **probe_state(probe)})
    serialization.write(path, doc, arrays)


def load_probe(cls: Any, path: str | os.PathLike[str], *, trust_pickle: bool, model: Any, revision: str | None) -> Any:
    """Read a probe of class ``cls`` written by :func:`save_probe` or by lmprobe (see :meth:`Probe.load`)."""
    kind, doc, arrays = serialization.read(path)
    if kind == "pickle":
        if not trust_pickle:
            raise serialization.PickleRefused(
                f"{str(path)!r} is a pickle (lmprobe's save format), and unpickling can run arbitrary code; pass "
                "trust_pickle=True to load it if you trust the file's source"
            )
        return from_lmprobe(cls, path, model, revision)
    tree = serialization.decode(doc, arrays, trust_pickle=trust_pickle)
    if not isinstance(tree, dict) or "params" not in tree:
        kind_name = tree.get("kind") if isinstance(tree, dict) else None
        hint = "; load it with ProbeEnsemble.load" if kind_name == "ProbeEnsemble" else ""
        raise FastprobeError(f"{str(path)!r} holds a {kind_name or 'different object'}, not a single probe{hint}")
    if model is None and revision is not None:
        raise InvalidInputError("revision= goes with model=: pass the model it belongs to")
    return probe_from_state(cls, tree, model, revision)


def from_lmprobe(cls: Any, path: str | os.PathLike[str], model: Any, revision: str | None = None) -> Any:
    """Rebuild a probe of class ``cls`` from lmprobe's pickle (the caller has decided to trust it)."""
    import pickle

    with open(path, "rb") as f:
        state = pickle.load(f)
    params = {k: state[k] for k in LMPROBE_PARAMS if k in state}
    if model is not None:
        params["model"] = model
        params["revision"] = revision
    layers = params.get("layers")
    selected = state.get("selected_layers_")
    if layers in ("auto", "fast_auto") or (isinstance(layers, str) and is_sweep(layers)):
        params["layers"] = sorted(selected) if selected else "middle"
    probe = cls(**params)
    probe.classifier_ = state["classifier_"]
    probe.classes_ = state.get("classes_")
    probe.scaler_ = state.get("scaler_")
    probe.preprocessing_pipeline_ = state.get("preprocessing_pipeline_")
    direction = state.get("_mass_mean_direction_")
    probe.mass_mean_direction_ = None if direction is None else np.asarray(direction, dtype=np.float64)
    probe.layers_ = sorted(selected) if selected else []
    probe.n_features_in_ = getattr(probe.scaler_, "n_features_in_", None)
    probe.model_fingerprint_ = None
    probe.sweep_result_ = None
    probe.selected_layers_ = list(selected) if selected else None
    candidates = state.get("candidate_layers_")
    probe.candidate_layers_ = list(candidates) if candidates is not None else None
    importances = state.get("layer_importances_")
    probe.layer_importances_ = None if importances is None else np.asarray(importances, dtype=np.float64)
    return probe

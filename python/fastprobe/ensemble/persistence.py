"""Saving and loading ensembles: fastprobe's safetensors file, and lmprobe's ensemble pickles."""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from fastprobe import serialization
from fastprobe.exceptions import FastprobeError, InvalidInputError
from fastprobe.probe import Probe
from fastprobe.probe.persistence import probe_from_state, probe_state

__all__ = ["KIND", "from_lmprobe", "load_ensemble", "save_ensemble"]

#: The ``kind`` an ensemble's file records.
KIND = "ProbeEnsemble"


def save_ensemble(ensemble: Any, path: str | os.PathLike[str]) -> None:
    """Write a fitted ensemble to one file (see :meth:`ProbeEnsemble.save`)."""
    members = [probe_state(probe) for probe in ensemble.probes_]
    seed = ensemble.random_state
    tree = {
        "kind": KIND,
        "version": 1,
        "voting": ensemble.voting,
        "weights": ensemble.weights_,
        "bootstrap": ensemble.is_bootstrap,
        "random_state": int(seed) if isinstance(seed, (int, np.integer)) else None,
        "resample_indices": ensemble.resample_indices_,
        "evaluation_results": getattr(ensemble, "evaluation_results_", None),
        "members": members,
    }
    doc, arrays, _ = serialization.encode(tree)
    serialization.write(path, doc, arrays)


def load_ensemble(cls: Any, path: str | os.PathLike[str], trust_pickle: bool, model: Any, revision: str | None) -> Any:
    """Read an ensemble of class ``cls`` (see :meth:`ProbeEnsemble.load`)."""
    kind, doc, arrays = serialization.read(path)
    if kind == "pickle":
        if not trust_pickle:
            raise serialization.PickleRefused(
                f"{os.fspath(path)!r} is a pickle (lmprobe's save format), and unpickling can run arbitrary "
                "code; pass trust_pickle=True to load it if you trust the file's source"
            )
        return from_lmprobe(cls, path, model, revision)
    if revision is not None and model is None:
        raise InvalidInputError("revision= goes with model=: pass the model it belongs to")
    tree = serialization.decode(doc, arrays, trust_pickle=trust_pickle)
    if not isinstance(tree, dict) or tree.get("kind") != KIND:
        raise FastprobeError(f"{os.fspath(path)!r} holds a single probe, not a ProbeEnsemble; load it with Probe.load")
    probes = [probe_from_state(Probe, entry, model, revision) for entry in tree["members"]]
    ensemble = cls(probes, voting=tree["voting"])
    ensemble.weights_ = np.asarray(tree["weights"], dtype=np.float64)
    ensemble.is_bootstrap = bool(tree["bootstrap"])
    ensemble.random_state = tree["random_state"]
    ensemble.resample_indices_ = tree["resample_indices"]
    if tree.get("evaluation_results") is not None:
        ensemble.evaluation_results_ = tree["evaluation_results"]
    return ensemble


def from_lmprobe(cls: Any, path: str | os.PathLike[str], model: Any, revision: str | None = None) -> Any:
    """Convert lmprobe's ensemble pickle: each member through :meth:`Probe.load <fastprobe.Probe.load>`."""
    import pickle
    import tempfile

    with open(path, "rb") as f:
        state = pickle.load(f)
    if not isinstance(state, dict) or "probes_" not in state:
        raise FastprobeError(f"{os.fspath(path)!r} is a pickle but not an lmprobe ProbeEnsemble")
    probes = []
    with tempfile.TemporaryDirectory() as tmp:
        for i, member in enumerate(state["probes_"]):
            member_path = os.path.join(tmp, f"probe{i}.pkl")
            member.save(member_path)
            probes.append(Probe.load(member_path, trust_pickle=True, model=model, revision=revision))
    ensemble = cls(probes, voting=state.get("voting", "soft"))
    ensemble.weights_ = np.asarray(state["weights_"], dtype=np.float64)
    ensemble.is_bootstrap = bool(state.get("_bootstrap_mode", False))
    ensemble.random_state = state.get("_bootstrap_seed")
    return ensemble

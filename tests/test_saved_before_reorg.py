"""Probes and an ensemble saved by fastprobe before its package was reorganised load and predict as they did.

``data/saved_before_v0_reorg`` holds the files and the predictions recorded when they were saved
(``make.py`` and ``make_pickles.py`` there wrote them, with the code of commit fcfde52).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from fastprobe import Probe, ProbeEnsemble

DATA = Path(__file__).parent / "data" / "saved_before_v0_reorg"
EXPECTED = json.loads((DATA / "expected.json").read_text())
X_TEST = np.load(DATA / "X_test.npy")


@pytest.mark.parametrize("name", sorted(k for k in EXPECTED if k != "ensemble"))
def test_a_probe_saved_before_the_reorganisation_predicts_as_it_did(name: str) -> None:
    probe = Probe.load(DATA / f"{name}.safetensors")
    want = EXPECTED[name]
    np.testing.assert_allclose(probe.predict_from_activations(X_TEST), want["predict"], rtol=1e-6)
    if "proba" in want:
        np.testing.assert_allclose(probe.predict_proba_from_activations(X_TEST), want["proba"], rtol=1e-6, atol=1e-9)


def test_an_ensemble_saved_before_the_reorganisation_loads_its_members() -> None:
    ensemble = ProbeEnsemble.load(DATA / "ensemble.safetensors")
    np.testing.assert_array_equal(ensemble.weights_, [2 / 3, 1 / 3])
    for member, want in zip(ensemble.probes_, EXPECTED["ensemble"]["members_proba"], strict=True):
        np.testing.assert_allclose(member.predict_proba_from_activations(X_TEST), want, rtol=1e-6, atol=1e-9)


def test_objects_pickled_before_the_reorganisation_keep_their_state() -> None:
    """A pickled probe keeps its layer blocks (renamed n_blocks_), a pickled ensemble its bootstrap flag."""
    import pickle

    probe = pickle.loads((DATA / "probe_4_blocks.pkl").read_bytes())  # written by make_pickles.py there
    np.testing.assert_array_equal(probe.compute_layer_importance(), np.load(DATA / "importance_4_blocks.npy"))
    ensemble = pickle.loads((DATA / "bootstrap_ensemble.pkl").read_bytes())
    assert (
        ensemble.is_bootstrap and repr(ensemble) == "ProbeEnsemble(2 probes, bootstrap, random_state=3, voting='soft')"
    )

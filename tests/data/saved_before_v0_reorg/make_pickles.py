"""Pickle a probe (fit on 4 layer blocks) and a bootstrap-flagged ensemble with fastprobe before the reorganisation."""

import pathlib
import pickle
import sys

import numpy as np

from fastprobe import Probe, ProbeEnsemble

out = pathlib.Path(sys.argv[1])
rng = np.random.default_rng(1)
X = rng.normal(size=(60, 16)).astype(np.float32)
y = (X[:, 0] > 0).astype(int)
probe = Probe(random_state=0).fit_from_activations(X, y, n_layers=4)
(out / "probe_4_blocks.pkl").write_bytes(pickle.dumps(probe))
ensemble = ProbeEnsemble.bootstrap(Probe(random_state=0), n_resamples=2, random_state=3)
for member in ensemble.probes_:
    member.fit_from_activations(X, y)
(out / "bootstrap_ensemble.pkl").write_bytes(pickle.dumps(ensemble))
np.save(out / "importance_4_blocks.npy", probe.compute_layer_importance())
print("ok", repr(ensemble))

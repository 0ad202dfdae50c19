"""Write probes and an ensemble saved by fastprobe before its package was reorganised (run with that commit's code)."""

import json
import pathlib
import sys

import numpy as np

from fastprobe import Probe, ProbeEnsemble

out = pathlib.Path(sys.argv[1])
rng = np.random.default_rng(0)
X = rng.normal(size=(80, 12)).astype(np.float32)
y = (X[:, 0] + 0.5 * X[:, 5] > 0).astype(int)
y3 = np.digitize(X[:, 1], [-0.5, 0.5])
Xt = rng.normal(size=(10, 12)).astype(np.float32)
cases = {
    "logistic": dict(classifier="logistic_regression"),
    "ridge": dict(classifier="ridge"),
    "mass_mean": dict(classifier="mass_mean"),
    "lda": dict(classifier="lda"),
    "svm": dict(classifier="svm"),
    "pca_mass_mean_augment": dict(
        classifier="logistic_regression",
        preprocessing="standard+pca",
        pca_components=4,
        mass_mean_augment=True,
        normalize_layers=False,
    ),
    "per_layer": dict(classifier="logistic_regression", normalize_layers="per_layer"),
    "sgd": dict(classifier="sgd"),
    "regression": dict(classifier="ridge_regression", task="regression"),
    "multiclass": dict(classifier="logistic_regression"),
}
expected = {}
for name, kw in cases.items():
    p = Probe(random_state=0, **kw)
    target = X[:, 2].astype(np.float64) if name == "regression" else (y3 if name == "multiclass" else y)
    p.fit_from_activations(X, target, n_layers=1 if name not in ("per_layer", "pca_mass_mean_augment") else 3)
    p.save(out / f"{name}.safetensors")
    rec = {"predict": p.predict_from_activations(Xt).tolist()}
    if hasattr(p.classifier_, "predict_proba") and p.task == "classification":
        rec["proba"] = p.predict_proba_from_activations(Xt).tolist()
    expected[name] = rec
ens = ProbeEnsemble(
    [Probe(random_state=0, classifier="logistic_regression"), Probe(random_state=0, classifier="lda")],
    weights=[2.0, 1.0],
)
for m in ens.probes_:
    m.fit_from_activations(X, y)
ens.save(out / "ensemble.safetensors")
expected["ensemble"] = {"members_proba": [m.predict_proba_from_activations(Xt).tolist() for m in ens.probes_]}
np.save(out / "X_test.npy", Xt)
(out / "expected.json").write_text(json.dumps(expected))
print("wrote", sorted(expected))

"""Ablated activations in the cache: stored under the changed model's own fingerprint, never mixed with clean ones."""

from __future__ import annotations

import numpy as np
import pytest

from fastprobe import InvalidInputError, Probe, features
from fastprobe.extraction import (
    EdgeAblation,
    HeadAblation,
    Intervention,
    extract_pooled,
    extract_to_store,
    intervened_fingerprint,
    load_model,
)
from fastprobe.model import fingerprint_of
from fastprobe.store import ActivationStore
from fastprobe.testing import tiny_model

PROMPTS = [f"The {w} is {a} today." for w in ("cat", "dog", "sky", "sea", "car", "sun") for a in ("red", "blue")]
LABELS = [i % 2 for i in range(len(PROMPTS))]


def test_an_ablated_probe_reads_its_own_store_with_the_ablated_activations(exact_cache: object) -> None:
    path = str(tiny_model("llama"))
    ablation = HeadAblation("0.1")
    clean = Probe(model=path, layers=[1], device="cpu", random_state=0).fit(PROMPTS, LABELS)
    ablated = Probe(model=path, layers=[1], device="cpu", random_state=0, interventions=[ablation])
    ablated.fit(PROMPTS, LABELS)
    fp_clean, fp_ablated = clean.model_fingerprint_, ablated.model_fingerprint_
    assert fp_clean is not None and fp_ablated is not None
    assert "interventions" not in fp_clean
    assert fp_ablated["interventions"] == [ablation.identity()]
    loaded = load_model(path, device="cpu")
    want = extract_pooled(loaded, PROMPTS, 1, progress=False, interventions=[ablation])["last_token"]
    ctx = features.model_context(path, "cpu", None, "local", False, None, [ablation])
    assert ctx.store.path != features.model_context(path, "cpu", None, "local", False).store.path
    got = features.read_features(ctx, PROMPTS, [1], "last_token").X  # read back from the ablated store
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
    plain = features.read_features(
        features.model_context(path, "cpu", None, "local", False), PROMPTS, [1], "last_token"
    )
    assert not np.allclose(plain.X, want, atol=1e-4)


def test_extract_to_store_refuses_a_store_of_another_model(tmp_path: object) -> None:
    loaded = load_model(tiny_model("llama"), device="cpu")
    clean_fp = fingerprint_of(loaded)
    ablation = HeadAblation("1.0")
    clean_store = ActivationStore(tmp_path / "clean", dtype="float32", fingerprint=clean_fp)  # type: ignore[operator]
    with pytest.raises(InvalidInputError, match="does not record these interventions"):
        extract_to_store(loaded, PROMPTS, [1], clean_store, progress=False, interventions=[ablation])
    assert clean_store.contains(PROMPTS, [1]).sum() == 0  # nothing written
    store = ActivationStore(
        tmp_path / "ablated",  # type: ignore[operator]
        dtype="float32",
        fingerprint=intervened_fingerprint(clean_fp, [ablation]),
    )
    with pytest.raises(InvalidInputError, match="holds activations of an ablated model"):
        extract_to_store(loaded, PROMPTS, [1], store, progress=False)
    assert extract_to_store(loaded, PROMPTS, [1], store, progress=False, interventions=[ablation]) == len(PROMPTS)


def test_interventions_without_an_identity_cannot_key_a_cache() -> None:
    with pytest.raises(InvalidInputError, match="Intervention has no identity to store its activations under"):
        Probe(model="x/y", interventions=[Intervention(1, lambda t: t)])
    with pytest.raises(InvalidInputError, match="positions aligned to one call's prompts cannot key a cache"):
        Probe(model="x/y", interventions=[HeadAblation("1.0", positions=[1, 2])])
    with pytest.raises(InvalidInputError, match="interventions must be a list of ablations"):
        Probe(model="x/y", interventions=HeadAblation("1.0"))


def test_identities_tell_ablations_apart() -> None:
    a = HeadAblation("1.0").identity()
    assert a == HeadAblation((1, 0)).identity() == HeadAblation("head.1.0").identity()
    assert a != HeadAblation("1.1").identity()
    assert a != HeadAblation("1.0", mode="mean", reference=["x"]).identity()
    assert HeadAblation("1.0", positions={"a": 1}).identity() != HeadAblation("1.0", positions={"a": 2}).identity()
    assert EdgeAblation([(3, 1)]).identity() != EdgeAblation([(3, 1)], layers=[0]).identity()

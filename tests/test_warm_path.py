"""The warm path: a cache that holds every activation a call needs is read without loading, or importing, a model.

References: the fingerprint of the model loaded in full (``model_fingerprint(load_model(...))``), predictions of the
same probe fitted in this process, and the modules a fresh Python process has imported.
"""

from __future__ import annotations

import json
import os
import pathlib
import pickle
import subprocess
import sys
import textwrap
from collections.abc import Iterator

import numpy as np
import pytest
from sklearn.base import clone

from fastprobe import InvalidInputError, Probe, ProbeEnsemble, clear_model_cache
from fastprobe.extraction import DEFAULT_BATCH_SIZE, load_model, model_fingerprint
from fastprobe.extraction.batching import is_auto
from fastprobe.features import described_context, descriptions_dir
from fastprobe.model import describe_model, file_versions, weights_digest
from fastprobe.store import set_cache_backend
from fastprobe.testing import build_tiny_model, offline_hub, place_in_hub_cache

POS = [f"{s} {v} Paris" for s in ("I", "We", "They", "You") for v in ("saw", "like", "love", "know")]
NEG = [f"{s} {v} Tokyo" for s in ("I", "We", "They", "You") for v in ("saw", "like", "love", "know")]
TEST = ["People saw Paris", "People saw Tokyo", "Tourists like Paris", "Tourists like Tokyo"]


@pytest.fixture
def cache(tmp_path: pathlib.Path) -> Iterator[pathlib.Path]:
    """An activation cache of this test's own."""
    root = tmp_path / "cache"
    set_cache_backend(root)
    yield root
    set_cache_backend(None)


@pytest.fixture
def model_dir(tmp_path: pathlib.Path) -> pathlib.Path:
    return build_tiny_model("llama", tmp_path / "tiny", seed=3)


def run_fresh(code: str, cache: pathlib.Path, env: dict[str, str] | None = None) -> dict[str, object]:
    """Run ``code`` in a fresh interpreter with ``cache`` as the activation cache; it prints one JSON line last."""
    full_env = {**os.environ, "FASTPROBE_CACHE_DIR": str(cache), **(env or {})}
    proc = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, env=full_env, timeout=300
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return dict(json.loads(proc.stdout.strip().splitlines()[-1]))


def test_a_loaded_model_leaves_a_description_equal_to_its_fingerprint(cache: pathlib.Path, model_dir: pathlib.Path):
    Probe(model=str(model_dir), layers=1, device="cpu", random_state=0).fit(POS, NEG)
    found = describe_model(str(model_dir), None, "cpu", "float32", "local", descriptions_dir())
    assert found is not None
    described, fingerprint = found
    loaded = load_model(str(model_dir), device="cpu")
    assert fingerprint == model_fingerprint(loaded)
    assert (described.n_layers, described.hidden_size) == (loaded.n_layers, loaded.hidden_size)
    assert described.model is None and described.tokenizer is None
    assert described.source is not None and described.source.path == str(model_dir)
    # another dtype or backend has no record yet
    assert describe_model(str(model_dir), None, "cpu", "bfloat16", "local", descriptions_dir()) is None
    assert describe_model(str(model_dir), None, "cpu", "float32", "nnsight", descriptions_dir()) is None


def test_a_warm_fit_in_a_new_process_imports_neither_torch_nor_transformers(
    cache: pathlib.Path, model_dir: pathlib.Path
) -> None:
    here = Probe(model=str(model_dir), layers=[1, 2], device="cpu", random_state=0).fit(POS, NEG)
    here.warmup(TEST)
    expected = here.predict_proba(TEST)
    out = run_fresh(
        f"""
        import json, sys
        from fastprobe import Probe
        probe = Probe(model={str(model_dir)!r}, layers=[1, 2], device="cpu", random_state=0)
        probe.fit({POS!r}, {NEG!r})
        proba = probe.predict_proba({TEST!r})
        print(json.dumps({{"proba": proba.tolist(), "torch": "torch" in sys.modules,
                          "transformers": "transformers" in sys.modules,
                          "fingerprint": probe.model_fingerprint_}}))
        """,
        cache,
    )
    assert out["torch"] is False and out["transformers"] is False
    np.testing.assert_allclose(np.asarray(out["proba"]), expected, rtol=0, atol=1e-6)
    assert out["fingerprint"] == here.model_fingerprint_


def test_a_sweep_and_an_ensemble_on_a_warm_cache_load_no_weights(cache: pathlib.Path, model_dir: pathlib.Path):
    Probe.sweep_layers(str(model_dir), POS, NEG, layers="all", device="cpu", random_state=0).score(TEST, [1, 0, 1, 0])
    ens = ProbeEnsemble([Probe(model=str(model_dir), layers=k, device="cpu", random_state=0) for k in (1, 3)])
    ens.fit(POS + NEG, [1] * len(POS) + [0] * len(NEG))
    expected = ens.predict(TEST)
    out = run_fresh(
        f"""
        import json, sys
        from fastprobe import Probe, ProbeEnsemble
        sweep = Probe.sweep_layers({str(model_dir)!r}, {POS!r}, {NEG!r}, layers="all", device="cpu", random_state=0)
        scores = sweep.score({TEST!r}, [1, 0, 1, 0])
        ens = ProbeEnsemble([Probe(model={str(model_dir)!r}, layers=k, device="cpu", random_state=0) for k in (1, 3)])
        ens.fit({POS + NEG!r}, [1] * {len(POS)} + [0] * {len(NEG)})
        print(json.dumps({{"labels": ens.predict({TEST!r}).tolist(), "layers": sorted(scores),
                          "torch": "torch" in sys.modules}}))
        """,
        cache,
    )
    assert out["torch"] is False
    assert out["labels"] == expected.tolist()
    assert out["layers"] == [0, 1, 2, 3]


def test_missing_activations_load_the_model_as_before(cache: pathlib.Path, model_dir: pathlib.Path) -> None:
    Probe(model=str(model_dir), layers=1, device="cpu", random_state=0).fit(POS, NEG)
    out = run_fresh(
        f"""
        import json, sys
        from fastprobe import Probe
        probe = Probe(model={str(model_dir)!r}, layers=2, device="cpu", random_state=0).fit({POS!r}, {NEG!r})
        print(json.dumps({{"torch": "torch" in sys.modules, "layers": probe.layers_}}))
        """,
        cache,
    )
    assert out["torch"] is True and out["layers"] == [2]


def test_a_changed_file_or_library_makes_the_description_stale(cache: pathlib.Path, model_dir: pathlib.Path) -> None:
    Probe(model=str(model_dir), layers=1, device="cpu", random_state=0).fit(POS, NEG)
    assert described_context(str(model_dir), "cpu", "local") is not None
    config = model_dir / "config.json"
    st = config.stat()
    os.utime(config, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))
    assert described_context(str(model_dir), "cpu", "local") is None
    # a process that loads the model again writes a fresh record, valid for the file as it is now
    clear_model_cache()
    Probe(model=str(model_dir), layers=1, device="cpu", random_state=0).fit(POS, NEG)
    ctx = described_context(str(model_dir), "cpu", "local")
    assert ctx is not None
    record = next(descriptions_dir().glob("*.json"))
    data = json.loads(record.read_text())
    assert data["files"] == file_versions(model_dir)
    data["libraries"]["transformers"] = "0.0.1"
    record.write_text(json.dumps(data))
    assert described_context(str(model_dir), "cpu", "local") is None
    record.write_text("{not json")
    assert described_context(str(model_dir), "cpu", "local") is None


def test_a_hub_id_is_described_offline_while_its_reference_names_the_same_commit(
    cache: pathlib.Path, tmp_path: pathlib.Path, model_dir: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    hub = tmp_path / "hf-hub"
    snapshot = place_in_hub_cache(model_dir, "acme/warm", hub)
    with offline_hub(hub):
        probe = Probe(model="acme/warm", layers=1, device="cpu", random_state=0).fit(POS, NEG)
        ctx = described_context("acme/warm", "cpu", "local")
        assert ctx is not None and ctx.fingerprint == probe.model_fingerprint_
        assert ctx.fingerprint["revision"] == snapshot.name
        assert described_context("acme/warm", "cpu", "local", revision=snapshot.name) is None  # no record yet
        refs = hub / "models--acme--warm" / "refs" / "main"
        refs.write_text("0" * 40)  # the branch now names another commit
        assert described_context("acme/warm", "cpu", "local") is None
        refs.write_text(snapshot.name)
        monkeypatch.setenv("HF_HUB_OFFLINE", "0")  # online, a branch may have moved: resolved the usual way
        assert described_context("acme/warm", "cpu", "local") is None


def test_lmprobes_default_batch_size_is_told_apart_from_an_explicit_one() -> None:
    default = Probe(model="m")
    assert default.batch_size == 8 and repr(default.batch_size) == "8" and is_auto(default.batch_size)
    assert default.get_params()["batch_size"] is DEFAULT_BATCH_SIZE
    assert clone(default).batch_size is DEFAULT_BATCH_SIZE
    assert pickle.loads(pickle.dumps(default)).batch_size is DEFAULT_BATCH_SIZE
    assert json.loads(json.dumps({"b": DEFAULT_BATCH_SIZE})) == {"b": 8}
    explicit = Probe(model="m", batch_size=8)
    assert explicit.batch_size == 8 and not is_auto(explicit.batch_size)
    assert is_auto(Probe(model="m", batch_size=None).batch_size)
    with pytest.raises(InvalidInputError, match=r"batch_size must be an integer >= 1 or None .*got 0"):
        Probe(model="m", batch_size=0).fit(POS, NEG)


def test_the_weights_digest_is_read_once_per_version_of_the_files(model_dir: pathlib.Path) -> None:
    weights = next(model_dir.glob("*.safetensors"))
    before = weights_digest(model_dir)
    st = weights.stat()
    data = bytearray(weights.read_bytes())
    data[-1] ^= 0xFF  # other bytes, same size
    weights.write_bytes(bytes(data))
    os.utime(weights, ns=(st.st_atime_ns, st.st_mtime_ns))  # ... and the same modification time: the same version
    assert weights_digest(model_dir) == before  # remembered, not read again
    os.utime(weights, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))  # a new version
    assert weights_digest(model_dir) != before

"""Extraction on tiny models of every supported architecture, against independent references."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from fastprobe import FastprobeError, InvalidInputError
from fastprobe.extraction import decoder_blocks, extract_pooled, load_model
from fastprobe.testing import ARCHITECTURES, tiny_model

PROMPTS = [
    "The city of Paris is in France.",
    "Tokyo is in Japan.",
    "Rome",
    "The city of Berlin is in Germany and the city of Madrid is in Spain.",
    "Cairo is in Egypt.",
]
FINAL_NORM = {
    "llama": "norm",
    "gpt2": "ln_f",
    "gpt_neox": "final_layer_norm",
    "bert": None,
    "opt": "decoder.final_layer_norm",
    "qwen2": "norm",
    "gemma2": "norm",
    "llava": "language_model.norm",
}


def unpadded_reference(loaded, prompt: str) -> tuple[torch.Tensor, ...]:  # type: ignore[no-untyped-def]
    """hidden_states of one prompt run alone (no padding at all)."""
    enc = loaded.tokenizer(prompt, return_tensors="pt")
    with torch.inference_mode():
        return loaded.model(**enc, output_hidden_states=True).hidden_states


@pytest.mark.parametrize("side", ["left", "right"])
@pytest.mark.parametrize("arch", ARCHITECTURES)
def test_hooks_equal_hidden_states(arch: str, side: str) -> None:
    loaded = load_model(tiny_model(arch, padding_side=side), device="cpu")
    n, h = loaded.n_layers, loaded.hidden_size
    feats = extract_pooled(
        loaded, PROMPTS, list(range(n)), ("last_token", "first_token", "mean"), batch_size=3, progress=False
    )
    for i, prompt in enumerate(PROMPTS):
        hs = unpadded_reference(loaded, prompt)
        assert len(hs) == n + 1
        for layer in range(n):
            ref = hs[layer + 1][0]  # (T, H): block `layer`'s output, as HF indexes it
            got = {k: v[i, layer * h : (layer + 1) * h] for k, v in feats.items()}
            if layer == n - 1 and FINAL_NORM[arch] is not None:
                # HF's last hidden state has the final norm applied; ours is taken before it.
                norm = loaded.model.get_submodule(FINAL_NORM[arch])
                with torch.inference_mode():
                    normed = norm(torch.from_numpy(got["last_token"])).numpy()
                np.testing.assert_allclose(normed, ref[-1].numpy(), atol=2e-5, rtol=1e-4)
                assert not np.allclose(got["last_token"], ref[-1].numpy(), atol=1e-3)
                continue
            np.testing.assert_allclose(got["last_token"], ref[-1].numpy(), atol=2e-5, rtol=1e-4)
            np.testing.assert_allclose(got["first_token"], ref[0].numpy(), atol=2e-5, rtol=1e-4)
            np.testing.assert_allclose(got["mean"], ref.mean(0).numpy(), atol=2e-5, rtol=1e-4)


def test_subset_of_layers_is_ascending_concatenation() -> None:
    loaded = load_model(tiny_model("llama"), device="cpu")
    h = loaded.hidden_size
    everything = extract_pooled(loaded, PROMPTS, [0, 1, 2, 3], progress=False)["last_token"]
    picked = extract_pooled(loaded, PROMPTS, [2, 0], progress=False)["last_token"]
    np.testing.assert_allclose(picked, np.hstack([everything[:, 0:h], everything[:, 2 * h : 3 * h]]), atol=1e-6)


def test_bad_input() -> None:
    loaded = load_model(tiny_model("gpt2"), device="cpu")
    with pytest.raises(InvalidInputError, match="prompts is empty"):
        extract_pooled(loaded, [], [0])
    with pytest.raises(InvalidInputError, match="prompt 1 must be a non-empty string; got ''"):
        extract_pooled(loaded, ["a", ""], [0])
    with pytest.raises(InvalidInputError, match="not a single string"):
        extract_pooled(loaded, "hello", [0])
    with pytest.raises(
        InvalidInputError, match=r"batch_size must be a positive int \(prompts per batch\) or None .*got 0"
    ):
        extract_pooled(loaded, ["a"], [0], batch_size=0)
    with pytest.raises(FastprobeError, match="does not exist"):
        load_model("/nonexistent/model/dir")
    with pytest.raises(FastprobeError, match="Unknown dtype 'float64'"):
        load_model(tiny_model("gpt2"), dtype="float64")


def test_unsupported_model_names_the_paths_tried() -> None:
    with pytest.raises(
        FastprobeError, match=r"cannot find the transformer blocks of Linear: .*model\.layers.*gpt_neox"
    ):
        decoder_blocks(torch.nn.Linear(2, 2))


def test_forward_stops_after_deepest_layer() -> None:
    loaded = load_model(tiny_model("llama"), device="cpu")
    blocks = decoder_blocks(loaded.model)
    calls: list[int] = []
    handles = [b.register_forward_pre_hook(lambda m, a, i=i: calls.append(i)) for i, b in enumerate(blocks)]
    try:
        extract_pooled(loaded, PROMPTS[:2], [1], progress=False)
    finally:
        for handle in handles:
            handle.remove()
    assert sorted(set(calls)) == [0, 1]


@pytest.mark.gpu
@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
def test_cuda_extraction_matches_cpu(dtype: str) -> None:
    path = tiny_model("llama", padding_side="left")
    layers = [0, 1, 2, 3]
    cpu = extract_pooled(load_model(path, device="cpu"), PROMPTS, layers, ("mean", "last_token"), progress=False)
    gpu_model = load_model(path, device="cuda", dtype=dtype)
    assert next(gpu_model.model.parameters()).device.type == "cuda"
    gpu = extract_pooled(gpu_model, PROMPTS, layers, ("mean", "last_token"), progress=False)
    for pooling, want in cpu.items():
        scale = float(np.abs(want).max())
        atol = 1e-4 * scale if dtype == "float32" else 3e-2 * scale
        np.testing.assert_allclose(gpu[pooling], want, atol=atol, rtol=0)


def test_extract_to_store_matches_direct_pooling_and_skips_cached(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from fastprobe import ActivationStore
    from fastprobe.extraction import extract_to_store

    loaded = load_model(tiny_model("llama", padding_side="left"), device="cpu")
    store = ActivationStore(tmp_path, dtype="float32")
    assert extract_to_store(loaded, PROMPTS[:3], [1, 3], store, batch_size=2, progress=False) == 3
    assert extract_to_store(loaded, PROMPTS, [1, 3], store, batch_size=2, progress=False) == 2  # only the missing
    assert extract_to_store(loaded, PROMPTS, [3, 1], store, progress=False) == 0
    direct = extract_pooled(loaded, PROMPTS, [1, 3], ("last_token", "mean", "first_token", "max"), progress=False)
    for pooling, want in direct.items():
        np.testing.assert_allclose(store.read_pooled(PROMPTS, [1, 3], pooling), want, rtol=1e-5, atol=1e-6)
    values, offsets = store.read_tokens(PROMPTS[3:4], [1])
    alone = unpadded_reference(loaded, PROMPTS[3])[2][0].numpy()  # block 1's output, no padding at all
    assert offsets.tolist() == [0, len(alone)]
    np.testing.assert_allclose(values, alone, atol=2e-5, rtol=1e-4)


def test_extract_to_store_runs_what_last_token_records_lack(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from fastprobe import ActivationStore
    from fastprobe.extraction import extract_to_store

    loaded = load_model(tiny_model("llama", padding_side="left"), device="cpu")
    reference = ActivationStore(tmp_path / "reference", dtype="float32")
    extract_to_store(loaded, PROMPTS, [1, 3], reference, progress=False)
    last = reference.read_pooled(PROMPTS, [1, 3], "last_token")
    counts = [t for _, _, t in sorted(reference.prompts(), key=lambda x: PROMPTS.index(x[0]))]
    store = ActivationStore(tmp_path / "pulled", dtype="float32")
    h = last.shape[1] // 2
    store.write_last_token(PROMPTS, np.stack([last[:, :h], last[:, h:]]), counts, sites=[1, 3])

    def run(**kwargs):  # type: ignore[no-untyped-def]
        return extract_to_store(loaded, PROMPTS, [1, 3], store, progress=False, **kwargs)

    # Last-token reads are served; mean, first token and the default (any pooled vector) are not.
    assert run(keep_tokens=False, poolings=["last_token"]) == 0
    assert run(keep_tokens=False, poolings="last_token") == 0
    assert store.contains(PROMPTS, [1, 3], pooling="last_token").all()
    assert not store.contains(PROMPTS, [1, 3]).any()
    assert run(keep_tokens=False, poolings=["last_token", "mean"]) == len(PROMPTS)
    assert run(keep_tokens=False, poolings=["mean"]) == 0  # the new pooled-only records supersede
    assert run(keep_tokens=False) == 0
    for pooling in ("last_token", "mean", "first_token"):
        np.testing.assert_array_equal(
            store.read_pooled(PROMPTS, [1, 3], pooling), reference.read_pooled(PROMPTS, [1, 3], pooling)
        )
    # A pooling that reads tokens keeps them, whatever keep_tokens says.
    assert run(keep_tokens=False, poolings=["max"]) == len(PROMPTS)
    assert store.contains(PROMPTS, [1, 3], tokens=True).all()
    np.testing.assert_array_equal(store.read_tokens(PROMPTS, [1])[0], reference.read_tokens(PROMPTS, [1])[0])
    # A prompt back to last-token-only at one site runs for that site alone.
    store.write_last_token(PROMPTS[:1], last[None, :1, h:], counts[:1], sites=[3])
    assert run(poolings=["first_token"]) == 1
    assert store.verify() == []


def test_model_fingerprint_separates_what_changes_activations() -> None:
    from fastprobe.extraction import model_fingerprint

    base = model_fingerprint(load_model(tiny_model("llama"), device="cpu"))
    assert base["model"] == str(tiny_model("llama")) and base["dtype"] == "float32"
    assert base["weights"].startswith("sha256:") and base["site"] == "residual"
    assert model_fingerprint(load_model(tiny_model("llama"), device="cpu", dtype="bfloat16"))["dtype"] == "bfloat16"
    other_weights = model_fingerprint(load_model(tiny_model("llama", seed=1), device="cpu"))
    assert other_weights["weights"] != base["weights"]
    left = model_fingerprint(load_model(tiny_model("llama", padding_side="left"), device="cpu"))
    assert left["tokenizer"]["padding_side"] == "left" != base["tokenizer"]["padding_side"]


@pytest.mark.gpu
def test_cuda_extract_to_store_matches_cpu(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from fastprobe import ActivationStore
    from fastprobe.extraction import extract_to_store

    path = tiny_model("gpt2")
    cpu_store = ActivationStore(tmp_path / "cpu", dtype="float32")
    gpu_store = ActivationStore(tmp_path / "gpu", dtype="float32")
    extract_to_store(load_model(path, device="cpu"), PROMPTS, [0, 3], cpu_store, batch_size=2, progress=False)
    extract_to_store(load_model(path, device="cuda"), PROMPTS, [0, 3], gpu_store, batch_size=2, progress=False)
    want, offsets = cpu_store.read_tokens(PROMPTS, [0, 3])
    got, got_offsets = gpu_store.read_tokens(PROMPTS, [0, 3])
    np.testing.assert_array_equal(got_offsets, offsets)
    np.testing.assert_allclose(got, want, atol=1e-4 * float(np.abs(want).max()), rtol=0)


def test_smollm2_hooks_equal_hidden_states_and_the_store_gives_the_same_inputs(smollm2_path, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """On the real model: every block's output equals output_hidden_states[i + 1] (the last before the final norm),
    in a padded, length-sorted batch; and a float32 store returns the uncached inputs bit for bit."""
    from fastprobe import ActivationStore
    from fastprobe.extraction import extract_to_store

    loaded = load_model(smollm2_path, device="cpu")
    assert loaded.n_layers == 30
    prompts = PROMPTS[:4]
    layers = list(range(30))
    feats = extract_pooled(loaded, prompts, layers, ("last_token", "mean"), batch_size=4, progress=False)
    h = loaded.hidden_size
    for i, prompt in enumerate(prompts):
        hs = unpadded_reference(loaded, prompt)
        for layer in layers[:-1]:
            ref = hs[layer + 1][0]
            scale = float(ref.abs().max())
            got = feats["last_token"][i, layer * h : (layer + 1) * h]
            np.testing.assert_allclose(got, ref[-1].numpy(), atol=2e-5 * scale, rtol=0)
            got_mean = feats["mean"][i, layer * h : (layer + 1) * h]
            np.testing.assert_allclose(got_mean, ref.mean(0).numpy(), atol=2e-5 * scale, rtol=0)
        with torch.inference_mode():
            normed = loaded.model.norm(torch.from_numpy(feats["last_token"][i, 29 * h :])).numpy()
        np.testing.assert_allclose(normed, hs[30][0, -1].numpy(), atol=1e-4, rtol=1e-4)
    store = ActivationStore(tmp_path, dtype="float32")
    extract_to_store(loaded, prompts, layers, store, batch_size=4, progress=False)
    np.testing.assert_array_equal(store.read_pooled(prompts, layers, "last_token"), feats["last_token"])

"""Sites beyond the residual stream (embeddings, attention, MLP, single heads) and the extraction engine's behaviour:
early exit, batching by length, out-of-memory retries, partial caching, failures and bad input."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch

from fastprobe import ActivationStore, FastprobeError, InvalidInputError, UnknownOptionError
from fastprobe.extraction import extract_pooled, extract_to_store, load_model
from fastprobe.model import anatomy
from fastprobe.sites import Site, parse_site, resolve_sites, store_ids
from fastprobe.testing import ARCHITECTURES, tiny_model

PROMPTS = [
    "The city of Paris is in France.",
    "Tokyo is in Japan.",
    "Rome",
    "The city of Berlin is in Germany and the city of Madrid is in Spain.",
    "Cairo is in Egypt.",
]
HEADS = 4  # the tiny models' head count


# ------------------------------------------------------------------------------------------ the naming scheme


def test_parse_and_resolve_names() -> None:
    assert parse_site(3) == Site("resid", 3) == parse_site("resid.3")
    assert parse_site("embed") == Site("embed", -1)
    assert parse_site("head.5.0") == Site("head", 5, 0)
    assert parse_site("attn.-1") == Site("attn", -1)
    got = resolve_sites(["resid.-1", "mlp.0", "head.0.-1", "embed", 0, "attn.0", "head.0.1", 3], 4, HEADS)
    assert [s.name for s in got] == ["embed", "attn.0", "head.0.1", "head.0.3", "mlp.0", "resid.0", "resid.3"]


def test_store_ids_round_trip_and_keep_layer_numbers() -> None:
    names = ["embed", "resid.0", "resid.29", "attn.0", "attn.29", "mlp.7", "head.5.0", "head.31.63"]
    ids = store_ids(names)
    assert ids[:3] == [1 << 24, 0, 29]
    assert len(set(ids)) == len(ids)
    for site_id in ids:
        assert Site.from_store_id(site_id).store_id == site_id
    assert store_ids([5, "resid.5"]) == [5, 5]


def test_bad_site_names() -> None:
    with pytest.raises(UnknownOptionError, match=r"unknown site 'atn.1'; expected an int .*\"head.L.H\""):
        parse_site("atn.1")
    with pytest.raises(InvalidInputError, match=r"layer 4 of site 'attn.4' is out of range .* \(valid: -4 to 3\)"):
        resolve_sites("attn.4", 4, HEADS)
    with pytest.raises(InvalidInputError, match=r"head 4 of site 'head.1.4' is out of range .* \(valid: -4 to 3\)"):
        resolve_sites("head.1.4", 4, HEADS)
    with pytest.raises(InvalidInputError, match="site list is empty"):
        resolve_sites([], 4, HEADS)
    with pytest.raises(InvalidInputError, match="resolve it against a model first"):
        store_ids(["mlp.-1"])
    with pytest.raises(InvalidInputError, match="got 1.5 of type float"):
        parse_site(1.5)  # type: ignore[arg-type]


# ------------------------------------------------------------------------------------------ values


def _split(feats: np.ndarray, n: int) -> list[np.ndarray]:
    return np.split(feats, n, axis=1)


def _hidden_states(loaded, prompt: str) -> tuple[torch.Tensor, ...]:  # type: ignore[no-untyped-def]
    enc = loaded.tokenizer(prompt, return_tensors="pt")
    with torch.inference_mode():
        return loaded.model(**enc, output_hidden_states=True).hidden_states  # type: ignore[no-any-return]


@pytest.mark.parametrize("arch", ARCHITECTURES)
def test_sites_against_hidden_states_and_each_other(arch: str) -> None:
    """embed is hidden_states[0]; the heads plus the projection bias sum to attn; and the block's own arithmetic
    rebuilds its output from its input, attention and MLP outputs (pre-norm: a sum; Gemma 2 and BERT: their norms)."""
    loaded = load_model(tiny_model(arch, padding_side="left"), device="cpu")
    body = anatomy(loaded.model)
    block = body.blocks[1]
    sites = ["embed", 0, "attn.1", *[f"head.1.{h}" for h in range(HEADS)], "mlp.1", 1]
    feats = extract_pooled(loaded, PROMPTS, sites, ("last_token", "mean"), batch_size=2, progress=False)
    # The same sites through the token path (every real token), pooled afterwards.
    tokens = extract_pooled(loaded, PROMPTS, sites, ("max", "mean"), batch_size=3, progress=False)
    np.testing.assert_allclose(tokens["mean"], feats["mean"], atol=1e-6)
    bias = body.attention_projection(1).bias
    bias = 0.0 if bias is None else bias.detach().numpy()
    for pooling in ("last_token", "mean"):
        embed, r0, attn, *heads, mlp, r1 = _split(feats[pooling], len(sites))
        np.testing.assert_allclose(np.sum(heads, axis=0) + bias, attn, atol=1e-5)
        for i, prompt in enumerate(PROMPTS):
            hs0 = _hidden_states(loaded, prompt)[0][0]
            ref = hs0[-1] if pooling == "last_token" else hs0.mean(0)
            np.testing.assert_allclose(embed[i], ref.numpy(), atol=1e-5)
        if arch == "gemma2":
            with torch.inference_mode():
                post_attn = block.post_attention_layernorm(torch.from_numpy(attn)).numpy()
                post_mlp = block.post_feedforward_layernorm(torch.from_numpy(mlp)).numpy()
            if pooling == "last_token":
                np.testing.assert_allclose(r0 + post_attn + post_mlp, r1, atol=1e-4)
        elif arch == "bert":
            with torch.inference_mode():
                mid = block.attention.output.LayerNorm(torch.from_numpy(attn + r0))
                out = block.output.LayerNorm(torch.from_numpy(mlp) + mid).numpy()
            if pooling == "last_token":
                np.testing.assert_allclose(out, r1, atol=1e-4)
        else:  # pre-norm blocks (GPT-NeoX's parallel one too): output = input + attention + MLP
            np.testing.assert_allclose(r0 + attn + mlp, r1, atol=1e-5)
    if arch == "llama":  # the MLP site against the block's MLP run on its own input
        embed, r0, attn, *heads, mlp, r1 = _split(feats["last_token"], len(sites))
        with torch.inference_mode():
            want = block.mlp(block.post_attention_layernorm(torch.from_numpy(r0 + attn))).numpy()
        np.testing.assert_allclose(mlp, want, atol=1e-5)


def test_forward_stops_after_the_last_needed_module() -> None:
    loaded = load_model(tiny_model("llama"), device="cpu")
    body = anatomy(loaded.model)
    calls: list[str] = []
    handles = [
        b.register_forward_pre_hook(lambda m, a, i=i: calls.append(f"block{i}")) for i, b in enumerate(body.blocks)
    ]
    handles += [body.mlp(i).register_forward_pre_hook(lambda m, a, i=i: calls.append(f"mlp{i}")) for i in range(4)]
    try:
        extract_pooled(loaded, PROMPTS[:2], ["attn.1", "head.1.2"], progress=False)
        assert sorted(set(calls)) == ["block0", "block1", "mlp0"]  # block 1's MLP never ran
        calls.clear()
        extract_pooled(loaded, PROMPTS[:2], ["embed"], progress=False)
        assert sorted(set(calls)) == ["block0"]  # stopped on entering block 0
    finally:
        for handle in handles:
            handle.remove()


def test_batches_are_formed_by_token_length() -> None:
    loaded = load_model(tiny_model("llama", padding_side="left"), device="cpu")
    body = anatomy(loaded.model)
    shapes: list[tuple[int, int]] = []
    handle = body.blocks[0].register_forward_pre_hook(lambda m, a: shapes.append(tuple(a[0].shape[:2])))
    try:
        extract_pooled(loaded, PROMPTS, [0], batch_size=2, progress=False)
    finally:
        handle.remove()
    lengths = sorted(len(ids) for ids in loaded.tokenizer(PROMPTS)["input_ids"])
    assert shapes == [(2, lengths[1]), (2, lengths[3]), (1, lengths[4])]


# ------------------------------------------------------------------------------------------ the store


def test_sites_in_the_store_and_partial_caching(tmp_path) -> None:  # type: ignore[no-untyped-def]
    loaded = load_model(tiny_model("gpt2", padding_side="left"), device="cpu")
    store = ActivationStore(tmp_path, dtype="float32")
    sites = ["embed", "attn.1", "head.2.3", 3]
    assert extract_to_store(loaded, PROMPTS, sites, store, batch_size=2, progress=False) == len(PROMPTS)
    want = extract_pooled(loaded, PROMPTS, sites, ("last_token", "mean", "max"), progress=False)
    for pooling, values in want.items():
        np.testing.assert_allclose(store.read_pooled(PROMPTS, sites, pooling), values, rtol=1e-5, atol=1e-6)
    written: list[list[int]] = []
    write = store.write

    def spy(prompts, tokens, counts, ids, **kw):  # type: ignore[no-untyped-def]
        written.append(list(ids))
        return write(prompts, tokens, counts, ids, **kw)

    store.write = spy  # type: ignore[method-assign]
    assert extract_to_store(loaded, PROMPTS, ["attn.1", "mlp.0"], store, progress=False) == len(PROMPTS)
    assert written == [store_ids(["mlp.0"])]  # only the site not stored yet
    np.testing.assert_allclose(
        store.read_pooled(PROMPTS, ["mlp.0"]), extract_pooled(loaded, PROMPTS, ["mlp.0"], progress=False)["last_token"]
    )


def test_a_failed_batch_writes_nothing_and_earlier_batches_stay(tmp_path) -> None:  # type: ignore[no-untyped-def]
    loaded = load_model(tiny_model("llama"), device="cpu")
    store = ActivationStore(tmp_path, dtype="float32")
    body = anatomy(loaded.model)
    seen = {"batches": 0}

    def fail_second(_m, _a):  # type: ignore[no-untyped-def]
        seen["batches"] += 1
        if seen["batches"] == 2:
            raise RuntimeError("device lost")

    handle = body.blocks[0].register_forward_pre_hook(fail_second)
    try:
        with pytest.raises(RuntimeError, match="device lost"):
            extract_to_store(loaded, PROMPTS, [1], store, batch_size=2, record_prompts=64, progress=False)
    finally:
        handle.remove()
    stored = store.contains(PROMPTS, [1])
    assert stored.sum() == 2  # the first batch, flushed although its record was not full
    assert extract_to_store(loaded, PROMPTS, [1], store, batch_size=2, progress=False) == 3
    assert store.verify() == []


# ------------------------------------------------------------------------------------------ faults and bad input


def test_out_of_memory_halves_the_batch_and_retries() -> None:
    loaded = load_model(tiny_model("llama", padding_side="left"), device="cpu")
    body = anatomy(loaded.model)
    want = extract_pooled(loaded, PROMPTS, [1, "head.2.1"], ("last_token", "mean"), batch_size=4, progress=False)
    sizes: list[int] = []

    def small_memory(_m, args):  # type: ignore[no-untyped-def]
        sizes.append(args[0].shape[0])
        if args[0].shape[0] > 1:
            raise torch.OutOfMemoryError("CUDA out of memory (simulated)")

    handle = body.blocks[0].register_forward_pre_hook(small_memory)
    try:
        with pytest.warns(RuntimeWarning) as record:
            got = extract_pooled(loaded, PROMPTS, [1, "head.2.1"], ("last_token", "mean"), batch_size=4, progress=False)
    finally:
        handle.remove()
    assert [str(w.message) for w in record] == [
        "out of memory on cpu with a batch of 4 prompts; retrying with batch_size=2",
        "out of memory on cpu with a batch of 2 prompts; retrying with batch_size=1",
    ]
    assert sizes[:3] == [4, 2, 1] and set(sizes[3:]) == {1}
    for pooling in want:
        np.testing.assert_allclose(got[pooling], want[pooling], atol=1e-5)

    def no_memory(_m, _a):  # type: ignore[no-untyped-def]
        raise torch.OutOfMemoryError("CUDA out of memory (simulated)")

    handle = body.blocks[0].register_forward_pre_hook(no_memory)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            with pytest.raises(FastprobeError, match="out of memory on cpu running a single prompt of"):
                extract_pooled(loaded, PROMPTS[:2], [1], progress=False)
    finally:
        handle.remove()


def test_bad_input_names_the_choices(tmp_path) -> None:  # type: ignore[no-untyped-def]
    loaded = load_model(tiny_model("llama"), device="cpu")
    store = ActivationStore(tmp_path, dtype="float32")
    too_long = " ".join(["Paris"] * 200)
    with pytest.raises(InvalidInputError, match=r"prompt 1 is \d+ tokens long; the model accepts at most 128"):
        extract_to_store(loaded, ["Rome", too_long], [0], store, progress=False)
    assert store.contains(["Rome"], [0]).tolist() == [False]  # nothing written
    with pytest.raises(UnknownOptionError, match="unknown site 'resid'"):
        extract_pooled(loaded, PROMPTS, ["resid"], progress=False)
    with pytest.raises(InvalidInputError, match=r"layer 9 of site 'resid.9' is out of range .*valid: -4 to 3"):
        extract_pooled(loaded, PROMPTS, [9], progress=False)
    with pytest.raises(UnknownOptionError, match="unknown pooling 'avg'; expected one of: "):
        extract_pooled(loaded, PROMPTS, [0], ("avg",), progress=False)
    with pytest.raises(InvalidInputError, match="prompts is empty"):
        extract_to_store(loaded, [], [0], store, progress=False)
    with pytest.raises(FastprobeError, match="cannot find the MLP of block 0 .*looked for mlp, feed_forward"):
        anatomy(loaded.model).__class__(loaded.model, [torch.nn.Linear(2, 2)], 1, 2, 1, None).mlp(0)

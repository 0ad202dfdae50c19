"""Reading attention rows and ablating heads and edges, checked against eager attention on every tiny architecture.

References are computed independently: the same weights loaded with ``attn_implementation="eager"`` and run with
``output_attentions=True``, and hand computations from those attention maps and the value vectors.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import torch

from fastprobe import ArgumentTypeError, InvalidInputError, UnknownOptionError
from fastprobe.extraction import EdgeAblation, HeadAblation, extract_pooled, forward_batches, load_model
from fastprobe.model import anatomy
from fastprobe.sites import resolve_sites
from fastprobe.testing import ARCHITECTURES, tiny_model

PROMPTS = [
    "The cat sat on the mat and it purred.",
    "A dog ran.",
    "I saw a box in the corner, and it was big and heavy.",
    "Hello there, my good friend.",
]


def eager(loaded: Any) -> Any:
    """The same weights as ``loaded``, with eager attention."""
    model = type(loaded.model).from_pretrained(loaded.name, attn_implementation="eager")
    return model.eval()


def encode(loaded: Any, prompts: list[str]) -> dict[str, torch.Tensor]:
    tok = loaded.tokenizer
    return dict(tok(prompts, return_tensors="pt", padding=True))


def lengths(loaded: Any, prompts: list[str]) -> list[int]:
    return [len(loaded.tokenizer(p)["input_ids"]) for p in prompts]


@pytest.fixture(scope="module", params=ARCHITECTURES)
def arch(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.mark.parametrize("padding_side", ["right", "left"])
def test_attention_rows_equal_eager_output_attentions(arch: str, padding_side: str) -> None:
    loaded = load_model(tiny_model(arch, padding_side=padding_side), device="cpu")
    body = anatomy(loaded.model)
    n = lengths(loaded, PROMPTS)
    queries = [k - 2 if k > 2 else k - 1 for k in n]  # a query inside each prompt
    last = resolve_sites(f"attn.{body.n_layers - 1}", body.n_layers, body.n_heads)
    got: dict[int, dict[int, np.ndarray]] = {}
    for batch in forward_batches(loaded, PROMPTS, last, 3, False, attention_queries=queries):
        first = batch.mask.int().argmax(dim=1)
        for b, i in enumerate(batch.idx.tolist()):
            start = int(first[b])
            got[i] = {layer: rows[b, :, start : start + n[i]].numpy() for layer, rows in batch.attention.items()}
    ref = eager(loaded)
    for i, prompt in enumerate(PROMPTS):  # each prompt alone: no padding in the reference
        with torch.inference_mode():
            maps = ref(**encode(loaded, [prompt]), output_attentions=True).attentions
        assert len(maps) == body.n_layers
        for layer in range(body.n_layers):
            want = maps[layer][0, :, queries[i]].numpy()
            np.testing.assert_allclose(got[i][layer], want, rtol=1e-5, atol=1e-6, err_msg=f"{arch} layer {layer}")


def _value_heads(ref: Any, loaded: Any, layer: int, enc: dict[str, torch.Tensor]) -> torch.Tensor:
    """The eager model's output-projection input at ``layer``: (B, S, heads * head_dim)."""
    proj = anatomy(ref).attention_projection(layer)
    seen: dict[str, torch.Tensor] = {}
    handle = proj.register_forward_hook(lambda _m, inputs, _o: seen.__setitem__("x", inputs[0]))
    try:
        with torch.inference_mode():
            ref(**enc)
    finally:
        handle.remove()
    return seen["x"]


def test_zero_head_ablation_leaves_the_other_heads_plus_the_bias(arch: str) -> None:
    loaded = load_model(tiny_model(arch), device="cpu")
    body = anatomy(loaded.model)
    layer, head = body.n_layers - 1, 1
    sites = [f"head.{layer}.{h}" for h in range(body.n_heads)] + [f"attn.{layer}"]
    clean = extract_pooled(loaded, PROMPTS, sites, ("mean",), batch_size=2, progress=False)["mean"]
    ablated = extract_pooled(
        loaded, PROMPTS, sites, ("mean",), batch_size=2, progress=False, interventions=[HeadAblation((layer, head))]
    )["mean"]
    h = body.hidden_size  # columns in forward order: the attention output, then each head
    heads = clean[:, h:].reshape(len(PROMPTS), body.n_heads, h)
    ablated_heads = ablated[:, h:].reshape(len(PROMPTS), body.n_heads, h)
    np.testing.assert_array_equal(ablated_heads[:, head], 0.0)
    others = [k for k in range(body.n_heads) if k != head]
    np.testing.assert_allclose(ablated_heads[:, others], heads[:, others], rtol=1e-6, atol=1e-6)
    proj = body.attention_projection(layer)
    bias = proj.bias.detach().numpy() if proj.bias is not None else 0.0
    want = heads[:, others].sum(axis=1) + bias
    np.testing.assert_allclose(ablated[:, :h], want, rtol=1e-5, atol=1e-5)


def test_mean_head_ablation_puts_the_reference_mean_in_place(arch: str) -> None:
    loaded = load_model(tiny_model(arch), device="cpu")
    body = anatomy(loaded.model)
    layer, head = 0, 0
    reference = ["Paris is in France.", "The sun is a star."]
    ref = eager(loaded)
    enc = encode(loaded, reference)
    x = _value_heads(ref, loaded, layer, enc)
    d = x.shape[-1] // body.n_heads
    real = enc["attention_mask"].bool()
    mean = x[real][:, head * d : (head + 1) * d].mean(dim=0)
    weight = body.head_weights(layer)[head]
    want = (mean @ weight).numpy()
    got = extract_pooled(
        loaded,
        PROMPTS,
        f"head.{layer}.{head}",
        ("mean",),
        batch_size=2,
        progress=False,
        interventions=[HeadAblation(f"{layer}.{head}", mode="mean", reference=reference)],
    )["mean"]
    np.testing.assert_allclose(got, np.tile(want, (len(PROMPTS), 1)), rtol=1e-4, atol=1e-5)


def test_head_ablation_at_positions_changes_only_those_positions() -> None:
    loaded = load_model(tiny_model("llama"), device="cpu")
    sites = resolve_sites(["head.1.0"], 2, 4)
    n = lengths(loaded, PROMPTS)
    positions = [[0, k - 1] for k in n]
    clean = {}
    for batch in forward_batches(loaded, PROMPTS, sites, 2, False):
        for b, i in enumerate(batch.idx.tolist()):
            clean[i] = batch.full(sites[0])[b, : n[i]].numpy()
    ablation = HeadAblation("1.0", positions=positions)
    for batch in forward_batches(loaded, PROMPTS, sites, 2, False, interventions=[ablation]):
        for b, i in enumerate(batch.idx.tolist()):
            got = batch.full(sites[0])[b, : n[i]].numpy()
            np.testing.assert_array_equal(got[[0, n[i] - 1]], 0.0)
            np.testing.assert_array_equal(got[1 : n[i] - 1], clean[i][1 : n[i] - 1])


def _edge_reference(
    ref: Any,
    loaded: Any,
    enc: dict[str, torch.Tensor],
    layer: int,
    edges: dict[int, tuple[int, int]],
    heads: list[int] | None,
) -> np.ndarray:
    """The output-projection input at ``layer`` recomputed from eager attention maps with the edges removed.

    Only block ``layer`` is changed, so its input (and values) are those of the clean pass.
    """
    with torch.inference_mode():
        out = ref(**enc, output_attentions=True)
    weights = out.attentions[layer].clone()  # (B, H, S, S)
    x = _value_heads(ref, loaded, layer, enc)  # clean output-projection input = weights @ V, by head
    n_heads = weights.shape[1]
    d = x.shape[-1] // n_heads
    values = _values(ref, layer, enc, n_heads, d)
    for b, (q, k) in edges.items():
        hs = range(n_heads) if heads is None else heads
        for h in hs:
            row = weights[b, h, q].clone()
            row[k] = 0.0
            weights[b, h, q] = row / row.sum()
    new = torch.einsum("bhqk,bhkd->bqhd", weights, values)
    return new.reshape(x.shape).numpy()


def _values(ref: Any, layer: int, enc: dict[str, torch.Tensor], n_heads: int, d: int) -> torch.Tensor:
    """Block ``layer``'s value vectors per head, (B, H, S, d), captured from the eager attention call."""
    from transformers.modeling_utils import ALL_ATTENTION_FUNCTIONS

    seen: dict[str, torch.Tensor] = {}
    blocks = anatomy(ref).blocks
    target = {id(m) for m in blocks[layer].modules()}
    import sys

    def spy(module: Any, query: Any, key: Any, value: Any, mask: Any, *args: Any, **kwargs: Any) -> Any:
        if id(module) in target:
            group = query.shape[1] // value.shape[1]
            seen["v"] = value.repeat_interleave(group, dim=1) if group > 1 else value
        return sys.modules[type(module).__module__].eager_attention_forward(
            module, query, key, value, mask, *args, **kwargs
        )

    ALL_ATTENTION_FUNCTIONS["eager"] = spy
    try:
        with torch.inference_mode():
            ref(**enc)
    finally:
        del ALL_ATTENTION_FUNCTIONS["eager"]
    return seen["v"]


@pytest.mark.parametrize("heads", [None, [1]])
def test_edge_ablation_equals_the_renormalized_attention(arch: str, heads: list[int] | None) -> None:
    loaded = load_model(tiny_model(arch), device="cpu")
    body = anatomy(loaded.model)
    layer = body.n_layers - 1
    n = lengths(loaded, PROMPTS)
    # remove the edge from each prompt's last token to its second token
    edges = [[(k - 1, 1)] for k in n]
    site = resolve_sites(f"head.{layer}.0", body.n_layers, body.n_heads)
    got = {}
    ablation = EdgeAblation(edges, layers=[layer], heads=heads)
    for batch in forward_batches(loaded, PROMPTS, site, 4, False, interventions=[ablation]):
        x = batch.head_inputs(layer)  # (real tokens, H, d), prompt by prompt
        offsets = np.cumsum([0] + [n[i] for i in batch.idx.tolist()])
        for b, i in enumerate(batch.idx.tolist()):
            got[i] = x[offsets[b] : offsets[b + 1]].reshape(n[i], -1).numpy()
    ref = eager(loaded)
    enc = encode(loaded, PROMPTS)
    want = _edge_reference(ref, loaded, enc, layer, {i: (k - 1, 1) for i, k in enumerate(n)}, heads)
    for i in range(len(PROMPTS)):
        np.testing.assert_allclose(got[i], want[i, : n[i]], rtol=1e-4, atol=1e-5, err_msg=arch)


def test_bad_ablations_are_refused_naming_what_was_expected() -> None:
    loaded = load_model(tiny_model("llama"), device="cpu")  # 4 blocks of 4 heads

    def run(*interventions: Any) -> None:
        extract_pooled(loaded, PROMPTS, 1, batch_size=2, progress=False, interventions=list(interventions))

    with pytest.raises(InvalidInputError, match=r"cannot ablate 'head.1.9': head 9 .* model with 4 heads"):
        run(HeadAblation("1.9"))
    with pytest.raises(InvalidInputError, match=r"cannot ablate 'head.5.0': layer 5 .* model with 4 layers"):
        run(HeadAblation((5, 0)))
    with pytest.raises(ArgumentTypeError, match=r'a head is "L.H", "head.L.H" or \(L, H\); got \'attn.1\''):
        HeadAblation("attn.1")
    with pytest.raises(UnknownOptionError, match="unknown ablation mode 'half'; expected one of: zero, mean"):
        HeadAblation("1.0", mode="half")
    with pytest.raises(InvalidInputError, match=r'mode="mean" needs reference texts'):
        HeadAblation("1.0", mode="mean")
    with pytest.raises(InvalidInputError, match=r"position 40 is outside prompt 1 \('A dog ran.'\), which has \d+ tok"):
        run(HeadAblation("1.0", positions=[0, 40, 0, 0]))
    with pytest.raises(InvalidInputError, match="positions has 2 entries, one per prompt was expected \\(4 prompts\\)"):
        run(HeadAblation("1.0", positions=[0, 1]))
    with pytest.raises(InvalidInputError, match="positions has no entry for the prompt 'A dog ran.'"):
        run(HeadAblation("1.0", positions={p: 0 for p in PROMPTS if p != "A dog ran."}))
    with pytest.raises(
        InvalidInputError, match=r"edge \(1, 3\) of prompt 0: a query at 1 never attends to a later key"
    ):
        run(EdgeAblation([(1, 3)]))
    with pytest.raises(InvalidInputError, match=r"layer 7 is out of range for a model with 4 layers"):
        run(EdgeAblation([(3, 1)], layers=[7]))
    with pytest.raises(ArgumentTypeError, match=r"list of \(query, key\) position pairs; got \(1, 2, 3\)"):
        run(EdgeAblation([(1, 2, 3)]))


def test_an_ablated_run_never_leaves_routes_or_hooks_behind() -> None:
    from transformers.modeling_utils import ALL_ATTENTION_FUNCTIONS

    loaded = load_model(tiny_model("llama"), device="cpu")
    before = dict(ALL_ATTENTION_FUNCTIONS._local_mapping)
    clean = extract_pooled(loaded, PROMPTS, 1, batch_size=2, progress=False)["last_token"]
    with pytest.raises(InvalidInputError):
        extract_pooled(
            loaded,
            PROMPTS,
            1,
            batch_size=2,
            progress=False,
            interventions=[EdgeAblation([(3, 1)]), HeadAblation("1.0", positions=[0, 40, 0, 0])],
        )
    extract_pooled(loaded, PROMPTS, 1, batch_size=2, progress=False, interventions=[EdgeAblation([(3, 1)])])
    assert dict(ALL_ATTENTION_FUNCTIONS._local_mapping) == before
    again = extract_pooled(loaded, PROMPTS, 1, batch_size=2, progress=False)["last_token"]
    np.testing.assert_array_equal(again, clean)


@pytest.mark.parametrize("arch", ["llama", "gpt2"])
def test_rows_and_edge_ablation_are_the_same_under_eager_attention(arch: str) -> None:
    """The router wraps eager (each model file's own function) as it wraps sdpa: same rows, same ablated outputs."""
    from fastprobe.extraction import LoadedModel

    loaded = load_model(tiny_model(arch), device="cpu")
    eager_model = eager(loaded)
    assert eager_model.config._attn_implementation == "eager"
    as_eager = LoadedModel(**{**vars(loaded), "model": eager_model})
    n = lengths(loaded, PROMPTS)
    queries = [k - 1 for k in n]
    edges = EdgeAblation([[(k - 1, 1)] for k in n], heads=[0, 2])

    def run(model: Any) -> tuple[dict[int, np.ndarray], np.ndarray]:
        body = anatomy(model.model)
        rows: dict[int, np.ndarray] = {}
        site = resolve_sites(f"attn.{body.n_layers - 1}", body.n_layers, body.n_heads)
        for batch in forward_batches(model, PROMPTS, site, 2, False, attention_queries=queries):
            for b, i in enumerate(batch.idx.tolist()):
                start = int(batch.mask[b].int().argmax())
                rows[i] = np.stack(
                    [batch.attention[layer][b, :, start : start + n[i]].numpy() for layer in sorted(batch.attention)]
                )
        ablated = extract_pooled(model, PROMPTS, [-1], ("mean",), batch_size=2, progress=False, interventions=[edges])
        return rows, ablated["mean"]

    rows_sdpa, out_sdpa = run(loaded)
    rows_eager, out_eager = run(as_eager)
    for i in range(len(PROMPTS)):
        np.testing.assert_allclose(rows_eager[i], rows_sdpa[i], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(out_eager, out_sdpa, rtol=1e-4, atol=1e-5)

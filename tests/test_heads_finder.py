"""The head finder's scores against eager attention maps and the workflow's yes/no criterion, computed by hand."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import torch

from fastprobe import InvalidInputError, UnknownOptionError
from fastprobe.extraction import HeadAblation, load_model
from fastprobe.heads import HeadScores, find_token_positions, score_heads
from fastprobe.heads.finder import adds_bos
from fastprobe.model import anatomy
from fastprobe.testing import tiny_model

TEXTS = [
    "I saw a cat, and it was small.",
    "There is a box in the corner and it is red.",
    "My dog ran home because it was hungry.",
    "A bird sang while it flew over the lake.",
    "The lamp fell, so it broke.",
]


def examples(loaded: Any) -> tuple[list[int], list[list[int]]]:
    nouns = ["cat", "box", "dog", "bird", "lamp"]
    queries = [find_token_positions(loaded, t, "it").last for t in TEXTS]
    keys = [list(range(*find_token_positions(loaded, t, n))) for t, n in zip(TEXTS, nouns, strict=True)]
    return queries, keys


def eager_rows(loaded: Any, text: str, query: int) -> torch.Tensor:
    ref = type(loaded.model).from_pretrained(loaded.name, attn_implementation="eager").eval()
    with torch.inference_mode():
        maps = ref(**loaded.tokenizer([text], return_tensors="pt"), output_attentions=True).attentions
    return torch.stack([m[0, :, query] for m in maps])  # (layers, heads, keys)


def workflow_criterion(row: torch.Tensor, keys: list[int], bos: bool) -> bool:
    """The workflow's yes/no test: the top-k keys contain every key; with a BOS, also top-(k+1) with position 0."""
    k = len(keys)
    top = set(torch.topk(row, k).indices.tolist())
    if set(keys) <= top:
        return True
    if bos:
        top = set(torch.topk(row, k + 1).indices.tolist())
        return set(keys) <= top and 0 in top
    return False


@pytest.mark.parametrize("arch", ["llama", "gpt2", "gemma2"])
def test_scores_equal_a_hand_computation_from_eager_attention(arch: str) -> None:
    loaded = load_model(tiny_model(arch), device="cpu")
    queries, keys = examples(loaded)
    scores = score_heads(loaded, TEXTS, queries, keys, batch_size=2, progress=False)
    bos = adds_bos(loaded.tokenizer)
    assert scores.ignore_bos is bos
    body = anatomy(loaded.model)
    assert scores.attention.shape == (body.n_layers, body.n_heads)
    hits = np.zeros((body.n_layers, body.n_heads))
    for i, text in enumerate(TEXTS):
        rows = eager_rows(loaded, text, queries[i]).double()
        for layer in range(body.n_layers):
            for head in range(body.n_heads):
                row = rows[layer, head]
                on_keys = float(row[keys[i]].sum())
                ranked = row.clone()
                if bos:
                    on_keys /= 1.0 - float(row[0])
                    ranked[0] = -1.0  # left out of the ranks
                lowest = float(row[keys[i]].min())
                rank = 1 + int((ranked > lowest).sum())
                assert scores.example_attention[i, layer, head] == pytest.approx(on_keys, rel=1e-5, abs=1e-7)
                assert scores.example_rank[i, layer, head] == rank
                hits[layer, head] += workflow_criterion(row, keys[i], bos)
    np.testing.assert_allclose(scores.attention, scores.example_attention.mean(axis=0))
    # the workflow's criterion holding in every sentence is exactly top_k == 1
    np.testing.assert_array_equal(scores.top_k == 1.0, hits == len(TEXTS))
    assert set(scores.heads_where(1.0)) == {
        (layer, head)
        for layer in range(body.n_layers)
        for head in range(body.n_heads)
        if hits[layer, head] == len(TEXTS)
    }


def test_ranking_table_and_heatmap(tmp_path: Any) -> None:
    loaded = load_model(tiny_model("llama"), device="cpu")
    queries, keys = examples(loaded)
    scores = score_heads(loaded, TEXTS, queries, keys, progress=False)
    ranked = scores.ranked("attention")
    values = [scores.attention[layer, head] for layer, head in ranked]
    assert values == sorted(values, reverse=True)
    by_rank = [scores.rank[layer, head] for layer, head in scores.ranked("rank")]
    assert by_rank == sorted(by_rank)
    table = scores.table(top=5)
    rows = table.to_dict("records") if hasattr(table, "to_dict") else table  # a DataFrame when pandas is installed
    assert [r["head_name"] for r in rows] == [f"{layer}.{head}" for layer, head in ranked[:5]]
    assert [r["attention"] for r in rows] == pytest.approx(values[:5])
    _fig, ax = scores.plot(path=tmp_path / "heads.png")
    assert (tmp_path / "heads.png").stat().st_size > 1000
    assert ax.get_xlabel() == "head" and ax.get_ylabel() == "layer"
    with pytest.raises(UnknownOptionError, match="unknown head metric 'weight'; expected one of: attention, rank"):
        scores.ranked("weight")


def test_scores_of_an_ablated_model_change_only_from_the_ablated_layer_on() -> None:
    loaded = load_model(tiny_model("llama"), device="cpu")
    queries, keys = examples(loaded)
    clean = score_heads(loaded, TEXTS, queries, keys, progress=False)
    ablated = score_heads(loaded, TEXTS, queries, keys, progress=False, interventions=[HeadAblation("1.0")])
    np.testing.assert_allclose(ablated.attention[:2], clean.attention[:2], rtol=1e-6)  # blocks 0 and 1 read before
    assert not np.allclose(ablated.attention[2:], clean.attention[2:])


def test_only_chosen_layers_and_bad_examples() -> None:
    loaded = load_model(tiny_model("llama"), device="cpu")
    queries, keys = examples(loaded)
    some = score_heads(loaded, TEXTS, queries, keys, layers=[0, -1], progress=False)
    full = score_heads(loaded, TEXTS, queries, keys, progress=False)
    assert some.layers == [0, 3]
    np.testing.assert_allclose(some.attention, full.attention[[0, 3]], rtol=1e-6)
    assert isinstance(some, HeadScores)
    with pytest.raises(InvalidInputError, match="one entry per example; got 5, 4 and 5"):
        score_heads(loaded, TEXTS, queries[:4], keys, progress=False)
    with pytest.raises(
        InvalidInputError, match=r"query position 99 is outside the text 'I saw a cat, and it was small.'"
    ):
        score_heads(loaded, TEXTS, [99, *queries[1:]], keys, progress=False)
    with pytest.raises(InvalidInputError, match="layers must lie in -4..3 for a model with 4 layers; got \\[4\\]"):
        score_heads(loaded, TEXTS, queries, keys, layers=[4], progress=False)
    if adds_bos(loaded.tokenizer):
        with pytest.raises(InvalidInputError, match="key position 0 is the first token, which ignore_bos leaves out"):
            score_heads(loaded, TEXTS, queries, [[0], *keys[1:]], progress=False)


# ---------------------------------------------------------------------------------------------- causal check


def hand_log_probs(loaded: Any, texts: list[str], positions: list[int], ids: list[int], head: tuple[int, int] | None):
    """Log-probabilities from the causal LM run by hand, one text at a time, a pre-hook zeroing the head's slice."""
    from transformers import AutoModelForCausalLM

    lm = AutoModelForCausalLM.from_pretrained(loaded.name).eval()
    handle = None
    if head is not None:
        layer, h = head
        proj = anatomy(lm).attention_projection(layer)
        d = proj.in_features // anatomy(lm).n_heads

        def zero(_m: Any, args: Any) -> Any:
            x = args[0].clone()
            x[..., h * d : (h + 1) * d] = 0.0
            return (x, *args[1:])

        handle = proj.register_forward_pre_hook(zero)
    out = []
    try:
        for text, p, t in zip(texts, positions, ids, strict=True):
            with torch.inference_mode():
                logits = lm(**loaded.tokenizer([text], return_tensors="pt")).logits[0, p]
            out.append(float(torch.log_softmax(logits.double(), dim=-1)[t]))
    finally:
        if handle is not None:
            handle.remove()
    return np.asarray(out)


def test_head_effects_on_log_probabilities_equal_a_hand_computation() -> None:
    from fastprobe.heads import head_effects

    loaded = load_model(tiny_model("llama"), device="cpu")
    queries, _ = examples(loaded)
    ids = [loaded.tokenizer(t)["input_ids"][q + 1] for t, q in zip(TEXTS, queries, strict=True)]  # the next token
    effects = head_effects(loaded, TEXTS, queries, ["1.0", (3, 2)], targets=ids, batch_size=2, progress=False)
    clean = hand_log_probs(loaded, TEXTS, queries, ids, None)
    assert effects.metric == "log_prob" and effects.heads == [(1, 0), (3, 2)]
    assert effects.clean == pytest.approx(clean.mean(), abs=1e-5)
    for k, head in enumerate(effects.heads):
        ablated = hand_log_probs(loaded, TEXTS, queries, ids, head)
        assert effects.ablated[k] == pytest.approx(ablated.mean(), abs=1e-5)
        np.testing.assert_allclose(effects.example_drop[k], clean - ablated, atol=1e-5)
    assert [r["head_name"] for r in _records(effects.table())] == [
        f"{effects.heads[i][0]}.{effects.heads[i][1]}" for i in np.argsort(-effects.drop, kind="stable")
    ]


def _records(table: Any) -> list[dict[str, Any]]:
    return table.to_dict("records") if hasattr(table, "to_dict") else table


def test_head_effects_on_a_probe_reading_the_head() -> None:
    from sklearn.linear_model import LogisticRegression

    from fastprobe.extraction import extract_at
    from fastprobe.heads import head_effects

    loaded = load_model(tiny_model("llama"), device="cpu")
    texts = [f"The {w} said it was {a}." for w in ("cat", "dog", "sky", "sea", "car", "sun") for a in ("red", "blue")]
    positions = [find_token_positions(loaded, t, "it").last for t in texts]
    labels = np.array([i % 3 for i in range(len(texts))])
    X = extract_at(loaded, texts, positions, "head.1.0", progress=False)
    clf = LogisticRegression(max_iter=2000).fit(X, labels)
    effects = head_effects(
        loaded, texts, positions, ["1.0", "2.0"], classifier=clf, site="head.1.0", labels=labels, progress=False
    )
    assert effects.clean == pytest.approx(float(np.mean(clf.predict(X) == labels)))
    zeros = np.zeros_like(X)
    assert effects.ablated[0] == pytest.approx(float(np.mean(clf.predict(zeros) == labels)))  # the head gives 0
    assert effects.ablated[1] == effects.clean  # a later head cannot change block 1
    with pytest.raises(InvalidInputError, match="give either targets"):
        head_effects(loaded, texts, positions, "1.0", progress=False)
    with pytest.raises(InvalidInputError, match=r"targets\[0\]: ' it was' is \d+ tokens"):
        head_effects(loaded, texts, positions, "1.0", targets=[" it was"] * len(texts), progress=False)

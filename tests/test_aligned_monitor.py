"""The live monitor against a plain forward pass and plain ``generate``, on tiny models."""

from __future__ import annotations

import sys
from typing import Any

import numpy as np
import pytest
import torch

from fastprobe import (
    ArgumentTypeError,
    InvalidInputError,
    MissingDependencyError,
    NotFittedError,
    Probe,
    UnknownOptionError,
    UnsupportedMethodError,
)
from fastprobe.aligned.monitor import MonitorResult, monitor_generation
from fastprobe.extraction import load_model
from fastprobe.model import causal_lm
from fastprobe.testing import tiny_model

SUBJECTS = ["I", "We", "They", "You", "People", "Tourists", "Students", "Friends"]
VERBS = ["saw", "like", "love", "visited", "remember", "know"]
PROMPTS = ["The cat sat on the mat", "A dog ran", "I saw a box in the corner and", "We like", "Friends visited the"]
LAYERS = [1, 2]  # not the last: transformers' last hidden state is after the final norm, a probe's before it
N_NEW = 10


def contrast() -> tuple[list[str], list[str]]:
    pos = [f"{s} {v} Paris" for s in SUBJECTS for v in VERBS]
    neg = [f"{s} {v} Tokyo" for s in SUBJECTS for v in VERBS]
    return pos, neg


def fitted(arch: str = "llama", **kw: Any) -> Probe:
    pos, neg = contrast()
    options: dict[str, Any] = {"layers": LAYERS, "random_state": 0, "device": "cpu", **kw}
    return Probe(model=tiny_model(arch, padding_side="left"), **options).fit(pos, neg)


@pytest.fixture(scope="module")
def probe() -> Probe:
    return fitted()


def loaded_of(probe: Probe) -> Any:
    return load_model(probe.model, device="cpu")


def reference(probe: Probe, prompt: str, tokens: tuple[int, ...]) -> tuple[float, np.ndarray]:
    """The prompt plus its kept tokens run alone through the model (no hooks, no cache), scored by the probe."""
    loaded = loaded_of(probe)
    ids = loaded.tokenizer(prompt)["input_ids"]
    with torch.inference_mode():
        hidden = loaded.model(torch.tensor([ids + list(tokens)]), output_hidden_states=True).hidden_states
    X = np.concatenate([hidden[layer + 1][0].float().numpy() for layer in probe.layers_], axis=1)
    p = probe.predict_proba_from_activations(X)[:, 1]
    return float(p[len(ids) - 1]), p[len(ids) :]


def eos_of(probe: Probe) -> set[int]:
    value = causal_lm(loaded_of(probe)).generation_config.eos_token_id
    eos = {value} if isinstance(value, int) else set(value or [])
    return eos | {loaded_of(probe).tokenizer.eos_token_id}


def plain_generate(probe: Probe, prompt: str, n: int) -> tuple[int, ...]:
    """Greedy ``generate`` on the prompt alone, cut after the first end-of-sequence token."""
    loaded = loaded_of(probe)
    ids = torch.tensor([loaded.tokenizer(prompt)["input_ids"]])
    with torch.inference_mode():
        out = causal_lm(loaded).generate(
            ids, attention_mask=torch.ones_like(ids), max_new_tokens=n, do_sample=False, pad_token_id=0
        )
    new = out[0, ids.shape[1] :].tolist()
    eos = eos_of(probe)
    cut = next((k + 1 for k, t in enumerate(new) if t in eos), len(new))
    return tuple(new[:cut])


def running(scores: np.ndarray, pooling: str) -> np.ndarray:
    if pooling == "mean":
        return np.cumsum(scores) / np.arange(1, len(scores) + 1)
    if pooling == "max":
        return np.maximum.accumulate(scores)
    return scores


def first_crossing(stat: np.ndarray, threshold: float) -> int | None:
    hits = np.flatnonzero(stat >= threshold)
    return int(hits[0]) if hits.size else None


@pytest.mark.parametrize("arch", ["llama", "gpt2"])
def test_scores_equal_a_forward_pass_and_tokens_equal_generate(arch: str) -> None:
    probe = fitted(arch)
    result = monitor_generation(probe, PROMPTS, max_new_tokens=N_NEW, batch_size=3)
    assert isinstance(result, MonitorResult) and len(result) == len(PROMPTS)
    assert result.settings["sites"] == ["resid.1", "resid.2"] and result.threshold is None
    for prompt, seq in zip(PROMPTS, result, strict=True):
        assert seq.prompt == prompt and not seq.stopped and seq.stop_index is None
        assert seq.tokens == plain_generate(probe, prompt, N_NEW)
        assert seq.n_generated == N_NEW or seq.ended
        assert seq.continuation == loaded_of(probe).tokenizer.decode(list(seq.tokens), skip_special_tokens=True)
        want_prompt, want = reference(probe, prompt, seq.tokens)
        assert seq.scores.shape == (len(seq.tokens),) and seq.scores.dtype == np.float64
        np.testing.assert_allclose(seq.scores, want, rtol=0, atol=1e-5)
        np.testing.assert_allclose(seq.running, seq.scores)  # "last": the statistic is the token's score
        assert seq.prompt_score == pytest.approx(want_prompt, abs=1e-5)
    assert np.ptp(np.concatenate([s.scores for s in result])) > 0.3  # the scores move, so the checks below bite


@pytest.mark.parametrize("pooling", ["last", "mean", "max"])
def test_a_threshold_stops_each_sequence_right_after_its_first_crossing(probe: Probe, pooling: str) -> None:
    free = monitor_generation(probe, PROMPTS, max_new_tokens=N_NEW)
    stats = [running(reference(probe, p, s.tokens)[1], pooling) for p, s in zip(PROMPTS, free, strict=True)]
    values = np.unique(np.concatenate(stats))
    candidates = (values[1:] + values[:-1]) / 2  # midway between the statistics: never a tie

    def outcome(t: float) -> list[int | None]:
        return [first_crossing(s, t) for s in stats]

    def spread(t: float) -> int:  # distinct stopping points, with at least one sequence that never stops
        out = outcome(t)
        return len(set(out)) if None in out and sum(o is not None for o in out) >= 2 else 0

    threshold = float(max(candidates, key=spread))
    expected = outcome(threshold)
    assert spread(threshold) >= 3, expected  # >= 2 different stopping points, and a sequence that goes on

    result = monitor_generation(probe, PROMPTS, max_new_tokens=N_NEW, threshold=threshold, score_pooling=pooling)
    assert result.threshold == threshold and result.score_pooling == pooling
    for seq, full, stat, stop in zip(result, free, stats, expected, strict=True):
        if stop is None:  # the others of the batch go on to the end
            assert not seq.stopped and seq.stop_index is None and seq.tokens == full.tokens
            assert np.all(seq.running < threshold)
            continue
        assert seq.stopped and seq.stop_index == stop
        assert seq.tokens == full.tokens[: stop + 1]  # the crossing token kept, nothing after it
        np.testing.assert_allclose(seq.scores, full.scores[: stop + 1], rtol=0, atol=1e-5)
        np.testing.assert_allclose(seq.running, stat[: stop + 1], rtol=0, atol=1e-5)
        assert seq.running[-1] >= threshold and np.all(seq.running[:-1] < threshold)
    np.testing.assert_array_equal(result.stopped, [s is not None for s in expected])


def test_batched_equals_one_prompt_at_a_time(probe: Probe) -> None:
    settings: list[dict[str, Any]] = [
        {},
        {"threshold": 0.6, "score_pooling": "mean"},
        {"do_sample": True, "temperature": 1.3, "top_p": 0.9, "seed": 5},  # each prompt draws from its own generator
    ]
    for kw in settings:
        batched = monitor_generation(probe, PROMPTS, max_new_tokens=N_NEW, batch_size=8, **kw)
        alone = monitor_generation(probe, PROMPTS, max_new_tokens=N_NEW, batch_size=1, **kw)
        for a, b in zip(batched, alone, strict=True):
            assert a.tokens == b.tokens and a.stop_index == b.stop_index and a.ended == b.ended
            np.testing.assert_allclose(a.scores, b.scores, rtol=0, atol=1e-5)
            assert a.prompt_score == pytest.approx(b.prompt_score, abs=1e-5)


def test_an_end_of_sequence_token_is_kept_and_scored_even_as_the_last_step(
    probe: Probe, monkeypatch: pytest.MonkeyPatch
) -> None:
    free = monitor_generation(probe, PROMPTS, max_new_tokens=N_NEW)
    tokens = free[0].tokens
    k = next(k for k in range(2, N_NEW) if tokens[k] not in tokens[:k])
    lm = causal_lm(loaded_of(probe))
    monkeypatch.setattr(lm.generation_config, "eos_token_id", [*sorted(eos_of(probe)), tokens[k]])
    for prompts in (PROMPTS, PROMPTS[:1]):  # alone, its end of sequence is the generation's last step
        result = monitor_generation(probe, prompts, max_new_tokens=N_NEW)
        for seq, full in zip(result, free.sequences[: len(prompts)], strict=True):
            cut = next((j + 1 for j, t in enumerate(full.tokens) if t == tokens[k]), len(full.tokens))
            assert seq.tokens == full.tokens[:cut] == plain_generate(probe, seq.prompt, N_NEW)
            assert seq.ended == (full.tokens[cut - 1] == tokens[k]) and not seq.stopped
            np.testing.assert_allclose(seq.scores, full.scores[:cut], rtol=0, atol=1e-5)
        assert result[0].ended and result[0].n_generated == k + 1


def test_sampling_is_seeded_and_scored_like_greedy(probe: Probe) -> None:
    kw: dict[str, Any] = {"max_new_tokens": 8, "do_sample": True, "temperature": 1.5}
    a = monitor_generation(probe, PROMPTS, seed=0, **kw)
    b = monitor_generation(probe, PROMPTS, seed=0, **kw)
    c = monitor_generation(probe, PROMPTS, seed=1, **kw)
    assert [s.tokens for s in a] == [s.tokens for s in b] != [s.tokens for s in c]
    assert [s.tokens for s in a] != [s.tokens for s in monitor_generation(probe, PROMPTS, max_new_tokens=8)]
    for prompt, seq in zip(PROMPTS, a, strict=True):
        np.testing.assert_allclose(seq.scores, reference(probe, prompt, seq.tokens)[1], rtol=0, atol=1e-5)


def test_a_probe_trained_on_every_token_and_a_model_given(probe: Probe) -> None:
    per_token = fitted(pooling="all")
    loaded = loaded_of(per_token)
    result = monitor_generation(per_token, PROMPTS[:2], model=loaded, max_new_tokens=5)
    for prompt, seq in zip(PROMPTS[:2], result, strict=True):
        np.testing.assert_allclose(seq.scores, reference(per_token, prompt, seq.tokens)[1], rtol=0, atol=1e-5)
    by_name = monitor_generation(per_token, PROMPTS[:2], model=str(per_token.model), max_new_tokens=5)
    assert [s.tokens for s in by_name] == [s.tokens for s in result]
    other = load_model(tiny_model("llama", seed=1, padding_side="left"), device="cpu")
    with pytest.raises(InvalidInputError, match="is a different model"):
        monitor_generation(probe, PROMPTS, model=other)


def test_table_and_plot(probe: Probe, monkeypatch: pytest.MonkeyPatch) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    result = monitor_generation(probe, PROMPTS[:3], max_new_tokens=6, threshold=0.6, score_pooling="max")
    rows = result.table()
    rows = rows.to_dict("records") if hasattr(rows, "to_dict") else rows
    assert [r["prompt"] for r in rows] == [0, 1, 2]
    for r, seq in zip(rows, result, strict=True):
        assert r["text"] == seq.prompt and r["n_generated"] == seq.n_generated
        assert r["stopped"] == seq.stopped and r["stop_index"] == seq.stop_index
        assert r["final"] == seq.running[-1] and r["max_score"] == seq.scores.max()
    tokens = result.table(per_token=True)
    tokens = tokens.to_dict("records") if hasattr(tokens, "to_dict") else tokens
    assert len(tokens) == sum(s.n_generated for s in result)
    assert [t["score"] for t in tokens if t["prompt"] == 1] == result[1].scores.tolist()

    i = int(np.argmax(result.stopped)) if result.stopped.any() else 0
    fig, ax = result.plot(i)
    labels = [t.get_text() for t in ax.get_xticklabels()]
    assert labels == ["[prompt]", *result[i].token_texts]
    np.testing.assert_allclose(ax.lines[0].get_ydata(), result[i].scores)
    assert any(np.allclose(line.get_ydata(), 0.6) for line in ax.lines)  # the threshold line
    plt.close(fig)
    with pytest.raises(InvalidInputError, match=r"i must be a prompt index in \[0, 3\); got 3"):
        result.plot(3)
    monkeypatch.setitem(sys.modules, "matplotlib.pyplot", None)
    with pytest.raises(MissingDependencyError, match="needs the matplotlib package"):
        result.plot(0)


def test_bad_input(probe: Probe) -> None:
    with pytest.raises(NotFittedError, match="has not been fitted yet"):
        monitor_generation(Probe(model=tiny_model("llama"), layers=LAYERS), PROMPTS)
    pos, neg = contrast()
    regression = Probe(model=tiny_model("llama"), layers=LAYERS, task="regression", device="cpu")
    regression.fit(pos[:12] + neg[:12], np.linspace(0.0, 1.0, 24))
    with pytest.raises(InvalidInputError, match="binary classification probe .*task='regression'"):
        monitor_generation(regression, PROMPTS)
    three = Probe(model=tiny_model("llama"), layers=LAYERS, random_state=0, device="cpu")
    three.fit(pos[:12] + neg[:12], [0, 1, 2] * 8)
    with pytest.raises(InvalidInputError, match=r"binary classification probe .*3 classes: \[0, 1, 2\]"):
        monitor_generation(three, PROMPTS)
    with pytest.raises(UnsupportedMethodError, match="does not support predict_proba"):
        monitor_generation(fitted(classifier="ridge"), PROMPTS)
    mean = fitted(pooling="mean")
    with pytest.raises(InvalidInputError, match="trained with pooling 'mean'.*one of: last_token, all"):
        monitor_generation(mean, PROMPTS)
    with pytest.raises(ArgumentTypeError, match="probe must be a fitted fastprobe Probe; got str"):
        monitor_generation("probe", PROMPTS)  # type: ignore[arg-type]
    with pytest.raises(InvalidInputError, match="prompts is empty"):
        monitor_generation(probe, [])
    with pytest.raises(InvalidInputError, match="max_new_tokens must be at least 1; got 0"):
        monitor_generation(probe, PROMPTS, max_new_tokens=0)
    with pytest.raises(ArgumentTypeError, match="max_new_tokens must be an int; got 2.5"):
        monitor_generation(probe, PROMPTS, max_new_tokens=2.5)  # type: ignore[arg-type]
    for bad in (float("nan"), float("inf"), 1.5, -0.1):
        with pytest.raises(InvalidInputError, match=r"threshold must be a finite number in \[0, 1\]"):
            monitor_generation(probe, PROMPTS, threshold=bad)
    with pytest.raises(ArgumentTypeError, match="threshold must be None or a finite number in"):
        monitor_generation(probe, PROMPTS, threshold="0.5")  # type: ignore[arg-type]
    with pytest.raises(UnknownOptionError, match="unknown score_pooling 'median'; expected one of: last, mean, max"):
        monitor_generation(probe, PROMPTS, score_pooling="median")
    with pytest.raises(
        InvalidInputError, match=r"batch_size must be a positive int \(prompts per batch\) or None .*got 0"
    ):
        monitor_generation(probe, PROMPTS, batch_size=0)

"""The built-in sentiment prompt set: its size and form, the seeded samples, and its spread of VADER sentiment."""

from __future__ import annotations

import numpy as np
import pytest

from fastprobe.aligned.prompt_sets import SENTIMENT_PROMPTS, sentiment_prompts
from fastprobe.exceptions import ArgumentTypeError, InvalidInputError

SIZE = 360


def test_the_set_has_360_distinct_clean_prompts() -> None:
    assert isinstance(SENTIMENT_PROMPTS, tuple)
    assert len(SENTIMENT_PROMPTS) == SIZE
    assert len(set(SENTIMENT_PROMPTS)) == SIZE
    assert len({prompt.lower() for prompt in SENTIMENT_PROMPTS}) == SIZE
    for prompt in SENTIMENT_PROMPTS:
        assert isinstance(prompt, str)
        assert prompt
        assert prompt == prompt.strip(), repr(prompt)
        assert "  " not in prompt and "\n" not in prompt, repr(prompt)


def test_every_prompt_stops_mid_sentence() -> None:
    # The beginning of a text to continue: it never ends a sentence, and it has a few words to go on.
    for prompt in SENTIMENT_PROMPTS:
        assert prompt[-1] not in ".!?;:", repr(prompt)
        assert len(prompt.split()) >= 5, repr(prompt)


def test_all_prompts_in_the_fixed_order_as_a_new_list() -> None:
    everything = sentiment_prompts()
    assert everything == list(SENTIMENT_PROMPTS)
    assert sentiment_prompts(seed=7) == list(SENTIMENT_PROMPTS)  # the seed only draws samples
    everything.append("changed")
    assert sentiment_prompts() == list(SENTIMENT_PROMPTS)
    assert SENTIMENT_PROMPTS[0] == "A disappointing lunch: the soup arrived cold, the bread was stale, so"
    assert SENTIMENT_PROMPTS[-1] == "Great news from my check-up: I'm healthy, and the doctor said"


@pytest.mark.parametrize("seed", [0, 1, 12345])
def test_a_seeded_sample_is_reproducible_and_a_subset(seed: int) -> None:
    sample = sentiment_prompts(40, seed=seed)
    assert sample == sentiment_prompts(40, seed=seed)
    assert len(sample) == 40
    assert len(set(sample)) == 40
    assert set(sample) <= set(SENTIMENT_PROMPTS)
    # The documented draw: the first n of numpy's permutation for the seed.
    order = np.random.default_rng(seed).permutation(SIZE)[:40]
    assert sample == [SENTIMENT_PROMPTS[i] for i in order]


def test_samples_of_one_seed_nest_and_different_seeds_differ() -> None:
    big = sentiment_prompts(100, seed=3)
    assert sentiment_prompts(10, seed=3) == big[:10]
    assert sentiment_prompts(1, seed=3) == big[:1]
    samples = [sentiment_prompts(20, seed=seed) for seed in range(5)]
    assert len({tuple(sample) for sample in samples}) == 5
    assert set(samples[0]) != set(samples[1])


def test_a_sample_of_the_whole_size_is_a_shuffle() -> None:
    shuffled = sentiment_prompts(SIZE, seed=0)
    assert shuffled != list(SENTIMENT_PROMPTS)
    assert sorted(shuffled) == sorted(SENTIMENT_PROMPTS)


def test_numpy_integers_are_accepted() -> None:
    assert sentiment_prompts(np.int64(8), seed=np.int32(2)) == sentiment_prompts(8, seed=2)


def test_the_sentiment_spread_under_vader() -> None:
    pytest.importorskip("vaderSentiment")
    from fastprobe.aligned import VaderScorer

    compound = np.asarray(VaderScorer()(list(SENTIMENT_PROMPTS))["compound"], dtype=np.float64)
    assert compound.shape == (SIZE,)
    assert np.mean(compound < -0.3) >= 0.25
    assert np.mean(compound > 0.3) >= 0.25
    assert np.mean((compound >= -0.3) & (compound <= 0.3)) >= 0.15
    assert compound.min() < -0.8
    assert compound.max() > 0.8
    assert compound.std() > 0.45
    # Intensities vary: several prompts at each extreme, several mild ones on each side.
    assert np.sum(compound < -0.8) >= 5 and np.sum(compound > 0.8) >= 5
    assert np.sum((compound > -0.6) & (compound < -0.3)) >= 20
    assert np.sum((compound > 0.3) & (compound < 0.6)) >= 20


def test_a_random_sample_keeps_a_spread() -> None:
    pytest.importorskip("vaderSentiment")
    from fastprobe.aligned import VaderScorer

    compound = np.asarray(VaderScorer()(sentiment_prompts(120, seed=0))["compound"], dtype=np.float64)
    assert np.mean(compound < -0.3) >= 0.2
    assert np.mean(compound > 0.3) >= 0.2
    assert compound.std() > 0.4


@pytest.mark.parametrize("n", [0, -1, SIZE + 1, 10_000])
def test_n_out_of_range_is_refused(n: int) -> None:
    with pytest.raises(InvalidInputError, match=rf"n must be between 1 and {SIZE} .*; got {n}$"):
        sentiment_prompts(n)


@pytest.mark.parametrize("n", [2.0, "5", True, [3]])
def test_n_of_the_wrong_type_is_refused(n: object) -> None:
    with pytest.raises(ArgumentTypeError, match=r"n must be an int or None; got "):
        sentiment_prompts(n)  # type: ignore[arg-type]


def test_a_bad_seed_is_refused() -> None:
    with pytest.raises(InvalidInputError, match=r"seed must be a non-negative int; got -1$"):
        sentiment_prompts(5, seed=-1)
    with pytest.raises(ArgumentTypeError, match=r"seed must be an int; got float 1.5$"):
        sentiment_prompts(5, seed=1.5)  # type: ignore[arg-type]
    with pytest.raises(ArgumentTypeError, match=r"seed must be an int; got bool True$"):
        sentiment_prompts(seed=True)

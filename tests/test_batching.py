"""Batches of a fixed number of prompts, or filled to a token budget: their shapes, and results that do not change."""

from __future__ import annotations

import numpy as np
import pytest

import fastprobe.extraction.batching as batching
from fastprobe.exceptions import InvalidInputError
from fastprobe.extraction import DEFAULT_BATCH_SIZE, extract_pooled, load_model, token_budget
from fastprobe.extraction.batching import Batches, check_batch_size, is_auto
from fastprobe.model import length_order, tokenize
from fastprobe.testing import tiny_model

PROMPTS = [
    "Paris is in France",
    "A cat",
    "The river that runs through the old town is wide and slow in summer",
    "Tokyo is a city in Japan with many people",
    "Yes",
    "Rome",
    "Water boils at one hundred degrees at sea level",
    "The sun rises in the east",
    "Birds fly",
    "Seven is a prime number and so is eleven",
]


def test_a_budget_fills_each_batch_without_passing_it() -> None:
    lengths = [3, 3, 4, 5, 5, 9, 12, 30]
    order = list(range(len(lengths)))
    chunks = Batches(order, lengths, None, budget=16)
    batches = []
    while chunks:
        batches.append(chunks.pop())
    assert batches == [[0, 1, 2], [3, 4], [5], [6], [7]]  # 3x4=12 (a 4th: 4x5=20), 2x5=10 (a 3rd: 3x9=27), ...
    assert [i for b in batches for i in b] == order  # every prompt once, in length order
    for b in batches:  # within the budget, or a single prompt longer than it
        assert len(b) * max(lengths[i] for i in b) <= 16 or len(b) == 1


def test_halving_a_budget_resplits_the_rest() -> None:
    lengths = [2] * 8
    chunks = Batches(list(range(8)), lengths, None, budget=8)
    first = chunks.pop()
    assert first == [0, 1, 2, 3]
    assert chunks.halve(first) == "batches of at most 4 padded tokens"
    rest = []
    while chunks:
        rest.append(chunks.pop())
    assert rest == [[0, 1], [2, 3], [4, 5], [6, 7]]
    fixed = Batches(list(range(8)), lengths, 4)
    assert fixed.halve(fixed.pop()) == "batch_size=2"


def test_the_default_and_none_are_auto_and_numbers_are_not() -> None:
    assert is_auto(None) and is_auto(DEFAULT_BATCH_SIZE)
    assert not is_auto(8) and not is_auto(1)
    check_batch_size(None)
    check_batch_size(DEFAULT_BATCH_SIZE)
    for bad in (0, -1, 2.5, True, "8"):
        with pytest.raises(InvalidInputError, match="batch_size must be a positive int"):
            check_batch_size(bad)
    assert token_budget("cpu", 576, 1536) == batching.CPU_TOKEN_BUDGET
    assert token_budget("cuda", 0) == batching.CPU_TOKEN_BUDGET  # widths unknown: the CPU's budget


@pytest.mark.parametrize("arch", ["llama", "gpt2"])
def test_extraction_does_not_depend_on_the_batching(arch: str, monkeypatch: pytest.MonkeyPatch) -> None:
    loaded = load_model(tiny_model(arch, padding_side="left"), device="cpu")
    poolings = ("last_token", "mean", "first_token")
    one = extract_pooled(loaded, PROMPTS, [0, 2], poolings, batch_size=1, progress=False)
    rows = tokenize(loaded, PROMPTS)
    lengths = [len(r["input_ids"]) for r in rows]
    monkeypatch.setattr(batching, "CPU_TOKEN_BUDGET", 3 * max(lengths) // 2)  # batches of 1 to several prompts
    budget = Batches(length_order(PROMPTS, rows), lengths, None, batching.CPU_TOKEN_BUDGET)
    sizes = []
    while budget:
        sizes.append(len(budget.pop()))
    assert max(sizes) > 2 and min(sizes) == 1
    for bs in (None, DEFAULT_BATCH_SIZE, 4):
        other = extract_pooled(loaded, PROMPTS, [0, 2], poolings, batch_size=bs, progress=False)
        for key in one:
            np.testing.assert_allclose(other[key], one[key], rtol=1e-4, atol=1e-5)

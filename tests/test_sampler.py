"""The sampler behind the capture and the monitor: the same kept tokens as transformers' warpers, the right draws."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from transformers import TemperatureLogitsWarper, TopKLogitsWarper, TopPLogitsWarper

from fastprobe.exceptions import ArgumentTypeError, InvalidInputError
from fastprobe.extraction.sampling import FIRST_CANDIDATES, Sampler, sampling_kwargs


def reference_kept(logits: torch.Tensor, temperature: float, top_p: float, top_k: int) -> list[set[int]]:
    """transformers' own filters, in generate's order: each row's tokens left with a finite score."""
    x = logits.clone()
    if temperature != 1.0:
        x = TemperatureLogitsWarper(temperature)(None, x)
    if top_k:
        x = TopKLogitsWarper(top_k)(None, x)
    if top_p < 1.0:
        x = TopPLogitsWarper(top_p)(None, x)
    return [set(torch.nonzero(torch.isfinite(row)).flatten().tolist()) for row in x]


def kept(sampler: Sampler, logits: torch.Tensor) -> list[set[int]]:
    ids, weights = sampler.candidates(logits)
    return [set(i[w > 0].tolist()) for i, w in zip(ids, weights, strict=True)]


def logits_with_spread(seed: int, rows: int = 6, vocab: int = 5000) -> torch.Tensor:
    """Rows from peaked to nearly flat: some nuclei hold a few tokens, some thousands (beyond the first search)."""
    g = torch.Generator().manual_seed(seed)
    scales = torch.linspace(6.0, 0.05, rows)[:, None]
    return torch.randn(rows, vocab, generator=g) * scales


@pytest.mark.parametrize(
    ("temperature", "top_p", "top_k"),
    [(1.0, 0.9, 0), (0.7, 0.5, 0), (1.5, 0.95, 0), (1.0, 1.0, 40), (1.0, 0.8, 300), (2.0, 0.99, 0), (1.0, 0.3, 7)],
)
def test_the_kept_tokens_are_those_of_transformers_warpers(temperature: float, top_p: float, top_k: int) -> None:
    for seed in range(3):
        logits = logits_with_spread(seed)
        assert kept(Sampler(temperature, top_p, top_k), logits) == reference_kept(logits, temperature, top_p, top_k)


def test_a_nucleus_beyond_the_first_candidates_is_found_whole() -> None:
    logits = logits_with_spread(0, vocab=49152)
    sizes = [len(s) for s in reference_kept(logits, 1.0, 0.9, 0)]
    assert max(sizes) > 8 * FIRST_CANDIDATES and min(sizes) < FIRST_CANDIDATES  # both searches are exercised
    assert [len(s) for s in kept(Sampler(1.0, 0.9, 0), logits)] == sizes


def test_draws_follow_the_renormalized_nucleus() -> None:
    logits = torch.tensor([[2.0, 1.5, 1.0, 0.0, -1.0, -3.0]]).repeat(20000, 1)
    sampler = Sampler(temperature=1.0, top_p=0.8)
    sampler.reseed(3)
    drawn = sampler(None, logits).argmax(dim=-1).numpy()
    p = torch.softmax(logits[0].double(), dim=0).numpy()
    # the nucleus: the smallest most-probable set whose mass reaches 0.8
    n = int(np.searchsorted(np.cumsum(p), 0.8) + 1)
    expect = np.zeros_like(p)
    expect[:n] = p[:n] / p[:n].sum()
    freq = np.bincount(drawn, minlength=len(p)) / len(drawn)
    np.testing.assert_allclose(freq, expect, atol=0.012)
    assert freq[n:].sum() == 0


def test_the_scores_it_returns_make_greedy_take_the_draw() -> None:
    logits = logits_with_spread(1)
    sampler = Sampler(1.0, 0.9, 0)
    sampler.reseed(0)
    out = sampler(None, logits)
    assert out.shape == logits.shape
    assert torch.isfinite(out).sum(dim=-1).tolist() == [1] * logits.shape[0]
    for row, token in zip(kept(Sampler(1.0, 0.9, 0), logits), out.argmax(dim=-1).tolist(), strict=True):
        assert token in row


def test_reseeding_repeats_the_draws_and_another_seed_changes_them() -> None:
    logits = logits_with_spread(2, rows=32)
    sampler = Sampler(1.0, 0.95, 0)
    draws = []
    for seed in (5, 5, 6):
        sampler.reseed(seed)
        draws.append(sampler(None, logits).argmax(dim=-1).tolist())
    assert draws[0] == draws[1] != draws[2]


def test_bad_settings_are_refused_and_greedy_ignores_them() -> None:
    with pytest.raises(InvalidInputError, match="temperature must be above 0"):
        Sampler(temperature=0.0)
    with pytest.raises(InvalidInputError, match=r"top_p must be in \(0, 1\]; got 1.5"):
        Sampler(top_p=1.5)
    with pytest.raises(InvalidInputError, match="top_k must be at least 0"):
        Sampler(top_k=-1)
    with pytest.raises(ArgumentTypeError, match="top_k must be an int"):
        Sampler(top_k=2.5)  # type: ignore[arg-type]
    with pytest.raises(ArgumentTypeError, match="temperature must be a number"):
        Sampler(temperature="hot")  # type: ignore[arg-type]
    with pytest.raises(InvalidInputError, match="temperature must be finite"):
        Sampler(temperature=float("nan"))
    assert sampling_kwargs(False, 0.0, 5.0, -1) == ({"do_sample": False}, None)
    kwargs, sampler = sampling_kwargs(True, 0.7, 0.9, 0)
    assert kwargs["do_sample"] is False and list(kwargs["logits_processor"]) == [sampler]

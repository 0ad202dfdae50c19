"""Attention-head probing: where in a text a token is, which heads move it, and what they carry.

- :func:`find_token_positions`: a substring's token positions, from the fast tokenizer's character offsets;
- :func:`score_heads`: every (layer, head) scored by how much a query token reads chosen key tokens
  (:class:`HeadScores`: a ranking, a table, a heatmap);
- :func:`build_position_dataset`: one row per example of sites read at a token position (:class:`PositionDataset`,
  saved as safetensors, imported from and exported to the workflow's JSONL format);
- :func:`head_effects`: the causal check, what is lost (a token's log-probability, a probe's accuracy) when each
  head is ablated;
- :class:`HeadAblation` and :class:`EdgeAblation` (from :mod:`fastprobe.extraction`): heads that contribute
  nothing, query-to-key edges removed, usable wherever extraction runs.
"""

from __future__ import annotations

from fastprobe.extraction import EdgeAblation, HeadAblation
from fastprobe.heads.build import build_position_dataset
from fastprobe.heads.dataset import DATASET_FORMAT, PositionDataset
from fastprobe.heads.effects import HeadEffects, head_effects
from fastprobe.heads.finder import HEAD_METRICS, HeadScores, score_heads
from fastprobe.heads.positions import OCCURRENCES, TokenSpan, find_token_positions

__all__ = [
    "DATASET_FORMAT",
    "HEAD_METRICS",
    "OCCURRENCES",
    "EdgeAblation",
    "HeadAblation",
    "HeadEffects",
    "HeadScores",
    "PositionDataset",
    "TokenSpan",
    "build_position_dataset",
    "find_token_positions",
    "head_effects",
    "score_heads",
]

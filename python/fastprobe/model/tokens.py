"""Tokens: tokenize prompts as extraction does, pad them into a batch, and ask what a model's forward accepts."""

from __future__ import annotations

import inspect
from collections.abc import Sequence
from typing import Any

from fastprobe._validation import check_prompts
from fastprobe.exceptions import InvalidInputError
from fastprobe.model.architectures import anatomy
from fastprobe.model.loading import LoadedModel

__all__ = ["accepts_kwarg", "length_order", "pad_batch", "resolve_position", "tokenize"]


def tokenize(
    loaded: LoadedModel, prompts: Sequence[str], add_special_tokens: bool = True
) -> list[dict[str, list[int]]]:
    """Tokenize prompts as extraction does (the tokenizer's defaults: special tokens, no truncation).

    Parameters
    ----------
    loaded : LoadedModel
    prompts : sequence of str
    add_special_tokens : bool, default=True
        False for texts that already hold them (a chat template's rendering).

    Returns
    -------
    list of dict
        Per prompt, ``input_ids``, ``attention_mask`` and (where the tokenizer gives them) ``token_type_ids``.

    Raises
    ------
    InvalidInputError
        If a prompt is longer than the model's context (``max_position_embeddings`` or its equivalent): it is
        refused, never truncated, since truncation would silently change which token is last. Also for what
        extraction's prompt check refuses (a single string, no prompts, ``""``) and a prompt that gives no tokens.
    """
    check_prompts(prompts, non_empty=True, empty_strings=False)
    enc = loaded.tokenizer(list(prompts), add_special_tokens=add_special_tokens)
    keys = [k for k in ("input_ids", "attention_mask", "token_type_ids") if k in enc]
    rows = [{k: list(enc[k][i]) for k in keys} for i in range(len(prompts))]
    limit = anatomy(loaded.model).max_positions
    if limit is not None:
        for i, row in enumerate(rows):
            if len(row["input_ids"]) > limit:
                raise InvalidInputError(
                    f"prompt {i} is {len(row['input_ids'])} tokens long; the model accepts at most {limit} "
                    f"(its context length). Shorten it: fastprobe does not truncate prompts"
                )
    for i, row in enumerate(rows):
        if not row["input_ids"]:
            raise InvalidInputError(f"prompt {i} ({prompts[i]!r}) tokenizes to nothing")
    return rows


def pad_batch(loaded: LoadedModel, rows: Sequence[dict[str, list[int]]], side: str | None = None) -> dict[str, Any]:
    """Pad token rows on the tokenizer's side into tensors, with positions that count real tokens only.

    Parameters
    ----------
    loaded : LoadedModel
    rows : sequence of dict
        From :func:`tokenize`.
    side : {"left", "right"}, optional
        Pad on this side instead of the tokenizer's (generation pads on the left).

    Returns
    -------
    dict of str to torch.Tensor
        Each key of the rows as a ``(len(rows), longest)`` long tensor, plus ``position_ids``: a left-padded prompt
        sees the same positions as it would alone.
    """
    import torch

    tok = loaded.tokenizer
    width = max(len(r["input_ids"]) for r in rows)
    left = (side or tok.padding_side) == "left"
    fill = {"input_ids": tok.pad_token_id if tok.pad_token_id is not None else 0, "attention_mask": 0}
    out: dict[str, Any] = {}
    for key in rows[0]:
        data = torch.full((len(rows), width), fill.get(key, 0), dtype=torch.long)
        for i, r in enumerate(rows):
            values = torch.tensor(r[key], dtype=torch.long)
            if left:
                data[i, width - len(values) :] = values
            else:
                data[i, : len(values)] = values
        out[key] = data
    out["position_ids"] = (out["attention_mask"].cumsum(-1) - 1).clamp(min=0)
    return out


def accepts_kwarg(model: Any, name: str) -> bool:
    """Tell whether ``model.forward`` takes a keyword argument ``name`` (True when its signature cannot be read).

    Parameters
    ----------
    model : torch.nn.Module
    name : str

    Returns
    -------
    bool
    """
    try:
        return name in inspect.signature(model.forward).parameters
    except (TypeError, ValueError):
        return True


def length_order(prompts: Sequence[str], rows: Sequence[dict[str, list[int]]]) -> list[int]:
    """Return the prompt indices sorted by (token length, text): batches with little padding, shared prefixes together.

    ``rows``: the prompts' tokenizations (:func:`tokenize`).
    """
    return sorted(range(len(prompts)), key=lambda i: (len(rows[i]["input_ids"]), prompts[i]))


def resolve_position(position: int, n_tokens: int, what: str, subject: str) -> int:
    """Return a token position as an index from the start (a negative one counts from the end).

    Parameters
    ----------
    position : int
    n_tokens : int
        The tokens of the text it points into.
    what, subject : str
        How the error names the position and the text (``"query position"``, ``"prompt 3 ('The cat ...')"``).

    Raises
    ------
    InvalidInputError
        If the position is outside the text: ``"{what} {position} is outside {subject}, which has {n} tokens
        (valid: -n to n-1)"``.
    """
    index = position + n_tokens if position < 0 else position
    if not 0 <= index < n_tokens:
        raise InvalidInputError(
            f"{what} {position} is outside {subject}, which has {n_tokens} tokens "
            f"(valid: {-n_tokens} to {n_tokens - 1})"
        )
    return index

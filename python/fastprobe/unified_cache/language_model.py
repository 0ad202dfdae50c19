"""The unified cache's language-model work: one pass for perplexity and logits, or both from cached activations."""

from __future__ import annotations

from typing import Any

import numpy as np

from fastprobe.features import ModelContext
from fastprobe.unified_cache.head import final_head
from fastprobe.unified_cache.records import LogitWriter, select_positions

__all__ = ["language_model_pass", "logits_from_cache", "perplexity_from_cache"]


def language_model_pass(
    ctx: ModelContext,
    prompts: list[str],
    want_perplexity: set[str],
    want_logits: set[str],
    batch_size: int,
    logits_writer: LogitWriter | None,
    positions: str,
) -> None:
    """Run the causal language model once over ``prompts``; cache the perplexities and logits wanted.

    ``logits_writer`` receives the logits of the prompts in ``want_logits`` (at ``positions``), batched by
    ``batch_size`` prompts sorted by length.
    """
    import torch
    from tqdm.auto import tqdm

    from fastprobe.extraction.perplexity import (
        PERPLEXITY_RECORD,
        batch_logits,
        check_predictable,
        perplexity_stats,
        perplexity_store,
        write_perplexity,
    )
    from fastprobe.model import length_order, pad_batch, tokenize

    rows = tokenize(ctx.loaded, prompts)
    scored = [i for i, p in enumerate(prompts) if p in want_perplexity]
    check_predictable([prompts[i] for i in scored], [rows[i] for i in scored])
    order = length_order(prompts, rows)
    ppl_store = perplexity_store(ctx)
    ppl_names: list[str] = []
    ppl_values: list[np.ndarray] = []
    writer = logits_writer if want_logits else None

    def flush_perplexity() -> None:
        if ppl_names:
            write_perplexity(ppl_store, ppl_names, np.concatenate(ppl_values))
            ppl_names.clear()
            ppl_values.clear()

    bar = tqdm(total=len(prompts), desc="language model", unit="prompt", dynamic_ncols=True)
    try:
        for start in range(0, len(order), batch_size):
            idx = order[start : start + batch_size]
            batch = pad_batch(ctx.loaded, [rows[i] for i in idx])
            batch.pop("token_type_ids", None)
            with torch.inference_mode():
                logits = batch_logits(ctx, batch)
                ppl_rows = [j for j, i in enumerate(idx) if prompts[i] in want_perplexity]
                if ppl_rows:
                    stats = perplexity_stats(logits, batch["input_ids"], batch["attention_mask"])
                    ppl_names.extend(prompts[idx[j]] for j in ppl_rows)
                    ppl_values.append(stats[ppl_rows])
                logit_rows = [j for j, i in enumerate(idx) if prompts[i] in want_logits]
                if writer is not None and logit_rows:
                    mask = batch["attention_mask"][logit_rows]
                    selected, counts = select_positions(logits[logit_rows], mask, positions)
                    writer.add([prompts[idx[j]] for j in logit_rows], selected, counts)
            del logits
            bar.update(len(idx))
            if len(ppl_names) >= PERPLEXITY_RECORD:
                flush_perplexity()
        flush_perplexity()
        if writer is not None:
            writer.flush()
    finally:
        bar.close()


def logits_from_cache(
    ctx: ModelContext, prompts: list[str], last: int, writer: LogitWriter, positions: str, batch_size: int
) -> None:
    """Write the logits of ``prompts`` computed from their cached last-layer activations (final norm, LM head)."""
    import torch

    head = final_head(ctx)
    for start in range(0, len(prompts), batch_size):
        chunk = prompts[start : start + batch_size]
        if positions == "last":
            hidden = ctx.store.read_pooled(chunk, [last], "last_token")
            counts = np.ones(len(chunk), dtype=np.int64)
        else:
            hidden, offsets = ctx.store.read_tokens(chunk, [last])
            counts = np.diff(offsets).astype(np.int64)
        writer.add(chunk, head(torch.from_numpy(np.ascontiguousarray(hidden))), counts)
    writer.flush()


def perplexity_from_cache(
    ctx: ModelContext, prompts: list[str], rows: list[dict[str, list[int]]], last: int, store: Any, batch_size: int
) -> None:
    """Write the perplexity features of ``prompts`` (tokenized as ``rows``) from their cached last-layer tokens."""
    import torch

    from fastprobe.extraction.perplexity import perplexity_stats, write_perplexity
    from fastprobe.model import pad_batch

    head = final_head(ctx)
    for start in range(0, len(prompts), batch_size):
        chunk = prompts[start : start + batch_size]
        batch = pad_batch(ctx.loaded, rows[start : start + batch_size])
        mask = batch["attention_mask"].bool()
        values, _ = ctx.store.read_tokens(chunk, [last])
        hidden = torch.zeros((*mask.shape, values.shape[1]), dtype=torch.float32)
        hidden[mask] = torch.from_numpy(np.ascontiguousarray(values))  # real tokens, in order, either padding side
        write_perplexity(store, chunk, perplexity_stats(head(hidden), batch["input_ids"], batch["attention_mask"]))

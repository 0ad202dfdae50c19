"""The unified cache's one pass of the causal language model: perplexity features and logits from the same logits."""

from __future__ import annotations

import numpy as np

from fastprobe.features import ModelContext
from fastprobe.unified_cache.records import LogitWriter, select_positions

__all__ = ["language_model_pass"]


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
    from fastprobe.model import pad_batch, tokenize

    rows = tokenize(ctx.loaded, prompts)
    scored = [i for i, p in enumerate(prompts) if p in want_perplexity]
    check_predictable([prompts[i] for i in scored], [rows[i] for i in scored])
    order = sorted(range(len(prompts)), key=lambda i: (len(rows[i]["input_ids"]), prompts[i]))
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

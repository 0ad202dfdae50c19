"""The model's final norm and language-model head as one function, to turn cached last-layer activations into logits."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastprobe.exceptions import FastprobeError, InvalidInputError
from fastprobe.features import ModelContext

__all__ = ["FINAL_NORMS", "final_head"]

#: Paths, under the decoder (``get_decoder()``) or base model, of the norm applied after the last block.
FINAL_NORMS: tuple[str, ...] = ("norm", "final_layernorm", "final_layer_norm", "ln_f", "norm_f")


def final_head(ctx: ModelContext) -> Callable[[Any], Any]:
    """Return the model's final norm and language-model head as one function: last block output -> logits."""
    import torch

    from fastprobe.extraction.perplexity import causal_lm

    if ctx.loaded.remote:
        raise InvalidInputError(
            "computing logits from cached activations needs the model's weights on this machine; use a "
            "UnifiedCache with remote=False"
        )
    lm = causal_lm(ctx)
    decoder = lm.get_decoder() if callable(getattr(lm, "get_decoder", None)) else None
    norm = None
    for owner in (decoder, getattr(lm, "base_model", None)):
        for name in FINAL_NORMS:
            module = getattr(owner, name, None) if owner is not None else None
            if isinstance(module, torch.nn.Module):
                norm = module
                break
        if norm is not None:
            break
    if norm is None:
        raise FastprobeError(f"cannot find the final norm of {type(lm).__name__}: looked for " + ", ".join(FINAL_NORMS))
    project = getattr(decoder, "project_out", None)  # OPT's projection to the embedding width
    head = lm.get_output_embeddings()
    cap = getattr(lm.config, "final_logit_softcapping", None)
    param = next(lm.parameters())

    def logits(hidden: Any) -> Any:
        with torch.inference_mode():
            x = norm(hidden.to(device=param.device, dtype=param.dtype))
            if isinstance(project, torch.nn.Module):
                x = project(x)
            out = head(x).float()
            if cap:
                out = torch.tanh(out / cap) * cap
            return out

    return logits

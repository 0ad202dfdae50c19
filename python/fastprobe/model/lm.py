"""The model with its language-model head (perplexity, generation), loaded once per process beside the body."""

from __future__ import annotations

import threading
from typing import Any

from fastprobe.exceptions import InvalidInputError, ModelLoadError
from fastprobe.model.loading import LoadedModel
from fastprobe.model.registry import register_model_cache
from fastprobe.model.source import from_pretrained

__all__ = ["causal_lm"]

_LMS: dict[tuple[str, str, str, str], Any] = register_model_cache({})  # cleared by clear_model_cache
_LMS_LOCK = threading.Lock()


def causal_lm(loaded: LoadedModel) -> Any:
    """Return the model with its language-model head (loaded once per process; extraction loads it without).

    Parameters
    ----------
    loaded : LoadedModel
        A model with local files (from :func:`~fastprobe.model.load_model` or
        :func:`~fastprobe.model.load_weightless`): the head is loaded from the same files, device and dtype.

    Returns
    -------
    torch.nn.Module
        A transformers ``AutoModelForCausalLM`` in eval mode, on the model's device and in its dtype.

    Raises
    ------
    InvalidInputError
        If transformers has no causal language model for the architecture.
    ModelLoadError
        If the model's files cannot be read.
    """
    import torch
    from transformers import AutoModelForCausalLM

    dtype = next(loaded.model.parameters()).dtype
    source = loaded.source
    assert source is not None, "causal_lm needs a model with local files"
    key = (source.name, source.commit or source.path, loaded.device, str(dtype))
    with _LMS_LOCK:
        if key not in _LMS:
            try:
                lm = from_pretrained(AutoModelForCausalLM, source, dtype=dtype)
            except ModelLoadError as err:
                if isinstance(err.__cause__, OSError):  # the files, not the architecture
                    raise
                raise InvalidInputError(
                    f"perplexity needs a causal language model; {loaded.name!r} "
                    f"({type(loaded.model).__name__}) has no language-model head transformers can load: "
                    f"{err.__cause__}"
                ) from err
            lm.to(loaded.device)
            lm.eval()
            lm.requires_grad_(False)
            _LMS[key] = lm
        lm = _LMS[key]
    assert isinstance(lm, torch.nn.Module)
    return lm

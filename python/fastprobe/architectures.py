"""Where each supported architecture keeps the modules that extraction hooks (see :mod:`fastprobe.model.architectures`).

A facade: the home of these names is :mod:`fastprobe.model.architectures`.
"""

from __future__ import annotations

from fastprobe.model.architectures import (
    ATTENTION_PROJECTIONS,
    BLOCK_PATHS,
    MLP_PATHS,
    Anatomy,
    anatomy,
    decoder_blocks,
)

__all__ = ["ATTENTION_PROJECTIONS", "BLOCK_PATHS", "MLP_PATHS", "Anatomy", "anatomy", "decoder_blocks"]

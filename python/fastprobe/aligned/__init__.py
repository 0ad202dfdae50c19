"""Aligned probing: relate what a model does (scores of its prompts and continuations) to what it represents.

So far: :mod:`fastprobe.aligned.templates`, prompt templates with system and user messages, rendered through the
tokenizer's chat template (or a plain join), with the character and token spans of the prompt's own text inside the
templated input.
"""

from __future__ import annotations

from fastprobe.aligned.templates import (
    FOLD_SEPARATOR,
    PLAIN_SEPARATOR,
    WORKFLOW_TEMPLATES,
    PromptTemplate,
    TemplatedInput,
    render,
    render_all,
)

__all__ = [
    "FOLD_SEPARATOR",
    "PLAIN_SEPARATOR",
    "WORKFLOW_TEMPLATES",
    "PromptTemplate",
    "TemplatedInput",
    "render",
    "render_all",
]

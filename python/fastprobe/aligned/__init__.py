"""Aligned probing: relate what a model does (scores of its prompts and continuations) to what it represents.

So far:

- :mod:`~fastprobe.aligned.templates`: prompt templates with system and user messages, rendered through the
  tokenizer's chat template (or a plain join), with the character and token spans of the prompt's own text inside
  the templated input;
- :mod:`~fastprobe.aligned.scorers`: behavioural scores from any callable (texts to named scores), checked and cached
  by text; :mod:`~fastprobe.aligned.perspective`, a Perspective API client; :mod:`~fastprobe.aligned.offline`,
  offline scorers (VADER, alt-profanity-check, a lexicon);
- :mod:`~fastprobe.aligned.rtp`: the RealToxicityPrompts JSONL reader;
- :mod:`~fastprobe.aligned.prompt_sets`: a built-in set of 360 prompts to continue, with a real spread of sentiment
  (about a third negative, neutral and positive under VADER) for offline runs (:func:`sentiment_prompts`);
- :mod:`~fastprobe.aligned.capture`: continuations sampled with the KV cache on, and in the same pass the chosen
  sites pooled over the prompt, the instruction and the generated tokens (:func:`capture_generation`), streamed
  batch by batch into a :class:`CaptureStore` (:mod:`~fastprobe.aligned.capture_store`) when one is given, so a
  killed run resumes where it stopped;
- :mod:`~fastprobe.aligned.monitor`: a live monitor, a fitted probe scoring each generated token from the hooks of
  the generation itself, with a running statistic that stops a sequence once it reaches a threshold
  (:func:`monitor_generation`, :class:`MonitorResult`).
- :mod:`~fastprobe.aligned.scenarios`: the four scenarios (input, output, forward, backward) at every captured site,
  each as task, control and MDL cells of a resumable experiment (:func:`run_scenarios`, :class:`ScenarioResults`;
  one scenario's examples for any tool: :func:`scenario_data`).
"""

from __future__ import annotations

from fastprobe.aligned.capture import (
    CAPTURE_POOLINGS,
    PLAIN_TEMPLATE,
    SPANS,
    CaptureRow,
    GenerationCapture,
    capture_generation,
)
from fastprobe.aligned.capture_store import CaptureStore
from fastprobe.aligned.monitor import (
    MONITOR_TRAIN_POOLINGS,
    SCORE_POOLINGS,
    MonitoredSequence,
    MonitorResult,
    monitor_generation,
)
from fastprobe.aligned.offline import LexiconScorer, ProfanityScorer, VaderScorer
from fastprobe.aligned.perspective import (
    PERSPECTIVE_ATTRIBUTES,
    PERSPECTIVE_KEY_ENV,
    PERSPECTIVE_URL,
    PerspectiveScorer,
)
from fastprobe.aligned.prompt_sets import SENTIMENT_PROMPTS, sentiment_prompts
from fastprobe.aligned.rtp import RTP_ATTRIBUTES, RTPPrompt, read_rtp
from fastprobe.aligned.scenarios import (
    MDL_MIN_FIRST_BLOCK,
    SCENARIOS,
    SCENARIOS_EXPERIMENT,
    SUMMARIES,
    ScenarioData,
    ScenarioResults,
    mdl_fractions,
    run_scenarios,
    scenario_data,
)
from fastprobe.aligned.scorers import ScoreCache, Scorer, score_texts, scorer_identity
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
    "CAPTURE_POOLINGS",
    "FOLD_SEPARATOR",
    "MDL_MIN_FIRST_BLOCK",
    "MONITOR_TRAIN_POOLINGS",
    "PERSPECTIVE_ATTRIBUTES",
    "PERSPECTIVE_KEY_ENV",
    "PERSPECTIVE_URL",
    "PLAIN_SEPARATOR",
    "PLAIN_TEMPLATE",
    "RTP_ATTRIBUTES",
    "SCENARIOS",
    "SCENARIOS_EXPERIMENT",
    "SCORE_POOLINGS",
    "SENTIMENT_PROMPTS",
    "SPANS",
    "SUMMARIES",
    "WORKFLOW_TEMPLATES",
    "CaptureRow",
    "CaptureStore",
    "GenerationCapture",
    "LexiconScorer",
    "MonitorResult",
    "MonitoredSequence",
    "PerspectiveScorer",
    "ProfanityScorer",
    "PromptTemplate",
    "RTPPrompt",
    "ScenarioData",
    "ScenarioResults",
    "ScoreCache",
    "Scorer",
    "TemplatedInput",
    "VaderScorer",
    "capture_generation",
    "mdl_fractions",
    "monitor_generation",
    "read_rtp",
    "render",
    "render_all",
    "run_scenarios",
    "scenario_data",
    "score_texts",
    "scorer_identity",
    "sentiment_prompts",
]

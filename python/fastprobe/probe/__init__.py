"""``Probe``: a linear probe on a language model's activations (lmprobe's ``probe`` module path).

The package holds the probe's parts, each a module: ``config`` (parameter checks, model context, layers to read),
``pipeline`` (the feature pipeline: scaling, preprocessing, mass-mean column, classifier; prediction from features),
``inspection`` (layer selection, importance, steering vectors), ``evaluation``, ``persistence`` and
``layer_sweep`` (``LayerSweepResult``). ``ProbeEnsemble`` uses the same parts.
"""

from __future__ import annotations

from fastprobe.metrics import classification_metrics  # noqa: F401  (defined in this module before; now in metrics)
from fastprobe.probe.config import (  # noqa: F401  (public constants of the module before it became a package)
    COMPUTE_BACKENDS,
    NORMALIZE_LAYERS,
    PREPROCESSING_STEPS,
    PROBE_BACKENDS,
    TASKS,
)
from fastprobe.probe.inspection import IMPORTANCE_METRICS
from fastprobe.probe.layer_sweep import LayerSweepResult
from fastprobe.probe.probe import LinearProbe, Probe

__all__ = ["IMPORTANCE_METRICS", "LayerSweepResult", "LinearProbe", "Probe"]

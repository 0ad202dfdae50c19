"""``ProbeEnsemble``: several probes voting as one classifier (lmprobe's ``fastprobe.ensemble`` module path)."""

from __future__ import annotations

from fastprobe.ensemble.checks import VOTING
from fastprobe.ensemble.ensemble import ProbeEnsemble
from fastprobe.ensemble.resampling import MAX_DRAWS
from fastprobe.layers import LAYER_SPECS  # noqa: F401  (importable from this module before)

__all__ = ["MAX_DRAWS", "VOTING", "ProbeEnsemble"]

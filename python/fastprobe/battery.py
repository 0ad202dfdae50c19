"""lmprobe's ``battery`` module path: the baseline battery and its results (defined in :mod:`fastprobe.baselines`)."""

from __future__ import annotations

from fastprobe.baselines import BaselineBattery, BaselineResult, BaselineResults

__all__ = ["BaselineBattery", "BaselineResult", "BaselineResults"]

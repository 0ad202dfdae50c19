"""lmprobe's ``activation_baseline`` module path: :class:`ActivationBaseline`, defined in :mod:`fastprobe.baselines`."""

from __future__ import annotations

from fastprobe.baselines import ActivationBaseline

__all__ = ["ActivationBaseline"]

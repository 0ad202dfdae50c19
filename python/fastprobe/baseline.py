"""lmprobe's ``baseline`` module path: :class:`BaselineProbe` (defined in :mod:`fastprobe.baselines`)."""

from __future__ import annotations

from fastprobe.baselines import BaselineProbe

__all__ = ["BaselineProbe"]

"""lmprobe's ``scaling`` module: per-layer feature scaling (a facade over :mod:`fastprobe.estimators`)."""

from fastprobe.estimators import PerLayerScaler

__all__ = ["PerLayerScaler"]

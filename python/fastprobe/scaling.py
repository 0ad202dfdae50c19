"""lmprobe's ``scaling`` module: per-layer feature scaling (a facade over :mod:`fastprobe.estimators`)."""

from fastprobe.estimators import LayerScaler, PerLayerScaler  # noqa: F401  (LayerScaler: importable here before)

__all__ = ["PerLayerScaler"]

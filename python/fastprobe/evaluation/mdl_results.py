"""The results of MDL probing: one representation's online code, and every layer's with a table and a plot.

:class:`MDLResult` is what :func:`~fastprobe.evaluation.online_code` returns; :class:`MDLLayers`, what
:func:`~fastprobe.evaluation.online_code_layers` returns.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from fastprobe.probe.inspection import pyplot

__all__ = ["MDLLayers", "MDLResult"]


@dataclass(frozen=True)
class MDLResult:
    """The online codelength of one representation's labels.

    Attributes
    ----------
    codelength : float
        The online codelength: the first block plus every later block (in ``unit``).
    uniform_codelength : float
        All ``N`` labels sent with the first block's code (in ``unit``).
    compression : float
        ``uniform_codelength / codelength``: 1 when the probe teaches nothing, larger when it does.
    unit : {"bits", "squared error"}
        ``"squared error"`` only for ``mode="squared_error_proxy"``, whose numbers are not codelengths.
    mode : {"categorical", "gaussian", "squared_error_proxy"}
    task : {"classification", "regression"}
    block_ends : list of int
        ``t_1 < ... < t_k = N``: block ``i`` holds shuffled examples ``[t_{i-1}, t_i)`` (``t_0 = 0``).
    block_costs : list of float
        Each block's cost (in ``unit``), the first block's included; they sum to ``codelength``.
    n_examples : int
    n_classes : int or None
        ``K`` for classification.
    precision : float or None
        The Gaussian code's cell width.
    target_range : tuple of float or None
        ``(low, high)`` of the targets for the Gaussian code.
    block_accuracy : list of float or None
        Classification: the accuracy of each block's probe on the block it codes (``nan`` for the first block).
    block_mse : list of float or None
        Regression: the mean squared error of each block's probe on the block it codes (``nan`` for the first).
    block_sigma : list of float or None
        Gaussian code: the ``sigma`` each block was coded with (``nan`` for the first block).
    random_state : int
        The seed of the shuffle.
    """

    codelength: float
    uniform_codelength: float
    compression: float
    unit: str
    mode: str
    task: str
    block_ends: list[int]
    block_costs: list[float]
    n_examples: int
    n_classes: int | None = None
    precision: float | None = None
    target_range: tuple[float, float] | None = None
    block_accuracy: list[float] | None = None
    block_mse: list[float] | None = None
    block_sigma: list[float] | None = None
    random_state: int = 0


@dataclass
class MDLLayers:
    """The online codelength of every layer (:func:`online_code_layers`).

    Attributes
    ----------
    results : dict
        Layer name to :class:`MDLResult`, in layer order.
    """

    results: dict[Any, MDLResult] = field(default_factory=dict)

    @property
    def layers(self) -> list[Any]:
        """The layer names, in order."""
        return list(self.results)

    def __getitem__(self, layer: Any) -> MDLResult:
        return self.results[layer]

    def __len__(self) -> int:
        return len(self.results)

    def table(self) -> Any:
        """Return one row per layer: ``layer``, ``codelength``, ``uniform``, ``compression``.

        Returns
        -------
        pandas.DataFrame or list of dict
            A DataFrame when pandas is installed, else a list of row dicts.
        """
        rows = [
            {
                "layer": layer,
                "codelength": r.codelength,
                "uniform": r.uniform_codelength,
                "compression": r.compression,
            }
            for layer, r in self.results.items()
        ]
        try:
            import pandas as pd
        except ImportError:  # pandas is optional
            return rows
        return pd.DataFrame(rows)

    def plot(self, ax: Any = None) -> tuple[Any, Any]:
        """Plot the compression by layer, with a dashed line at 1 (no compression).

        Parameters
        ----------
        ax : matplotlib.axes.Axes, optional

        Returns
        -------
        (matplotlib.figure.Figure, matplotlib.axes.Axes)
        """
        plt = pyplot()
        fig, ax = (ax.figure, ax) if ax is not None else plt.subplots(figsize=(7, 3.5))
        layers = self.layers
        positions = list(range(len(layers)))
        ax.plot(positions, [self.results[layer].compression for layer in layers], marker="o", label="compression")
        ax.axhline(1.0, linestyle="--", color="grey", label="no compression")
        ax.set_xticks(positions)
        ax.set_xticklabels([str(layer) for layer in layers])
        proxy = any(r.unit != "bits" for r in self.results.values())
        ax.set_xlabel("layer")
        ax.set_ylabel("compression (squared-error proxy)" if proxy else "compression (uniform / online bits)")
        ax.legend(loc="best", fontsize="small")
        return fig, ax

"""Type stubs of the compiled extension ``fastprobe._core`` (checked by mypy.stubtest in ``make lint``)."""

from collections.abc import Callable
from typing import Any, final

import numpy as np
import numpy.typing as npt

__all__ = [
    "DETACH_MIN_BYTES",
    "POOLING_METHODS",
    "STORAGE_DTYPES",
    "THREADS_ENV",
    "ActivationStore",
    "__version__",
    "effective_threads",
    "fit_scaler",
    "group_lasso_fit",
    "logistic_path",
    "mass_mean_fit",
    "online_code_logistic",
    "pool_padded",
    "pool_ragged",
    "reduce_scores",
    "ridge_path",
    "scale_in_place",
    "sweep_layers",
]

__version__: str
POOLING_METHODS: list[str]
THREADS_ENV: str
STORAGE_DTYPES: list[str]
DETACH_MIN_BYTES: int

def pool_padded(
    hidden: npt.NDArray[np.float32],
    attention_mask: npt.NDArray[np.bool_],
    method: str,
    n_threads: int | None = None,
) -> npt.NDArray[np.float32]: ...
def pool_ragged(
    values: npt.NDArray[np.float32],
    offsets: npt.NDArray[np.int64],
    method: str,
    n_threads: int | None = None,
) -> npt.NDArray[np.float32]: ...
def reduce_scores(
    scores: npt.NDArray[np.float64],
    offsets: npt.NDArray[np.int64],
    method: str,
    n_threads: int | None = None,
) -> npt.NDArray[np.float64]: ...
def sweep_layers(
    source: list[npt.NDArray[np.float32]] | tuple[ActivationStore, list[str], list[int], str],
    targets: npt.NDArray[np.float64] | npt.NDArray[np.int64],
    n_classes: int,
    sample_weight: npt.NDArray[np.float64] | None,
    solver: str,
    grid: list[float],
    *,
    fit_intercept: bool = True,
    mode: str = "auto",
    max_iter: int = 100,
    tol: float = 1e-4,
    whiten: bool = False,
    shrinkage: float = 0.0,
    standardize: bool = True,
    n_threads: int | None = None,
    workers: int | None = None,
    progress: Callable[[int], object] | None = None,
) -> list[tuple[tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]] | None, Any]]: ...
def effective_threads(n_threads: int | None = None) -> int: ...
def ridge_path(
    x: npt.NDArray[np.float32],
    y: npt.NDArray[np.float64],
    sample_weight: npt.NDArray[np.float64] | None,
    alphas: list[float],
    fit_intercept: bool = True,
    mode: str = "auto",
    n_threads: int | None = None,
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64], npt.NDArray[np.float64], bool]: ...
def logistic_path(
    x: npt.NDArray[np.float32],
    y: npt.NDArray[np.int64],
    n_classes: int,
    sample_weight: npt.NDArray[np.float64] | None,
    cs: list[float],
    fit_intercept: bool = True,
    max_iter: int = 100,
    tol: float = 1e-4,
    n_threads: int | None = None,
) -> list[tuple[npt.NDArray[np.float64], npt.NDArray[np.float64], int, bool]]: ...
def online_code_logistic(
    layers: list[npt.NDArray[np.float32]],
    order: npt.NDArray[np.int64],
    y: npt.NDArray[np.int64],
    n_classes: int,
    ends: list[int],
    *,
    c: float = 1.0,
    fit_intercept: bool = True,
    max_iter: int = 100,
    tol: float = 1e-4,
    standardize: bool = True,
    warm_start: bool = True,
    floor: float = 1e-12,
    n_threads: int | None = None,
    progress: Callable[[int], object] | None = None,
) -> list[tuple[npt.NDArray[np.float64], npt.NDArray[np.uint64], npt.NDArray[np.uint64], npt.NDArray[np.bool_]]]: ...
def group_lasso_fit(
    x: npt.NDArray[np.float32],
    y: npt.NDArray[np.int64],
    sample_weight: npt.NDArray[np.float64] | None,
    groups: list[int],
    alpha: float,
    group_weights: list[float] | None = None,
    fit_intercept: bool = True,
    max_iter: int = 1000,
    tol: float = 1e-4,
    n_threads: int | None = None,
) -> tuple[npt.NDArray[np.float64], float, npt.NDArray[np.float64], int, bool, float]: ...
def mass_mean_fit(
    x: npt.NDArray[np.float32],
    y: npt.NDArray[np.int64],
    sample_weight: npt.NDArray[np.float64] | None,
    whiten: bool = False,
    shrinkage: float = 0.0,
    n_threads: int | None = None,
) -> tuple[npt.NDArray[np.float64], float, float]: ...
def fit_scaler(
    x: npt.NDArray[np.float32], n_layers: int, mode: str, n_threads: int | None = None
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]: ...
def scale_in_place(
    x: npt.NDArray[np.float32],
    mean: npt.NDArray[np.float64],
    scale: npt.NDArray[np.float64],
    n_threads: int | None = None,
) -> None: ...

@final
class ActivationStore:
    def __new__(cls, path: str, dtype: str = "bfloat16", fingerprint: str = "{}") -> ActivationStore: ...
    @property
    def path(self) -> str: ...
    @property
    def dtype(self) -> str: ...
    def description(self) -> str: ...
    def write(
        self,
        prompts: list[str],
        counts: npt.NDArray[np.int64],
        sites: list[int],
        tokens: npt.NDArray[np.float32],
        dtype: str | None = None,
        n_threads: int | None = None,
        keep_tokens: bool = True,
    ) -> None: ...
    def write_last_token(
        self,
        prompts: list[str],
        counts: npt.NDArray[np.int64],
        sites: list[int],
        vectors: npt.NDArray[np.float32],
        dtype: str | None = None,
        n_threads: int | None = None,
    ) -> None: ...
    def read_pooled(
        self, prompts: list[str], sites: list[int], pooling: str = "last_token", n_threads: int | None = None
    ) -> npt.NDArray[np.float32]: ...
    def read_tokens(
        self, prompts: list[str], sites: list[int], n_threads: int | None = None
    ) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.int64]]: ...
    def contains(
        self, prompts: list[str], sites: list[int], tokens: bool = False, pooling: str | None = None
    ) -> list[bool]: ...
    def prompts(self) -> list[tuple[str, list[int], int]]: ...
    def stats(self) -> dict[str, object]: ...
    def verify(self, n_threads: int | None = None) -> list[str]: ...
    def evict(self, budget_bytes: int) -> int: ...
    def compact(self) -> int: ...

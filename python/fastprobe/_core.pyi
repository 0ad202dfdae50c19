"""Type stubs of the compiled extension ``fastprobe._core`` (checked by mypy.stubtest in ``make lint``)."""

import numpy as np
import numpy.typing as npt

__all__ = [
    "DETACH_MIN_BYTES",
    "POOLING_METHODS",
    "THREADS_ENV",
    "__version__",
    "effective_threads",
    "pool_padded",
    "pool_ragged",
]

__version__: str
POOLING_METHODS: list[str]
THREADS_ENV: str
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
def effective_threads(n_threads: int | None = None) -> int: ...

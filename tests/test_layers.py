from __future__ import annotations

import pytest

from fastprobe import InvalidInputError, UnknownOptionError
from fastprobe.layers import resolve_layers


@pytest.mark.parametrize(
    ("spec", "n", "want"),
    [
        (0, 30, [0]),
        (-1, 30, [29]),
        (-30, 30, [0]),
        ([3, -1, 3, 0], 30, [0, 3, 29]),
        ("last", 30, [29]),
        ("all", 4, [0, 1, 2, 3]),
        ("middle", 32, list(range(10, 22))),  # lmprobe: range(n // 3, n - n // 3)
        ("middle", 30, list(range(10, 20))),
    ],
)
def test_resolve(spec: object, n: int, want: list[int]) -> None:
    assert resolve_layers(spec, n) == want  # type: ignore[arg-type]


def test_errors() -> None:
    with pytest.raises(
        InvalidInputError, match=r"layer 30 is out of range for a model with 30 layers \(valid: -30 to 29\)"
    ):
        resolve_layers(30, 30)
    with pytest.raises(InvalidInputError, match="layer -31 is out of range"):
        resolve_layers([-31], 30)
    with pytest.raises(UnknownOptionError, match="unknown layer specification 'top'.*middle, last, all"):
        resolve_layers("top", 30)
    with pytest.raises(InvalidInputError, match="the layer list is empty"):
        resolve_layers([], 30)
    with pytest.raises(InvalidInputError, match="a layer index must be an int; got 1.5"):
        resolve_layers([1.5], 30)  # type: ignore[list-item]

"""Shared fixtures: tiny random-weight models, the real SmolLM2, and GPU detection."""

from __future__ import annotations

import pathlib

import pytest


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    import torch

    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA device")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def smollm2_path() -> pathlib.Path:
    """The real SmolLM2-135M-Instruct, converted once into fastprobe's cache."""
    from fastprobe.models import smollm2

    return smollm2()

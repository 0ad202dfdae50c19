"""Shared fixtures: tiny random-weight models, the real SmolLM2, and GPU detection."""

from __future__ import annotations

import pathlib

import pytest

# The conformance harness (make conformance) runs lmprobe's test suite in its own processes; its shim package named
# lmprobe must never be imported into this one.
collect_ignore = ["conformance", "data"]


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


@pytest.fixture
def exact_cache(tmp_path: pathlib.Path) -> object:
    """A fresh float32 activation cache, for exact comparisons with float32 activations (the default is float16)."""
    from fastprobe.store import set_cache_backend, set_cache_dtype

    set_cache_backend(tmp_path / "float32-cache")
    set_cache_dtype("float32")
    yield
    set_cache_dtype(None)

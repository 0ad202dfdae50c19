"""Fixtures for every test path (tests, benches and the doctests in python/fastprobe)."""

from __future__ import annotations

import pathlib

import pytest


@pytest.fixture(scope="session")
def _activation_cache_dir(tmp_path_factory: pytest.TempPathFactory) -> pathlib.Path:
    return tmp_path_factory.mktemp("activation-cache")


@pytest.fixture(autouse=True)
def _private_activation_cache(_activation_cache_dir: pathlib.Path) -> object:
    """Probes cache activations: keep the suite's cache out of the user's (shared by the tests of one session)."""
    from fastprobe.store import set_cache_backend, set_cache_tokens

    set_cache_backend(_activation_cache_dir)
    yield
    set_cache_backend(None)
    set_cache_tokens(None)

"""The conformance harness's test classifier (tests/conformance/classify.py) on a small hand-made lmprobe sdist.

Each test below is written to fall in one class for one reason; the classifier must find the same class and say why.
"""

from __future__ import annotations

import importlib.util
import pathlib
import sys
import textwrap

import pytest

HERE = pathlib.Path(__file__).resolve().parent


@pytest.fixture(scope="module")
def classify():  # type: ignore[no-untyped-def]
    spec = importlib.util.spec_from_file_location("conformance_classify", HERE / "conformance" / "classify.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def _sdist(root: pathlib.Path) -> pathlib.Path:
    src = root / "src" / "lmprobe"
    src.mkdir(parents=True)
    (src / "__init__.py").write_text('__all__ = ["Probe", "cache_info"]\n')
    for name in ("probe", "pooling", "cache", "extraction"):
        (src / f"{name}.py").write_text("")
    tests = root / "tests"
    tests.mkdir()
    (tests / "conftest.py").write_text(
        textwrap.dedent(
            """
            import pytest

            @pytest.fixture(autouse=True)
            def _reset_cache_backend():
                import lmprobe.cache as c
                c._backend = None

            @pytest.fixture
            def fitted():
                from lmprobe.extraction import get_cached_model
                return get_cached_model
            """
        )
    )
    (tests / "test_sample.py").write_text(
        textwrap.dedent(
            """
            from unittest.mock import patch as mock_patch
            import lmprobe
            from lmprobe import Probe
            from lmprobe.pooling import parse_pooling_strategy, _last_token_indices
            from lmprobe.extraction import resolve_layers

            def helper():
                return lmprobe.cache_info()

            def test_top_level_only():
                Probe(layers=1)
                helper()

            def test_documented_submodule():
                parse_pooling_strategy("mean")

            def test_private_name():
                _last_token_indices(None)

            def test_undocumented_module():
                resolve_layers(1, 2)

            def test_private_attribute():
                Probe()._extractor

            def test_patches_lmprobe_under_an_alias():
                with mock_patch("lmprobe.cache.evict"):
                    Probe()

            def test_internal_through_a_fixture(fitted):
                assert fitted

            class TestGroup:
                def setup_method(self):
                    self.p = Probe()

                def test_public_method(self):
                    self.check()

                def check(self):
                    assert self.p

            def test_unused_module_import_does_not_count():
                assert Probe
            """
        )
    )
    return root


def test_each_test_falls_in_its_class_for_its_reason(classify, tmp_path: pathlib.Path) -> None:  # type: ignore[no-untyped-def]
    verdicts = {v.test.split("::", 1)[1]: v for v in classify.classify(_sdist(tmp_path))}
    kinds = {name: v.kind for name, v in verdicts.items()}
    assert kinds == {
        "test_top_level_only": "public",
        "test_documented_submodule": "documented",
        "test_private_name": "internal",
        "test_undocumented_module": "internal",
        "test_private_attribute": "internal",
        "test_patches_lmprobe_under_an_alias": "internal",
        "test_internal_through_a_fixture": "internal",
        "TestGroup::test_public_method": "public",
        "test_unused_module_import_does_not_count": "public",
    }
    assert verdicts["test_private_name"].reasons == ["lmprobe.pooling._last_token_indices"]
    assert verdicts["test_undocumented_module"].reasons == ["lmprobe.extraction.resolve_layers"]
    assert verdicts["test_private_attribute"].reasons == ["private attribute ._extractor"]
    assert verdicts["test_patches_lmprobe_under_an_alias"].reasons == ["patches lmprobe.cache.evict"]
    assert verdicts["test_internal_through_a_fixture"].reasons == ["lmprobe.extraction.get_cached_model"]
    assert verdicts["test_documented_submodule"].reasons == ["lmprobe.pooling.parse_pooling_strategy"]
    rows = tmp_path / "classification.csv"
    classify.write_csv(list(verdicts.values()), rows)
    assert classify.read_csv(rows)["test_sample.py::test_private_name"] == "internal"

"""The layering contract's checker (scripts/check_architecture.py) on a hand-made tree, and on fastprobe itself."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "check_architecture.py"


@pytest.fixture(scope="module")
def contract():
    spec = importlib.util.spec_from_file_location("check_architecture", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["check_architecture"] = module  # dataclasses look their module up while the class is built
    spec.loader.exec_module(module)
    return module


def _tree(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


def test_fastprobe_keeps_its_layering_contract(contract) -> None:
    assert [str(v) for v in contract.check()] == []


def test_the_checker_names_each_kind_of_violation(contract, tmp_path: Path, monkeypatch) -> None:
    root = _tree(
        tmp_path,
        {
            "python/fastprobe/__init__.py": "from fastprobe.probe import Probe\n",  # the root re-exports: exempt
            "python/fastprobe/exceptions.py": "",
            "python/fastprobe/model/__init__.py": "from fastprobe.features import read_features\n",  # upward
            "python/fastprobe/store/__init__.py": "from fastprobe.estimators import RidgeProbe\n",  # sibling
            "python/fastprobe/estimators/__init__.py": "from fastprobe.estimators._base import solver_plan\n",
            "python/fastprobe/estimators/_base.py": "def solver_plan(): ...\n",
            "python/fastprobe/features.py": (
                "from fastprobe.store import _inner\nfrom fastprobe._validation import as_array\n"
            ),
            "python/fastprobe/probe/__init__.py": (
                "import fastprobe.extraction as extraction\nextraction._forward_batches\nextraction.forward_batches\n"
            ),
            "python/fastprobe/extraction/__init__.py": "",
            "python/fastprobe/_validation.py": "",
            "tests/test_x.py": "from fastprobe.estimators._base import solver_plan\nfrom fastprobe import _core\n",
            "benches/b.py": "from fastprobe.probe import _pad\n",
        },
    )
    monkeypatch.setattr(contract, "ROOT", root)
    messages = sorted(v.message for v in contract.check(root))
    assert messages == sorted(
        [
            "fastprobe.model (layer 1) imports fastprobe.features (layer 4, above it)",
            "fastprobe.store imports fastprobe.estimators: independent modules of one layer",
            "imports the private name '_inner' from fastprobe.store",
            "reads the private name '_forward_batches' of fastprobe.extraction",
            "imports the private module fastprobe.estimators._base",  # from a test: outside its package
            "imports the private name '_pad' from fastprobe.probe",
        ]
    )

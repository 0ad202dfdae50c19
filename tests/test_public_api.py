"""Every public import path and name that fastprobe had before its package was reorganised still imports.

``public_api.json`` is the record: for each module, the names in its ``__all__`` when it was taken. A module may
gain names; none may be lost, and each must still be listed in the module's ``__all__`` where the module has one.
"""

from __future__ import annotations

import importlib
import json
from pathlib import Path

import pytest

RECORD = json.loads((Path(__file__).parent / "public_api.json").read_text())


@pytest.mark.parametrize("module", sorted(RECORD))
def test_every_recorded_public_name_still_imports(module: str) -> None:
    mod = importlib.import_module(module)
    missing = [name for name in RECORD[module] if not hasattr(mod, name)]
    assert missing == [], f"{module} lost public names: {missing}"
    listed = getattr(mod, "__all__", None)
    if listed is not None:
        unlisted = sorted(set(RECORD[module]) - set(listed))
        assert unlisted == [], f"{module}.__all__ no longer lists: {unlisted}"

"""A names-only shim: ``lmprobe`` is ``fastprobe``, and ``lmprobe.X`` is ``fastprobe.X``.

Used only by the conformance run (``make conformance``), which puts this folder first on ``PYTHONPATH`` so that
lmprobe's own tests import fastprobe. It adds no behaviour: every module it hands out is fastprobe's own, and a
name fastprobe lacks is missing here too.
"""

import importlib
import importlib.abc
import importlib.machinery
import importlib.util
import sys


class _Alias(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    def find_spec(self, fullname, path=None, target=None):  # type: ignore[no-untyped-def]
        if not fullname.startswith("lmprobe."):
            return None
        if importlib.util.find_spec("fastprobe." + fullname.removeprefix("lmprobe.")) is None:
            return None
        return importlib.machinery.ModuleSpec(fullname, self)

    def create_module(self, spec):  # type: ignore[no-untyped-def]
        return importlib.import_module("fastprobe." + spec.name.removeprefix("lmprobe."))

    def exec_module(self, module):  # type: ignore[no-untyped-def]
        pass


sys.meta_path.insert(0, _Alias())
sys.modules[__name__] = importlib.import_module("fastprobe")

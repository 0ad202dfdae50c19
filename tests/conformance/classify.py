"""Classify lmprobe's own tests by the lmprobe names they reach, read from their source.

A test is judged by what it touches: its body, the fixtures it asks for, the helpers and ``self.`` methods it calls
(followed recursively inside its file and lmprobe's ``conftest.py``), its class's set-up and decorators, and the
file's module-level statements other than imports (a module-level import only binds a name; a test that never uses
it does not depend on it). Three classes:

``public``
    Every lmprobe name it uses is in ``lmprobe.__all__``, imported from ``lmprobe`` itself.
``documented``
    It also uses names at the module paths lmprobe's API reference documents (:data:`DOCUMENTED`, read from
    ``docs/reference/*.md`` of the sdist), and nothing else of lmprobe's.
``internal``
    It uses something else: a name at an undocumented module path, a ``_``-prefixed name or attribute, or it
    patches one of lmprobe's modules or objects (``patch("lmprobe...")``, ``patch.object`` / ``monkeypatch`` on an
    lmprobe object). The reasons are listed with it.

The classification is computed, not hand-written, so it can be re-derived and checked; :data:`OVERRIDES` holds the
few tests whose class the reading above gets wrong, each with its reason.
"""

from __future__ import annotations

import ast
import csv
import pathlib
import re
from dataclasses import dataclass

#: Names lmprobe's API reference documents at their module paths (docs/reference/*.md of lmprobe 0.10.3).
DOCUMENTED: dict[str, frozenset[str]] = {
    "lmprobe.probe": frozenset({"Probe", "LayerSweepResult"}),
    "lmprobe.ensemble": frozenset({"ProbeEnsemble"}),
    "lmprobe.baseline": frozenset({"BaselineProbe"}),
    "lmprobe.activation_baseline": frozenset({"ActivationBaseline"}),
    "lmprobe.battery": frozenset({"BaselineBattery", "BaselineResults"}),
    "lmprobe.unified_cache": frozenset({"UnifiedCache", "WarmupStats"}),
    "lmprobe.sharing": frozenset(
        {
            "load_activations",
            "push_dataset",
            "pull_dataset",
            "load_activation_dataset",
            "fetch_dataset_metadata",
            "migrate_dataset",
            "upgrade_dataset_format",
            "DatasetMetadata",
        }
    ),
    "lmprobe.pooling": frozenset(
        {
            "parse_pooling_strategy",
            "get_pooling_fn",
            "resolve_pooling",
            "pool_last_token",
            "pool_mean",
            "pool_first_token",
            "pool_max",
            "pool_min",
            "pool_all",
            "reduce_scores",
        }
    ),
    "lmprobe.classifiers": frozenset(
        {
            "resolve_classifier",
            "build_classifier",
            "validate_classifier",
            "MassMeanClassifier",
            "EnsembleClassifier",
            "GroupLassoClassifier",
        }
    ),
    "lmprobe.cache": frozenset(
        {
            "set_cache_backend",
            "set_cache_limit",
            "set_cache_dtype",
            "enable_cache_logging",
            "cache_info",
            "CacheInfo",
            "ModelCacheInfo",
            "discover_cached",
            "CachedPromptInfo",
            "clear_cache",
            "invalidate_extraction_cache",
            "CachedExtractor",
        }
    ),
    "lmprobe.scaling": frozenset({"PerLayerScaler"}),
}

#: Tests whose computed class is wrong, with the reason (test id -> (class, reason)).
OVERRIDES: dict[str, tuple[str, str]] = {
    "test_init.py::TestVersion::test_version_is_string": (
        "public",
        "reads lmprobe.__version__, the package's standard version attribute (not in __all__, but public)",
    ),
    "test_init.py::TestLazyImports::test_unknown_attribute_raises": (
        "public",
        "asserts that an unknown top-level name raises AttributeError: behaviour of the public namespace",
    ),
}


def _is_patcher(chain: list[str]) -> bool:
    """``patch(...)`` under any alias (``mock_patch``), ``patch.object``, ``monkeypatch.setattr`` / ``delattr``."""
    if not chain:
        return False
    if chain[-1].endswith("patch"):
        return True
    if len(chain) > 1 and chain[-1] in ("object", "multiple") and chain[-2].endswith("patch"):
        return True
    return len(chain) > 1 and chain[-1] in ("setattr", "delattr") and chain[-2] == "monkeypatch"


@dataclass
class Verdict:
    """One test's class and the reasons for it (the internal names it reaches, or the documented ones)."""

    test: str
    kind: str
    reasons: list[str]


def _chain(node: ast.AST) -> list[str] | None:
    parts: list[str] = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        parts.append(node.id)
        return parts[::-1]
    return None


class _Reader(ast.NodeVisitor):
    """Collect what one function reaches of lmprobe: (module, name) pairs and flags."""

    def __init__(self, src: pathlib.Path, aliases: dict[str, tuple[str, str | None]]) -> None:
        self.src = src
        self.aliases = dict(aliases)  # local name -> (module, name) or (module, None) for a module
        self.refs: set[tuple[str, str]] = set()
        self.flags: set[str] = set()
        self.names: set[str] = set()

    def _is_module(self, dotted: str) -> bool:
        rel = dotted.split(".")[1:]
        return bool(rel) and (
            self.src.joinpath(*rel).with_suffix(".py").exists() or self.src.joinpath(*rel, "__init__.py").exists()
        )

    def bind_import(self, node: ast.Import | ast.ImportFrom) -> None:
        if isinstance(node, ast.Import):
            for a in node.names:
                if a.name.split(".")[0] == "lmprobe":
                    self.aliases[a.asname or "lmprobe"] = (a.name if a.asname else "lmprobe", None)
        elif node.module and node.module.split(".")[0] == "lmprobe":
            for a in node.names:
                sub = f"{node.module}.{a.name}"
                self.aliases[a.asname or a.name] = (sub, None) if self._is_module(sub) else (node.module, a.name)

    def visit_Import(self, node: ast.Import) -> None:
        self.bind_import(node)
        for a in node.names:
            if a.name.split(".")[0] == "lmprobe" and a.name != "lmprobe":
                self.refs.add((a.name, "<module>"))

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        self.bind_import(node)
        if node.module and node.module.split(".")[0] == "lmprobe":
            for a in node.names:
                module, name = self.aliases[a.asname or a.name]
                self.refs.add((module, name or "<module>"))

    def visit_Attribute(self, node: ast.Attribute) -> None:
        if node.attr.startswith("_") and not node.attr.startswith("__"):
            self.flags.add(f"private attribute .{node.attr}")
        chain = _chain(node)
        if chain and chain[0] in self.aliases and self.aliases[chain[0]][1] is None:
            module, rest = self.aliases[chain[0]][0], chain[1:]
            while rest and self._is_module(f"{module}.{rest[0]}"):
                module, rest = f"{module}.{rest[0]}", rest[1:]
            self.refs.add((module, rest[0]) if rest else (module, "<module>"))
            return
        self.generic_visit(node)

    def visit_Name(self, node: ast.Name) -> None:
        self.names.add(node.id)
        bound = self.aliases.get(node.id)
        if bound is not None:
            self.refs.add((bound[0], bound[1] or "<module>"))

    def visit_Call(self, node: ast.Call) -> None:
        chain = _chain(node.func) or []
        if _is_patcher(chain) and node.args:
            target = node.args[0]
            if isinstance(target, ast.Constant) and isinstance(target.value, str):
                if target.value.split(".")[0] == "lmprobe":
                    self.flags.add(f"patches {target.value}")
            else:
                obj = _chain(target)
                if obj and obj[0] in self.aliases:
                    self.flags.add(f"patches {'.'.join(obj)}")
        self.generic_visit(node)

    def visit_FunctionDef(self, node: ast.FunctionDef | ast.AsyncFunctionDef) -> None:
        for d in node.decorator_list:
            self.visit(d)
        self.names.update(a.arg for a in node.args.args)
        for stmt in node.body:
            self.visit(stmt)

    visit_AsyncFunctionDef = visit_FunctionDef  # type: ignore[assignment]


def _kind(module: str, name: str, public: frozenset[str]) -> str:
    if name == "<module>":
        return "documented" if module in DOCUMENTED or module == "lmprobe" else "internal"
    if name.startswith("_"):
        return "internal"
    if module == "lmprobe":
        return "public" if name in public else "internal"
    return "documented" if name in DOCUMENTED.get(module, ()) else "internal"


def _public_names(src: pathlib.Path) -> frozenset[str]:
    for node in ast.parse((src / "__init__.py").read_text()).body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", "") == "__all__" for t in node.targets):
            return frozenset(ast.literal_eval(node.value))
    raise ValueError(f"no __all__ in {src / '__init__.py'}")


def classify_file(
    path: pathlib.Path, src: pathlib.Path, shared: dict[str, ast.FunctionDef], public: frozenset[str]
) -> list[Verdict]:
    """Classify every test function of one lmprobe test file."""
    tree = ast.parse(path.read_text())
    top = _Reader(src, {})
    defs: dict[str, ast.FunctionDef | ast.AsyncFunctionDef] = dict(shared)
    module_code = _Reader(src, {})
    for node in tree.body:
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            top.bind_import(node)
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            defs[node.name] = node
        elif not isinstance(node, ast.ClassDef):
            module_code.visit(node)

    def reach(fn: ast.AST, local: dict[str, ast.AST], seen: set[str]) -> tuple[set[tuple[str, str]], set[str]]:
        reader = _Reader(src, top.aliases)
        reader.visit(fn)
        refs, flags = set(reader.refs), set(reader.flags)
        called = set(reader.names)
        called |= {n.attr for n in ast.walk(fn) if isinstance(n, ast.Attribute) and _chain(n.value) == ["self"]}
        for name in sorted(called):
            target = local.get(name) or defs.get(name)
            if target is not None and target is not fn and name not in seen:
                seen.add(name)
                r, f = reach(target, local, seen)
                refs |= r
                flags |= f
        return refs, flags

    verdicts = []

    def judge(fn: ast.FunctionDef | ast.AsyncFunctionDef, cls: ast.ClassDef | None) -> None:
        local: dict[str, ast.AST] = {}
        refs: set[tuple[str, str]] = set(module_code.refs)
        flags: set[str] = set(module_code.flags)
        if cls is not None:
            local = {n.name: n for n in cls.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))}
            for d in cls.decorator_list:
                r, f = reach(d, local, set())
                refs |= r
                flags |= f
            for n in local.values():
                if n.name in ("setup_method", "teardown_method", "setup_class", "setUp") or any(
                    "autouse" in ast.unparse(d) for d in n.decorator_list
                ):
                    r, f = reach(n, local, {n.name})
                    refs |= r
                    flags |= f
        r, f = reach(fn, local, {fn.name})
        refs |= r
        flags |= f
        test_id = "::".join([path.name, *([cls.name] if cls else []), fn.name])
        internal = sorted(f"{m}.{n}" for m, n in refs if _kind(m, n, public) == "internal")
        documented = sorted(f"{m}.{n}" for m, n in refs if _kind(m, n, public) == "documented" and m != "lmprobe")
        if internal or flags:
            verdicts.append(Verdict(test_id, "internal", internal + sorted(flags)))
        elif documented:
            verdicts.append(Verdict(test_id, "documented", documented))
        else:
            verdicts.append(Verdict(test_id, "public", []))

    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name.startswith("test"):
            judge(node, None)
        elif isinstance(node, ast.ClassDef) and node.name.startswith("Test"):
            for n in node.body:
                if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef)) and n.name.startswith("test"):
                    judge(n, node)
    for v in verdicts:
        if v.test in OVERRIDES:
            v.kind, why = OVERRIDES[v.test]
            v.reasons = [f"override: {why}"]
    return verdicts


def classify(sdist: pathlib.Path) -> list[Verdict]:
    """Classify every test of an unpacked lmprobe sdist (``sdist/src/lmprobe``, ``sdist/tests``)."""
    src = sdist / "src" / "lmprobe"
    public = _public_names(src)
    conftest = ast.parse((sdist / "tests" / "conftest.py").read_text())
    # The autouse fixture that resets lmprobe's cache globals is harness set-up, replaced for fastprobe (see run.py).
    shared = {n.name: n for n in conftest.body if isinstance(n, ast.FunctionDef) and n.name != "_reset_cache_backend"}
    verdicts: list[Verdict] = []
    for path in sorted((sdist / "tests").glob("test_*.py")):
        verdicts.extend(classify_file(path, src, shared, public))
    return verdicts


def write_csv(verdicts: list[Verdict], path: pathlib.Path) -> None:
    """Write the classification: one row per test (test, class, reasons joined by ``; ``)."""
    with path.open("w", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(["test", "class", "reasons"])
        for v in verdicts:
            w.writerow([v.test, v.kind, "; ".join(v.reasons)])


def read_csv(path: pathlib.Path) -> dict[str, str]:
    """Read a classification written by :func:`write_csv`: test id -> class."""
    with path.open(newline="") as f:
        return {row["test"]: row["class"] for row in csv.DictReader(f)}


def base_id(junit_id: str) -> str:
    """Drop a parametrization suffix: ``test_x.py::T::test_y[a-b]`` -> ``test_x.py::T::test_y``."""
    return re.sub(r"\[.*\]$", "", junit_id)

"""Check fastprobe's layering contract: lower layers never import higher ones, and no module uses another's privates.

Run by ``make lint``. The rules (docs/architecture.md explains them):

1. Layers. Each module under ``python/fastprobe`` belongs to the layer of the longest entry of :data:`LAYERS` that
   names it or a package above it. A module may import modules of its own layer or of lower layers, never of a
   higher one. In an *independent* layer, one entry may not import another (``fastprobe.store`` and
   ``fastprobe.estimators`` know nothing of each other). ``fastprobe/__init__.py`` only re-exports and is exempt.
2. Private names. No module imports a ``_``-prefixed name from another module (``from fastprobe.probe import _x``),
   or reads one off an imported fastprobe module (``extraction._forward_batches``). Within one file anything goes;
   the package's shared private *modules* (``fastprobe._config``, ``fastprobe._validation`` ...) may be imported, but
   only their public names. ``fastprobe._core`` (the Rust binding, documented by its stub) counts as public.
3. Tests, benchmarks and examples use public names only: rule 2 applies to them as well.

Exit status 1 with one line per violation, 0 when the contract holds.
"""

from __future__ import annotations

import ast
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = "fastprobe"

#: Bottom to top: (entries, independent). An entry is a module or package name.
LAYERS: list[tuple[tuple[str, ...], bool]] = [
    (
        (
            "fastprobe._core",
            "fastprobe._arrays",
            "fastprobe._config",
            "fastprobe._validation",
            "fastprobe.exceptions",
            "fastprobe.profiling",
            "fastprobe.metrics",
            "fastprobe.layers",
            "fastprobe.sites",
            "fastprobe.serialization",
            "fastprobe.datasets",
        ),
        False,
    ),
    (("fastprobe.model", "fastprobe.models"), False),
    (("fastprobe.store", "fastprobe.estimators"), True),
    (("fastprobe.extraction",), False),
    (("fastprobe.features",), False),
    (("fastprobe.sweep",), False),
    (("fastprobe.probe",), False),
    (
        (
            "fastprobe.ensemble",
            "fastprobe.baselines",
            "fastprobe.unified_cache",
            "fastprobe.heads",
            "fastprobe.evaluation",
            "fastprobe.experiments",
        ),
        True,
    ),
    (("fastprobe.aligned",), False),
    (
        (
            "fastprobe.pooling",
            "fastprobe.classifiers",
            "fastprobe.scaling",
            "fastprobe.cache",
            "fastprobe.baseline",
            "fastprobe.activation_baseline",
            "fastprobe.battery",
            "fastprobe.architectures",
            "fastprobe.perplexity",
            "fastprobe.sharing",
            "fastprobe.demo",
            "fastprobe.testing",
            "fastprobe.testing_hub",
        ),
        False,
    ),
]

#: Private module names whose public names any module may import.
SHARED_PRIVATE_MODULES = ("fastprobe._core", "fastprobe._arrays", "fastprobe._config", "fastprobe._validation")


@dataclass(frozen=True)
class Violation:
    """One breach of the contract, at a file and line."""

    path: Path
    line: int
    message: str

    def __str__(self) -> str:
        return f"{self.path.relative_to(ROOT)}:{self.line}: {self.message}"


def module_name(path: Path, source_root: Path) -> str:
    """Return the dotted module name of a file under ``source_root`` (a package's ``__init__`` is the package)."""
    parts = list(path.relative_to(source_root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def layer_of(module: str, layers: list[tuple[tuple[str, ...], bool]] = LAYERS) -> tuple[int, str] | None:
    """Return (layer index, entry) of a module: the longest entry naming it or a package above it."""
    best: tuple[int, str] | None = None
    for index, (entries, _) in enumerate(layers):
        for entry in entries:
            if (module == entry or module.startswith(entry + ".")) and (best is None or len(entry) > len(best[1])):
                best = (index, entry)
    return best


def _resolve(node: ast.ImportFrom, module: str, is_package: bool) -> str:
    """Return the absolute module a ``from ... import`` names."""
    if not node.level:
        return node.module or ""
    base = module.split(".") if is_package else module.split(".")[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def _imports(tree: ast.AST, module: str, is_package: bool) -> Iterator[tuple[int, str, str | None]]:
    """Yield (line, imported module, imported name or None) for every fastprobe import in a file."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] == PACKAGE:
                    yield node.lineno, alias.name, None
        elif isinstance(node, ast.ImportFrom):
            target = _resolve(node, module, is_package)
            if target.split(".")[0] != PACKAGE:
                continue
            for alias in node.names:
                yield node.lineno, target, alias.name


def _private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def _module_aliases(tree: ast.AST, module: str, is_package: bool, known: set[str]) -> dict[str, str]:
    """Return the local names bound to fastprobe modules (``import fastprobe.x as y``, ``from fastprobe import x``)."""
    aliases: dict[str, str] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] == PACKAGE and alias.asname:
                    aliases[alias.asname] = alias.name
        elif isinstance(node, ast.ImportFrom):
            target = _resolve(node, module, is_package)
            if target.split(".")[0] != PACKAGE:
                continue
            for alias in node.names:
                full = f"{target}.{alias.name}"
                if full in known:
                    aliases[alias.asname or alias.name] = full
    return aliases


def check_file(path: Path, module: str, *, layered: bool, known: set[str]) -> list[Violation]:
    """Return every violation in one file. ``module``: its dotted name (tests: a name outside the package)."""
    tree = ast.parse(path.read_text(), filename=str(path))
    is_package = path.name == "__init__.py"
    out: list[Violation] = []
    own = layer_of(module) if layered else None
    for line, target, name in _imports(tree, module, is_package):
        full = f"{target}.{name}" if name and f"{target}.{name}" in known else target
        if name is not None and full == target and _private(name) and target != module:
            out.append(Violation(path, line, f"imports the private name {name!r} from {target}"))
        parts = full.split(".")
        first = next((i for i, p in enumerate(parts) if _private(p)), None)
        if first is not None and not any(full == m or full.startswith(m + ".") for m in SHARED_PRIVATE_MODULES):
            parent = ".".join(parts[:first])  # a private module is shared within the package that holds it
            package = module if is_package else module.rsplit(".", 1)[0]
            if not (layered and (package == parent or package.startswith(parent + "."))):
                out.append(Violation(path, line, f"imports the private module {full}"))
        if own is None or module == PACKAGE:
            continue
        theirs = layer_of(full)
        if theirs is None:
            continue
        if theirs[0] > own[0]:
            out.append(Violation(path, line, f"{module} (layer {own[0]}) imports {full} (layer {theirs[0]}, above it)"))
        elif theirs[0] == own[0] and theirs[1] != own[1] and LAYERS[own[0]][1]:
            out.append(Violation(path, line, f"{module} imports {full}: independent modules of one layer"))
    aliases = _module_aliases(tree, module, is_package, known)
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Attribute)
            and _private(node.attr)
            and isinstance(node.value, ast.Name)
            and node.value.id in aliases
            and aliases[node.value.id] != module
            and aliases[node.value.id] not in SHARED_PRIVATE_MODULES
        ):
            out.append(
                Violation(path, node.lineno, f"reads the private name {node.attr!r} of {aliases[node.value.id]}")
            )
    return sorted(set(out), key=lambda v: (v.line, v.message))


def check(root: Path = ROOT) -> list[Violation]:
    """Check the package (layers and privates) and the tests, benchmarks and examples (privates only)."""
    source = root / "python"
    files = sorted((source / PACKAGE).rglob("*.py"))
    known = {module_name(f, source) for f in files} | {"fastprobe._core"}
    out: list[Violation] = []
    for f in files:
        out += check_file(f, module_name(f, source), layered=True, known=known)
    for folder in ("tests", "benches", "examples"):
        for f in sorted((root / folder).rglob("*.py")):
            if "conformance" in f.parts:  # lmprobe's own suite and its harness, which reads lmprobe's internals
                continue
            out += check_file(f, f"_outside.{f.stem}", layered=False, known=known)
    return out


def main() -> int:
    """Print every violation; exit 1 if there is one."""
    violations = check()
    for v in violations:
        print(v)
    if violations:
        print(f"{len(violations)} violation(s) of the layering contract (see docs/architecture.md)", file=sys.stderr)
        return 1
    print("layering contract: ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())

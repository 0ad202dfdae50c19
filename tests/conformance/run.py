"""Judge fastprobe by lmprobe's own test suite: ``make conformance``.

1. Download lmprobe 0.10.3's sdist from PyPI (its tests are in it; the file's SHA-256 is checked) into
   ``.conformance/``, once.
2. Classify every test by reading it (:mod:`classify`): ``public`` and ``documented`` tests use only lmprobe's
   public, documented API; ``internal`` ones do not and are not run against fastprobe's promise. The committed
   ``classification.csv`` must equal what the classifier derives from the sdist.
3. Stand in for the Hub model lmprobe's tests name (``stas/tiny-random-llama-2``: a Llama with 2 layers, hidden size
   16 and 4 heads, random weights) with a tiny model of the same shape in a temporary Hugging Face cache, with a
   byte-level tokenizer (so that different texts never share their tokens, as with the real model's subword
   tokenizer), and run everything offline (``HF_HUB_OFFLINE=1``).
4. Run the suite twice in the same environment: with lmprobe itself (the sdist's ``src``), and with fastprobe
   through the names-only shim in ``shim/`` (a package ``lmprobe`` whose every module is fastprobe's module of the
   same name). For the fastprobe run two mechanical changes are made to the copied tests, neither touching an
   assertion: the autouse fixture of lmprobe's ``conftest.py`` that resets lmprobe's private cache globals is
   replaced by one that resets fastprobe's cache to the environment's, and a module-level ``from lmprobe... import``
   of a name fastprobe lacks binds a placeholder instead of failing the whole file, so the public tests of a file
   that also imports internals can run (an internal test that uses the placeholder fails, and is not counted).
5. Print ``kept/total``: of the public-API tests that pass with lmprobe, how many pass with fastprobe, less the
   deliberate differences listed in ``differences.py`` (fastprobe fixes an lmprobe fault the test relies on).

Usage: ``python tests/conformance/run.py [--keep] [-k EXPR]``; exit status 1 when under the 95% target.
"""

from __future__ import annotations

import argparse
import ast
import collections
import hashlib
import json
import os
import pathlib
import shutil
import subprocess
import sys
import tarfile
import tempfile
import xml.etree.ElementTree as ET

HERE = pathlib.Path(__file__).resolve().parent
ROOT = HERE.parents[1]
WORK = ROOT / ".conformance"
SDIST = "lmprobe-0.10.3.tar.gz"
SDIST_SHA256 = "c513a27a604aa44a11c4e693117b7e3083211900d17efbf9aa6d33f5d428982c"
TEST_MODEL = "stas/tiny-random-llama-2"
TARGET = 0.95

sys.path.insert(0, str(HERE))
import classify  # noqa: E402
from differences import DIFFERENCES  # noqa: E402

_RESET_FIXTURE = '''

@pytest.fixture(autouse=True)
def _reset_cache_backend():
    """Each test starts from the cache the environment names (LMPROBE_CACHE_DIR), as lmprobe's fixture arranges."""
    from fastprobe.store import set_cache_backend

    set_cache_backend(None)
    yield
    set_cache_backend(None)
'''

_PLACEHOLDER = '''

class _Missing:
    """A name lmprobe's test module imports and fastprobe does not have: any use fails that test alone."""

    def __init__(self, name):
        self._name = name

    def __getattr__(self, attr):
        raise ImportError(f"fastprobe has no {self._name}")

    def __call__(self, *args, **kwargs):
        raise ImportError(f"fastprobe has no {self._name}")
'''


def fetch_sdist() -> pathlib.Path:
    """Download and unpack the sdist once; return the unpacked folder."""
    WORK.mkdir(exist_ok=True)
    archive = WORK / SDIST
    if not archive.exists():
        subprocess.run(
            [
                *(sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--no-binary", ":all:"),
                *("--disable-pip-version-check", "lmprobe==0.10.3", "-d", str(WORK)),
            ],
            check=True,
        )
    digest = hashlib.sha256(archive.read_bytes()).hexdigest()
    if digest != SDIST_SHA256:
        raise SystemExit(f"{archive}: SHA-256 {digest}, expected {SDIST_SHA256}")
    folder = WORK / SDIST.removesuffix(".tar.gz")
    if not folder.exists():
        with tarfile.open(archive) as tar:
            tar.extractall(WORK, filter="data")
    return folder


def guard_imports(source: str) -> str:
    """Make each module-level ``from lmprobe... import name`` bind a placeholder when the import fails."""
    tree = ast.parse(source)
    body: list[ast.stmt] = []
    for node in tree.body:
        if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "lmprobe":
            for alias in node.names:
                bound = alias.asname or alias.name
                guarded = ast.parse(
                    f"try:\n    from {node.module} import {alias.name} as {bound}\n"
                    f"except ImportError:\n    {bound} = _Missing({node.module + '.' + alias.name!r})\n"
                ).body
                body.extend(guarded)
        elif isinstance(node, ast.Import) and any(a.name.split(".")[0] == "lmprobe" for a in node.names):
            for alias in node.names:
                bound = alias.asname or alias.name.split(".")[0]
                body.extend(
                    ast.parse(
                        f"try:\n    import {alias.name}{' as ' + alias.asname if alias.asname else ''}\n"
                        f"except ImportError:\n    {bound} = _Missing({alias.name!r})\n"
                    ).body
                )
        else:
            body.append(node)
    head = 0  # the docstring and __future__ imports stay first
    while head < len(body) and (
        (isinstance(body[head], ast.Expr) and isinstance(getattr(body[head], "value", None), ast.Constant))
        or (isinstance(body[head], ast.ImportFrom) and getattr(body[head], "module", None) == "__future__")
    ):
        head += 1
    tree.body = body[:head] + ast.parse(_PLACEHOLDER).body + body[head:]
    return ast.unparse(tree)


def prepare_fastprobe_tests(sdist: pathlib.Path, target: pathlib.Path) -> None:
    """Copy lmprobe's tests for the fastprobe run (see the module docstring, step 4)."""
    if target.exists():
        shutil.rmtree(target)
    target.mkdir(parents=True)
    for path in sorted((sdist / "tests").glob("*.py")):
        text = path.read_text()
        if path.name == "conftest.py":
            tree = ast.parse(text)
            tree.body = [
                n for n in tree.body if not (isinstance(n, ast.FunctionDef) and n.name == "_reset_cache_backend")
            ]
            text = ast.unparse(tree) + _RESET_FIXTURE
        else:
            text = guard_imports(text)
        (target / path.name).write_text(text)
    (target / "pytest.ini").write_text(
        "[pytest]\nmarkers =\n    remote: NDIF\n    nnsight: nnsight\n    gpu: CUDA\n    slow: slow\n"
    )


def stand_in(cache: pathlib.Path) -> None:
    """Put the stand-in for lmprobe's test model into a Hugging Face hub cache."""
    from fastprobe.testing import hub_model

    hub_model(
        TEST_MODEL,
        cache,
        "llama",
        num_layers=2,
        hidden_size=16,
        num_heads=4,
        padding_side="left",
        vocabulary="bytes",  # every text its own tokens, as the real model's subword tokenizer gives them
        max_positions=512,
    )


def run_pytest(
    cwd: pathlib.Path,
    targets: list[str],
    junit: pathlib.Path,
    env: dict[str, str],
    config: list[str],
    select: str | None,
) -> None:
    args = [sys.executable, "-m", "pytest", *targets, "-q", "-p", "no:cacheprovider"]
    args += [*config, "--continue-on-collection-errors", f"--junitxml={junit}"]
    if select:
        args += ["-k", select]
    log = junit.with_suffix(".log")
    with log.open("w") as out:
        subprocess.run(args, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT, check=False)


def results(junit: pathlib.Path) -> dict[str, tuple[str, str, str]]:
    """Map each executed test (with its parameters) to (test id without parameters, outcome, first message line)."""
    out: dict[str, tuple[str, str, str]] = {}
    for case in ET.parse(junit).getroot().iter("testcase"):
        parts = case.get("classname", "").split(".")
        if parts and parts[0] == "tests":
            parts = parts[1:]
        if not parts:
            continue
        name = case.get("name", "")
        test = "::".join([parts[0] + ".py", *parts[1:], classify.base_id(name)])
        outcome, message = "passed", ""
        for child in case:
            if child.tag in ("failure", "error"):
                outcome, message = "failed", (child.get("message") or "").splitlines()[0:1]
                message = message[0] if message else ""
                break
            if child.tag == "skipped":
                outcome = "xfailed" if child.get("type") == "pytest.xfail" else "skipped"
                break
        out[f"{test}[{name}]"] = (test, outcome, message)
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("files", nargs="*", help="run only these test files (both runs), e.g. test_pooling.py")
    parser.add_argument("-k", dest="select", help="run only the tests pytest -k selects (both runs)")
    parser.add_argument("--write-classification", action="store_true", help="rewrite classification.csv")
    parser.add_argument("--reuse-lmprobe", action="store_true", help="reuse the last full lmprobe run's results")
    args = parser.parse_args()

    sdist = fetch_sdist()
    verdicts = classify.classify(sdist)
    committed = HERE / "classification.csv"
    if args.write_classification or not committed.exists():
        classify.write_csv(verdicts, committed)
    derived = {v.test: v.kind for v in verdicts}
    if classify.read_csv(committed) != derived:
        print(
            f"{committed.name} differs from the classification derived from the sdist; rerun with "
            "--write-classification and review the diff",
            file=sys.stderr,
        )
        return 2
    differences = DIFFERENCES

    run = pathlib.Path(tempfile.mkdtemp(prefix="run-", dir=WORK))  # several runs may go at once
    stand_in(run / "hf-home" / "hub")
    base_env = {k: v for k, v in os.environ.items() if not k.startswith(("FASTPROBE_", "LMPROBE_", "HF_"))}
    base_env.update(
        HF_HOME=str(run / "hf-home"), HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", TOKENIZERS_PARALLELISM="false"
    )
    lm_junit = WORK / "lmprobe.xml"
    targets = [str(sdist / "tests" / f) for f in args.files] or [str(sdist / "tests")]
    if not (args.reuse_lmprobe and lm_junit.exists()):
        if args.files or args.select:
            lm_junit = run / "lmprobe.xml"
        env = dict(base_env, LMPROBE_CACHE_DIR=str(run / "cache-lmprobe"), PYTHONPATH=str(sdist / "src"))
        print("running lmprobe's tests with lmprobe 0.10.3 ...", flush=True)
        run_pytest(sdist / "tests", targets, lm_junit, env, ["-c", str(sdist / "pyproject.toml")], args.select)
    fp_tests = run / "tests"
    prepare_fastprobe_tests(sdist, fp_tests)
    fp_junit = run / "fastprobe.xml"
    env = dict(base_env, LMPROBE_CACHE_DIR=str(run / "cache-fastprobe"), PYTHONPATH=str(HERE / "shim"))
    print(f"running lmprobe's tests with fastprobe through the shim (in {run}) ...", flush=True)
    targets = [str(fp_tests / f) for f in args.files] or [str(fp_tests)]
    config = ["-c", str(fp_tests / "pytest.ini"), "--rootdir", str(fp_tests)]
    run_pytest(fp_tests, targets, fp_junit, env, config, args.select)

    lm, fp = results(lm_junit), results(fp_junit)
    counted: collections.Counter[str] = collections.Counter()
    kept: collections.Counter[str] = collections.Counter()
    failures: list[tuple[str, str]] = []
    excused: list[tuple[str, str]] = []
    for key, (test, outcome, _) in sorted(lm.items()):
        kind = derived.get(test, "internal")
        file = test.split("::")[0]
        if kind == "internal" or outcome != "passed" or (args.files and file not in args.files):
            continue
        if test in differences:
            excused.append((key, differences[test]))
            continue
        counted[file] += 1
        fp_outcome, message = fp.get(key, (test, "missing", "not run"))[1:]
        if fp_outcome == "passed":
            kept[file] += 1
        elif not args.select or key in fp:
            failures.append((key, message))
        else:
            counted[file] -= 1  # deselected by -k

    total, n_kept = sum(counted.values()), sum(kept.values())
    print("\nper file (public-API tests that pass with lmprobe):")
    for file in sorted(counted):
        print(f"  {file:36s} {kept[file]:4d}/{counted[file]:<4d}")
    print(f"\nfailing with fastprobe ({len(failures)}):")
    for key, message in failures:
        print(f"  {key}: {message[:200]}")
    print(f"\ndeliberate differences, not counted ({len(excused)}):")
    for key, why in excused:
        print(f"  {key}: {why}")
    by_kind = collections.Counter(derived.values())
    print(
        f"\nclassified: {by_kind['public']} public, {by_kind['documented']} documented-submodule, "
        f"{by_kind['internal']} internal test functions"
    )
    share = n_kept / total if total else 0.0
    print(f"\nkept/total: {n_kept}/{total} ({100 * share:.1f}%; target {100 * TARGET:.0f}%)")
    report = {
        "kept": n_kept,
        "total": total,
        "failures": [k for k, _ in failures],
        "differences": [k for k, _ in excused],
    }
    (run / "report.json").write_text(json.dumps(report, indent=1))
    print(f"logs: {run}")
    return 0 if share >= TARGET else 1


if __name__ == "__main__":
    raise SystemExit(main())

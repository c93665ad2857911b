# Two commands on a fresh machine: `make demo` and `make test` (README quick start).
VENV ?= .venv
PYTHON ?= python3
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
# torch first, pinned: a CPU build of 2.13.0 is on this machine's wheel path; letting a dependency
# pull torch instead would download a multi-GB CUDA build.
TORCH ?= torch==2.13.0

.PHONY: venv demo test lint bench bench-coexpression bench-embedding bench-quality bench-regions peer clean

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	$(PIP) install -q $(TORCH)

venv: $(PY)

$(VENV)/.demo-installed: pyproject.toml | $(PY)
	$(PIP) install -q -e .
	touch $@

$(VENV)/.test-installed: pyproject.toml | $(PY)
	$(PIP) install -q -e ".[test,bench]"
	touch $@

demo: $(VENV)/.demo-installed
	$(VENV)/bin/geneverse demo --out demo_output

# The peer genevector 1.0.0 has no Linux wheel pip can select: benchmarks/install_genevector.py
# re-tags its pure-Python part. Tests that compare against it are skipped if this step fails.
$(VENV)/.peer-installed: | $(PY)
	$(PY) benchmarks/install_genevector.py && touch $@ || echo "warning: genevector not installed; peer comparisons will be skipped"

peer: $(VENV)/.peer-installed

test: $(VENV)/.test-installed peer
	$(VENV)/bin/ruff check src tests benchmarks
	$(VENV)/bin/ruff format --check src tests benchmarks
	PATH="$(abspath $(VENV))/bin:$$PATH" $(PY) -m pytest -q

lint: $(VENV)/.test-installed
	$(VENV)/bin/ruff check src tests benchmarks
	$(VENV)/bin/ruff format --check src tests benchmarks

# Timings: the OpenBLAS variables set on these machines slow numpy, so they are unset here only.
bench: bench-coexpression bench-embedding bench-quality bench-regions

bench-coexpression: $(VENV)/.test-installed peer
	env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE $(PY) benchmarks/coexpression.py

bench-embedding: $(VENV)/.test-installed peer
	env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE $(PY) benchmarks/embedding.py

bench-quality: $(VENV)/.test-installed peer
	env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE $(PY) benchmarks/quality.py

bench-regions: $(VENV)/.test-installed
	env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE $(PY) benchmarks/regions.py

clean:
	rm -rf $(VENV) demo_output benchmarks/results .pytest_cache

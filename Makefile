# Two commands on a fresh machine: `make demo` and `make test` (README quick start).
VENV ?= .venv
PYTHON ?= python3
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
# torch first, pinned: a CPU build of 2.13.0 is on this machine's wheel path; letting a dependency
# pull torch instead would download a multi-GB CUDA build.
TORCH ?= torch==2.13.0

.PHONY: venv demo test lint docs system-deps docs-screenshot plot-baselines bench bench-scale bench-scale-genes bench-explore bench-coexpression bench-embedding bench-quality bench-quality-quick bench-steps bench-annotate bench-batch bench-regions bench-embeddings peer clean

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	$(PIP) install -q $(TORCH)

venv: $(PY)

$(VENV)/.demo-installed: pyproject.toml | $(PY)
	$(PIP) install -q -e .
	touch $@

$(VENV)/.test-installed: pyproject.toml | $(PY)
	$(PIP) install -q -e ".[test,bench,doc]"
	touch $@

demo: $(VENV)/.demo-installed
	$(VENV)/bin/geneverse demo --out demo_output

# The peer genevector 1.0.0 has no Linux wheel pip can select: benchmarks/install_genevector.py
# re-tags its pure-Python part. Tests that compare against it are skipped if this step fails.
$(VENV)/.peer-installed: | $(PY)
	$(PY) benchmarks/install_genevector.py && touch $@ || echo "warning: genevector not installed; peer comparisons will be skipped"

peer: $(VENV)/.peer-installed

# The napari widget is tested in a real viewer under a virtual X server (pytest-xvfb starts Xvfb);
# geneverse explore's page in Debian's Chromium, driven by Playwright (whose own browser download is
# not used). Debian packages, installed only when missing (as root, or with sudo).
SYSTEM_DEPS := xvfb libxcb-icccm4 libxcb-keysyms1 libxcb-image0 libxcb-render-util0 libxcb-shape0 \
	libxcb-cursor0 libxcb-xinerama0 libxkbcommon-x11-0 libegl1 libgl1 libgl1-mesa-dri libfontconfig1 libdbus-1-3 \
	chromium

system-deps:
	@missing="$$(for p in $(SYSTEM_DEPS); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done)"; \
	if [ -n "$$missing" ]; then \
		echo "installing for the napari and browser tests:" $$missing; \
		SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
		($$SUDO apt-get update -qq && $$SUDO apt-get install -y -qq --no-install-recommends $$missing >/dev/null) \
		|| echo "warning: could not install $$missing; the napari or browser tests will be skipped"; \
	fi

test: $(VENV)/.test-installed peer system-deps
	$(VENV)/bin/ruff check src tests benchmarks docs/scripts docs/conf.py
	$(VENV)/bin/ruff format --check src tests benchmarks docs/scripts docs/conf.py
	$(MAKE) --no-print-directory docs
	PATH="$(abspath $(VENV))/bin:$$PATH" NUMBA_CPU_NAME=generic $(PY) -m pytest -q

# The documentation site: API pages from the docstrings, every tutorial executed, warnings as
# errors, nothing fetched (no intersphinx). Under xvfb-run: the napari tutorial opens a viewer.
# `make test` builds it before the tests, so that the test summary is the run's last line.
docs: $(VENV)/.test-installed system-deps
	rm -rf docs/_build docs/generated
	PATH="$(abspath $(VENV))/bin:$$PATH" xvfb-run -a -s "-screen 0 1600x1000x24" \
		$(VENV)/bin/sphinx-build -W --keep-going -q -b html docs docs/_build/html
	@if grep -l "\.\. auto" docs/_build/html/generated/*.html; then \
		echo "docs: the API pages above show raw directives instead of the docstrings"; exit 1; fi
	@echo "docs: docs/_build/html/index.html"

lint: $(VENV)/.test-installed
	$(VENV)/bin/ruff check src tests benchmarks docs/scripts
	$(VENV)/bin/ruff format --check src tests benchmarks docs/scripts

# Timings: the OpenBLAS variables set on these machines slow numpy, so they are unset here only.
bench: bench-coexpression bench-embedding bench-quality bench-steps bench-annotate bench-batch bench-regions bench-embeddings bench-scale bench-scale-genes bench-explore

bench-coexpression: $(VENV)/.test-installed peer
	env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE $(PY) benchmarks/coexpression.py

bench-embedding: $(VENV)/.test-installed peer
	env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE $(PY) benchmarks/embedding.py

# The quality matrix (planted programs over many settings, docs/quality.md), then cells on labelled data.
bench-quality: $(VENV)/.test-installed peer
	env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE $(PY) benchmarks/quality_matrix.py
	env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE $(PY) benchmarks/quality.py

bench-quality-quick: $(VENV)/.test-installed
	env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE $(PY) benchmarks/quality_matrix.py --quick --out benchmarks/results/quick --figure benchmarks/results/quick/quality_matrix.png

# Marker-based annotation: calibration on planted types, pbmc68k against score_genes.
bench-annotate: $(VENV)/.test-installed
	env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE $(PY) benchmarks/annotate.py

# Batch correction of cell vectors against genevector 1.0.0 and harmonypy, planted batches.
bench-batch: $(VENV)/.test-installed peer
	env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE $(PY) benchmarks/batch.py

# Seconds per default step against an earlier commit (a temporary git worktree), same data.
bench-steps: $(VENV)/.test-installed
	env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE $(PY) benchmarks/step_speed.py

bench-embeddings: $(VENV)/.test-installed
	env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE $(PY) benchmarks/embeddings.py

bench-scale: $(VENV)/.test-installed
	env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE $(PY) benchmarks/scale.py

bench-scale-genes: $(VENV)/.test-installed
	env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE $(PY) benchmarks/scale.py --genes 2000,5000,10000,20000,30000

bench-explore: $(VENV)/.test-installed
	env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE $(PY) benchmarks/explore.py --genes 20000

bench-regions: $(VENV)/.test-installed
	env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE $(PY) benchmarks/regions.py

# Redraw the baseline images of the plot tests (tests/_images/) after an intended change of a plot;
# look at the new PNGs before committing them.
plot-baselines: $(VENV)/.test-installed
	GENEVERSE_UPDATE_IMAGES=1 NUMBA_CPU_NAME=generic $(PY) -m pytest -q tests/test_plot_images.py

# The README's napari screenshot (docs/img/napari_programs.png), drawn under a virtual X server.
docs-screenshot: $(VENV)/.test-installed system-deps
	xvfb-run -a -s "-screen 0 1600x1000x24" $(PY) docs/scripts/napari_screenshot.py
	test -f demo_output/pbmc68k_geneverse.h5ad || $(MAKE) --no-print-directory demo
	$(PY) docs/scripts/explore_screenshot.py

clean:
	rm -rf $(VENV) demo_output benchmarks/results .pytest_cache docs/_build docs/generated

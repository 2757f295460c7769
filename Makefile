# simclust: `make test` and `make demo` do all the set-up on a fresh machine
# (a Rust toolchain >= 1.89 and python3 >= 3.11 with venv/pip are all they need).

PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
BIN    := $(VENV)/bin
export VIRTUAL_ENV := $(abspath $(VENV))

.PHONY: all test demo build venv rust-check rust-test py-check py-test bench fmt clean

all: test

$(BIN)/maturin:
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet "maturin>=1.9,<2"

venv: $(BIN)/maturin

PLUGINS := plugins/simclust-hdbscan plugins/simclust-labels plugins/simclust-onnx

# Builds the extension in release mode and installs simclust (editable) with
# its runtime and test dependencies into the venv, then the first-party plugins
# as separate distributions (found only through their entry points).
build: venv
	$(BIN)/maturin develop --release --extras test
	$(PY) -m pip install --quiet $(addprefix -e ,$(PLUGINS))

rust-check: venv
	cargo fmt --all --check
	cargo clippy --workspace --all-targets --locked -- -D warnings

# The kernels pick SIMD paths at run time; SIMCLUST_SIMD=portable forces the portable
# ones, so both are tested on whatever CPU runs this.
KERNEL_TESTS := tests/test_knn.py tests/test_edges.py tests/test_components.py \
	tests/test_sweep.py tests/test_metrics.py tests/test_kmeans.py tests/test_exact_edges.py \
	tests/test_search.py

rust-test: venv
	cargo test --workspace --locked
	SIMCLUST_SIMD=portable cargo test --workspace --locked

py-check: build
	$(BIN)/ruff check python tests bench plugins
	$(BIN)/ruff format --check python tests bench plugins
	$(BIN)/mypy
	$(BIN)/mypy --strict $(foreach p,$(PLUGINS),$(p)/$(subst -,_,$(notdir $(p))))
	$(PY) -m mypy.stubtest simclust._native

py-test: build
	$(PY) -m pytest -q --doctest-modules python/simclust tests
	SIMCLUST_SIMD=portable $(PY) -m pytest -q $(KERNEL_TESTS)
	$(PY) -m pytest -q --doctest-modules $(PLUGINS)

test: rust-check rust-test py-check py-test

demo: build
	$(BIN)/simclust demo

# The peers (faiss-cpu, scikit-learn, scipy, imagehash, pynndescent, hnswlib) are dev
# dependencies only.
bench: build
	$(PY) -m pip install --quiet "faiss-cpu>=1.8" "threadpoolctl>=3" "imagehash>=4.3" \
		"pynndescent>=0.5" "hnswlib>=0.8"
	$(PY) bench/bench_core.py
	$(PY) bench/bench_metrics.py
	$(PY) bench/bench_kmeans.py
	$(PY) bench/bench_pipeline.py
	$(PY) bench/bench_scale.py

fmt:
	cargo fmt --all
	$(BIN)/ruff format python tests bench plugins
	$(BIN)/ruff check --fix python tests bench plugins

clean:
	cargo clean
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache

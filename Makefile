# The README's two set-up commands: `make demo` (the main job, end to end, on synthetic data)
# and `make test` (the test suite). Each creates .venv and installs what it needs.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.edgemri-installed
DEMO_OUT ?= out/demo
DEMO_ARGS ?=

# The TensorFlow-free runtime venv for `make test-runtime` (what a Raspberry Pi installs, plus pytest).
RT_VENV ?= out/runtime-venv
RT_BIN := $(RT_VENV)/bin
NOT_IN_RUNTIME := tensorflow keras tf_keras openvino onnx jax torch

.PHONY: demo test test-fast test-runtime typecheck bench android-core lint results clean

$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -c constraints.txt -e ".[all,dev]"
	touch $@

demo: $(STAMP)
	$(BIN)/edgemri demo --out $(DEMO_OUT) --overwrite $(DEMO_ARGS)

test: $(STAMP)
	$(BIN)/python -m pytest -q tests

# Everything but the end-to-end (slow) and aarch64 emulation tests: under 2 minutes on 2 cores.
test-fast: $(STAMP)
	$(BIN)/python -m pytest -q -m "not slow and not emulation" tests

# The `runtime` tests on `pip install ".[litert,onnx,dev]"` alone, in a second venv: no TensorFlow,
# OpenVINO, keras or onnx there (checked), edgemri installed as a wheel (not editable), and pytest
# run from inside that venv so `import edgemri` cannot pick up this checkout's folders.
test-runtime:
	test -x $(RT_BIN)/python || $(PYTHON) -m venv $(RT_VENV)
	$(RT_BIN)/python -m pip install -q --upgrade pip
	rm -rf build
	$(RT_BIN)/python -m pip install -q -c constraints.txt ".[litert,onnx,dev]"
	$(RT_BIN)/python -m pip install -q --no-deps --force-reinstall .
	$(RT_BIN)/python -c "import importlib.util as u, sys; bad = [m for m in '$(NOT_IN_RUNTIME)'.split() \
		if u.find_spec(m)]; sys.exit(f'the runtime venv must not have {bad}' if bad else 0)"
	cd $(RT_VENV) && bin/python -m pytest -q -p no:cacheprovider -m runtime -c $(CURDIR)/pyproject.toml \
		--rootdir $(CURDIR) $(CURDIR)/tests
	$(MAKE) typecheck

# mypy on the runtime as installed on a Pi (the wheel in the runtime venv: py.typed, no TensorFlow).
typecheck:
	cd $(RT_VENV) && bin/python -m mypy --config-file $(CURDIR)/pyproject.toml -p edgemri.runtime

bench: $(STAMP)
	mkdir -p benchmarks/results
	$(BIN)/python -m pytest -q benchmarks --benchmark-json=benchmarks/results/pytest-benchmark.json \
		--benchmark-max-time=0.2 --benchmark-min-rounds=5

android-core:
	android-demo/core/run-tests.sh

# The real-data results table (issue 7): hours on a 2-core CPU, not part of CI.
# One dataset: make results RESULTS=brain4 (or brain2, busi3, or a job such as busi3-simple-cnn).
RESULTS ?= all
results: $(STAMP)
	benchmarks/results/reproduce.sh $(RESULTS)

lint: $(STAMP)
	$(BIN)/ruff check edgemri runtime train convert tests benchmarks

clean:
	rm -rf out .pytest_cache .benchmarks

# The README's two set-up commands: `make demo` (the main job, end to end, on synthetic data)
# and `make test` (the test suite). Each creates .venv and installs what it needs.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.edgemri-installed
DEMO_OUT ?= out/demo
DEMO_ARGS ?=

.PHONY: demo test bench android-core lint results clean

$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -c constraints.txt -e ".[all,dev]"
	touch $@

demo: $(STAMP)
	$(BIN)/edgemri demo --out $(DEMO_OUT) --overwrite $(DEMO_ARGS)

test: $(STAMP)
	$(BIN)/python -m pytest -q tests

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

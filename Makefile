# custseg: `make run` = set up + main job on the embedded defaults; `make test` = set up + suite.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
UV     := $(BIN)/uv
UV_VERSION := 0.13.9
STAMP  := $(VENV)/.installed

.DEFAULT_GOAL := help
.PHONY: help install run test test-fast lint format lock bench clean-state team-up team-down

help:  ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-12s %s\n", $$1, $$2}'

$(STAMP): requirements.lock pyproject.toml
	@# system packages, only when missing: a JRE for the Spark engine, a CJK font for plot labels,
	@# Chromium for the report rendering tests, PostgreSQL for team mode (make team-up)
	@pkgs=""; command -v java >/dev/null 2>&1 || pkgs="$$pkgs openjdk-17-jre-headless"; \
	command -v chromium >/dev/null 2>&1 || pkgs="$$pkgs chromium"; \
	[ -e /usr/share/fonts/truetype/wqy/wqy-microhei.ttc ] || pkgs="$$pkgs fonts-wqy-microhei"; \
	ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || pkgs="$$pkgs postgresql"; \
	if [ -n "$$pkgs" ]; then echo "installing with apt:$$pkgs"; \
		{ apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$pkgs; } \
		|| echo "warning: could not install$$pkgs (no Spark engine / Chinese plot labels / report rendering tests / team mode here)"; fi
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet "uv==$(UV_VERSION)"
	$(UV) pip install --python $(BIN)/python --compile-bytecode -r requirements.lock
	$(UV) pip install --python $(BIN)/python --compile-bytecode --no-deps -e .
	touch $(STAMP)

install: $(STAMP)  ## create .venv and install the pinned stack + custseg (no run)

run: install  ## main job on generated sample data (MLflow: local SQLite store in .custseg/)
	$(BIN)/custseg run

test: install  ## lint (ruff, import layers) + the whole test suite, slow end-to-end tests included
	$(BIN)/ruff check .
	$(BIN)/lint-imports
	$(BIN)/python -m pytest

test-fast: install  ## the suite without tests marked slow
	$(BIN)/python -m pytest -m "not slow"

lint: install  ## ruff check + import layers (import-linter: no stage imports upward)
	$(BIN)/ruff check .
	$(BIN)/lint-imports

format: install  ## ruff format + fix imports
	$(BIN)/ruff check --fix --select I . && $(BIN)/ruff format .

bench: install  ## cleaning, feature, segmentation (1M customers), probability and value benchmarks
	$(BIN)/python benchmarks/bench_probabilities.py --sample
	$(BIN)/python benchmarks/bench_value.py --sample
	$(BIN)/python benchmarks/bench_cleaning.py
	$(BIN)/python benchmarks/bench_features.py
	$(BIN)/python benchmarks/bench_segmentation.py

lock: install  ## re-resolve requirements.in into requirements.lock (wheels only)
	$(UV) pip compile requirements.in --python-version 3.11 --python-platform x86_64-manylinux_2_28 \
		--only-binary :all: --no-binary pyspark -o requirements.lock

team-up: install  ## team mode: start PostgreSQL + an MLflow server on it (.custseg/team/), print the URIs
	$(BIN)/custseg team up

team-down: install  ## team mode: stop them (the data stays in .custseg/team/)
	$(BIN)/custseg team down

clean-state:  ## forget local state (.custseg/: MLflow store, sample data, outputs, team mode's data)
	@if [ -e .custseg/team/team.json ] && [ -x $(BIN)/custseg ]; then $(BIN)/custseg team down --dir .custseg/team; fi
	rm -rf .custseg

# One entry point for users and CI. `make run` and `make test` set everything up first,
# so both work on a fresh machine (see README.md, Quickstart).

SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
NPM_STAMP := node_modules/.installed
EXAMPLE_NPM_STAMP := examples/node/node_modules/.installed
PYTEST_ARGS ?=
# Node 22 from the npm registry, where the system's Node.js is older (devkit/system-deps.sh).
export PATH := $(CURDIR)/.tools/node/node_modules/.bin:$(PATH)

.PHONY: setup system-deps run up test unit lint bench chaos k8s-manifests proto proto-check \
	proto-baseline fmt fresh-check clean

setup: system-deps $(STAMP) $(NPM_STAMP) $(EXAMPLE_NPM_STAMP)

# What the stack and the tests need from the system (Debian packages; see the script).
system-deps:
	@PYTHON=$(PYTHON) bash devkit/system-deps.sh

# A virtual environment that cannot run pip (half made by an interrupted setup, or by a
# Python without venv support) is made again rather than trusted.
$(STAMP): pyproject.toml
	$(BIN)/python -m pip --version >/dev/null 2>&1 || { rm -rf $(VENV) && $(PYTHON) -m venv $(VENV); }
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev,local,bench]"
	touch $@

$(NPM_STAMP): package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

# The Node.js client example (examples/node) and its test.
$(EXAMPLE_NPM_STAMP): examples/node/package.json examples/node/package-lock.json
	npm ci --prefix examples/node --no-audit --no-fund --loglevel=error
	touch $@

# The main job: the whole system on the local stack.
run: setup
	$(BIN)/python -m devkit demo

test: setup
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# The tests that need no infrastructure: no child process, no connection (a fixture
# refuses both), and here no network either. Under a minute.
unit: setup
	$$(command -v unshare >/dev/null && unshare -n true 2>/dev/null && echo unshare -n) \
	  $(BIN)/python -m pytest -m unit $(PYTEST_ARGS)

# The standard profiles (figures as JSON and a PNG in bench/results/); `make test` runs
# the short chaos profile and asserts correctness only.
bench: setup
	$(BIN)/python -m devkit bench --profile standard

chaos: setup
	$(BIN)/python -m devkit chaos --profile standard

# The plain manifests in k8s/manifests, rendered from the chart (a test keeps them in sync).
k8s-manifests: setup
	$(BIN)/python -m devkit k8s-manifests --write

lint: setup proto-check
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/buf lint
	$(BIN)/buf breaking --against proto/baseline.binpb

fmt: setup
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .
	$(BIN)/buf format -w

# Generated Python code (messages, .pyi, gRPC stubs) lives in voting/v1 and is never edited.
proto: $(STAMP)
	$(BIN)/python -m devkit proto --out .

# Fails when the committed generated code differs from what `make proto` would write.
proto-check: $(STAMP)
	$(BIN)/python -m devkit proto --check

# Run on a release: the contract `buf breaking` compares against.
proto-baseline: $(STAMP)
	$(BIN)/buf build -o proto/baseline.binpb

# `make test` on a Debian root made from nothing (debootstrap), as a new user's machine;
# by hand, as root: make fresh-check RELEASES="bookworm trixie".
RELEASES ?= bookworm
fresh-check:
	bash devkit/fresh-check.sh $(RELEASES)

clean:
	rm -rf $(VENV) .tools node_modules examples/node/node_modules .pytest_cache .mypy_cache \
	  .ruff_cache

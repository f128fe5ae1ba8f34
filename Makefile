# make demo / make test work on a brand-new Debian machine: each installs what it
# needs (apt packages, a virtualenv) and is quick when that is already done.
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
FARM := $(VENV)/bin/farm
APT_PACKAGES := $(shell grep -v '^\#' .ci/apt-packages)
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
PYTEST_ARGS ?=

.PHONY: all setup apt venv test test-fast lint demo clean

all: test

setup: apt venv

# Installs only what is missing, so a prepared machine skips apt entirely.
apt: .ci/apt-packages
	@missing=$$(for p in $(APT_PACKAGES); do dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q 'install ok installed' || echo $$p; done); \
	if [ -n "$$missing" ]; then \
		echo "farm: installing Debian packages: $$missing"; \
		$(SUDO) apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends $$missing; \
	fi

venv: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	@test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	@touch $@

lint: venv
	$(VENV)/bin/ruff check farm tests benchmarks examples
	$(VENV)/bin/ruff format --check farm tests benchmarks examples
	$(VENV)/bin/mypy farm

# Every test, the end-to-end demo (tests/e2e, ~15 min) included: CI runs exactly this.
# Two things run beside the slow tests, which must not share the CPU with anything big
# (QEMU guests under TCG, kernel builds): the disk-VM image of the bare-metal tests is
# made in the background (debootstrap mostly waits on the network and the disk; the
# tests wait for it on its lock), and the fast tests (one core for five minutes). Both
# test runs must pass; each prints its time per test group at the end (the slow run
# also its 40 slowest tests: where CI time goes).
# `make test-fast` leaves out what is marked slow (kernel builds, QEMU boots, stacks).
test: setup lint
	@$(PY) tests/hosts/diskvm.py prepare > $(VENV)/diskvm-prepare.log 2>&1 & \
	$(VENV)/bin/pytest -m "not slow" -p no:cacheprovider $(PYTEST_ARGS) \
		> $(VENV)/fast-tests.log 2>&1 & fast=$$!; \
	$(VENV)/bin/pytest -m slow --durations=40 $(PYTEST_ARGS); slow=$$?; \
	wait $$fast; fast_rc=$$?; \
	echo "== the fast tests, run beside the slow ones (exit $$fast_rc):"; \
	if [ $$fast_rc = 0 ]; then tail -n 30 $(VENV)/fast-tests.log; else cat $(VENV)/fast-tests.log; fi; \
	[ $$slow = 0 ] && [ $$fast_rc = 0 ]

test-fast: setup
	$(VENV)/bin/pytest -m "not slow" $(PYTEST_ARGS)

demo: setup
	$(PY) -m farm.demo

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache

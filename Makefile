# heartsong: the two commands that do all set-up on Debian 12 / Raspberry Pi OS bookworm.
#
#   make demo   install what is missing, then run the device in simulation
#   make test   install what is missing, then lint, type-check and run the whole test suite
#
# Both are idempotent: system packages are installed only when `dpkg-query` says they are
# missing, and the virtual environment is rebuilt only when pyproject.toml changes.

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
VENV_STAMP := $(VENV)/.stamp-deps

# portaudio19-dev: headers to build PyAudio; mosquitto: the broker the MQTT tests start;
# jackd2: a headless real-time audio device (dummy driver) that PortAudio plays to in tests.
APT_PACKAGES := portaudio19-dev mosquitto jackd2 shellcheck systemd
# jackd2 asks at install time whether to enable real-time limits for the audio group.
APT_PRESEED := jackd2 jackd/tweak_rt_limits boolean false

DEMO_ARGS ?= --duration 120 --speed 10 --audio none
PYTEST_ARGS ?=

.PHONY: help deps venv demo test lint typecheck pytest realtime soak clean distclean

help:
	@echo "make demo       install what is missing, run the simulated device (DEMO_ARGS='$(DEMO_ARGS)')"
	@echo "make test       install what is missing, then ruff, mypy and pytest (PYTEST_ARGS=...)"
	@echo "make deps       apt packages: $(APT_PACKAGES)"
	@echo "make venv       $(VENV)/ with the package installed editable, plus the dev tools"
	@echo "make soak       simulated 8-h night with faults + 10 real minutes on JACK; docs/RELIABILITY.md"
	@echo "make lint | typecheck | pytest | realtime | clean | distclean"

# System packages, installed only when one is missing (so a second run asks nothing of apt).
# Also covers what a stock Debian python3 lacks to build the venv: python3-venv, python3-dev, gcc.
deps:
	@if ! command -v dpkg-query >/dev/null 2>&1; then \
	  echo "deps: no dpkg here; install by hand: $(APT_PACKAGES)" >&2; exit 0; \
	fi; \
	wanted="$(APT_PACKAGES)"; \
	$(PYTHON) -c 'import ensurepip, venv' 2>/dev/null || wanted="$$wanted python3-venv"; \
	$(PYTHON) -c 'import os, sysconfig, sys; sys.exit(not os.path.exists(os.path.join(sysconfig.get_paths()["include"], "Python.h")))' \
	  || wanted="$$wanted python3-dev"; \
	command -v gcc >/dev/null 2>&1 || wanted="$$wanted gcc libc6-dev"; \
	missing=""; \
	for p in $$wanted; do \
	  [ "$$(dpkg-query -W -f='$${db:Status-Status}' "$$p" 2>/dev/null)" = installed ] || missing="$$missing $$p"; \
	done; \
	if [ -z "$$missing" ]; then exit 0; fi; \
	sudo=""; \
	if [ "$$(id -u)" -ne 0 ]; then \
	  if command -v sudo >/dev/null 2>&1; then sudo=sudo; \
	  else echo "deps: need root (or sudo) to install:$$missing" >&2; exit 1; fi; \
	fi; \
	echo "deps: installing$$missing"; \
	echo "$(APT_PRESEED)" | $$sudo debconf-set-selections; \
	$$sudo env DEBIAN_FRONTEND=noninteractive apt-get update -q; \
	$$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $$missing

venv: $(VENV_STAMP)

$(BIN)/python: | deps
	$(PYTHON) -m venv $(VENV)

$(VENV_STAMP): pyproject.toml | $(BIN)/python deps
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $@

demo: deps venv
	$(BIN)/heartsong demo $(DEMO_ARGS)

lint: venv
	$(BIN)/ruff check .

typecheck: venv
	$(BIN)/mypy firmware/heartsong

# The test run: a JACK dummy server is started for it (and stopped after) unless one runs.
# HEARTSONG_REQUIRE_SERVICES=1 turns the fixtures' "service missing" skips into errors, so a
# missing install step cannot hide behind a green run. The JACK period is 2048 frames
# (42.7 ms): the engine still renders 256-frame callbacks, eight per cycle, but a shared VM's
# host at times does not run a virtual CPU for 10-35 ms, and the dummy driver then reports
# an xrun to every client (tools/bench_audio.py section 5 measures these stalls;
# tools/bench_audio.py measures the callback itself at 256 frames).
pytest: deps venv
	HEARTSONG_REQUIRE_SERVICES=1 JACK_DUMMY_PERIOD=2048 bash tools/with_jack_dummy.sh $(BIN)/python -m pytest $(PYTEST_ARGS)

# The 60-s glitch test alone (it also runs in `make test`).
realtime: deps venv
	HEARTSONG_REQUIRE_SERVICES=1 JACK_DUMMY_PERIOD=2048 bash tools/with_jack_dummy.sh $(BIN)/python -m pytest -m realtime $(PYTEST_ARGS)

# Issue 12 soak (not in make test): a simulated 8-h night with random faults (run twice,
# ~9 min: once for RSS, once under tracemalloc), then 10 real minutes on the JACK dummy
# device with a real broker; then docs/RELIABILITY.md is regenerated from tests/reliability
# and docs/soak-*.json. Fails if any soak check fails, after writing every figure.
soak: deps venv
	@status=0; \
	$(BIN)/python tools/soak.py || status=1; \
	HEARTSONG_REQUIRE_SERVICES=1 JACK_DUMMY_PERIOD=2048 bash tools/with_jack_dummy.sh \
	  $(BIN)/python tools/soak.py --realtime 600 || status=1; \
	$(BIN)/python tools/reliability_report.py || status=1; \
	exit $$status

# -k: a lint or type error does not hide the test results; any failure still fails `make test`.
test:
	@$(MAKE) --no-print-directory -k lint typecheck pytest

clean:
	rm -rf .pytest_cache .mypy_cache .ruff_cache .hypothesis build dist firmware/*.egg-info
	find . -path ./$(VENV) -prune -o -type d -name __pycache__ -prune -exec rm -rf {} +

distclean: clean
	rm -rf $(VENV)

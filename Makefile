# sori: `make demo` installs what is missing and serves the demo; `make test` runs the suite.
SHELL := /bin/bash
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
APT_RUNTIME := ffmpeg espeak-ng sox
APT_TEST := chromium nginx-light wrk curl openssl redis-server postgresql unzip
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: demo test check lint types install install-test system system-test venv player-deps e2e-deps bench clean

demo: install
	$(BIN)/sori demo

test: install-test
	$(BIN)/pytest -q --durations=30 $(PYTEST_FLAGS)

check: install-test lint types
	$(BIN)/pytest -q --durations=30 $(PYTEST_FLAGS)

lint:
	$(BIN)/ruff check .

types:
	$(BIN)/mypy

install: system venv player-deps

install-test: install system-test e2e-deps

# apt-get only when a tool is missing; `apt-get update` once per run before the first install.
system:
	@missing=""; for t in ffmpeg ffprobe espeak-ng sox; do command -v $$t >/dev/null || missing=1; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing $(APT_RUNTIME) with apt-get"; \
	  $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq $(APT_RUNTIME) >/dev/null; \
	fi

system-test:
	@missing=""; for t in chromium nginx wrk curl openssl redis-server unzip; do command -v $$t >/dev/null || [ -x /usr/sbin/$$t ] || missing=1; done; ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || missing=1; \
	if [ -n "$$missing" ]; then \
	  echo "installing $(APT_TEST) with apt-get"; \
	  $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq $(APT_TEST) >/dev/null; \
	fi

$(BIN)/python:
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

$(VENV)/.installed: $(BIN)/python setup.cfg pyproject.toml
	$(BIN)/pip install -q -e '.[test]'
	touch $@

venv: $(VENV)/.installed

player-deps: player/node_modules/.installed

player/node_modules/.installed: player/package.json player/package-lock.json
	cd player && npm ci --no-audit --no-fund --loglevel=error
	touch $@

e2e-deps: tests/e2e/node_modules/.installed

tests/e2e/node_modules/.installed: tests/e2e/package.json tests/e2e/package-lock.json
	cd tests/e2e && npm ci --no-audit --no-fund --loglevel=error
	touch $@

bench: install-test
	$(BIN)/python -m bench.package_audio
	$(BIN)/python -m bench.package_video
	$(BIN)/python -m bench.origin
	$(BIN)/python -m bench.startup
	$(BIN)/python -m bench.live
	$(BIN)/python -m bench.jobs

clean:
	rm -rf $(VENV) var player/node_modules tests/e2e/node_modules

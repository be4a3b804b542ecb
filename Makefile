# Two commands: `make demo` runs the product, `make test` runs lint and the whole suite.
# Every install step lives here, so a fresh Debian-like machine needs nothing else.

PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-$(shell cat pyproject.toml | sha1sum | cut -c1-12)
SUDO   := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
APT_PACKAGES := mosquitto

.PHONY: demo demo-reset test lint pytest bench system-deps venv clean

venv: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[agent,cloud,sim,dev]'
	rm -f $(VENV)/.installed-*
	touch $@

# Installs system packages only when a tool is missing: the MQTT broker the tests and the demo
# run, systemd-analyze, with which the tests check the agent's unit file, and the Chromium the
# dashboard's browser tests drive (Playwright never downloads a browser of its own here).
system-deps:
	@missing=""; \
	command -v mosquitto >/dev/null 2>&1 || [ -x /usr/sbin/mosquitto ] || missing="$$missing mosquitto"; \
	command -v systemd-analyze >/dev/null 2>&1 || missing="$$missing systemd"; \
	command -v chromium >/dev/null 2>&1 || missing="$$missing chromium"; \
	if [ -n "$$missing" ]; then \
		echo "installing system packages:$$missing"; \
		$(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq $$missing; \
	fi

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

pytest: system-deps $(STAMP)
	$(PY) -m pytest -q

test: system-deps $(STAMP) lint pytest

demo: system-deps $(STAMP)
	$(VENV)/bin/kasify-sim demo $(DEMO_ARGS)

demo-reset: system-deps $(STAMP)
	$(VENV)/bin/kasify-sim demo --reset $(DEMO_ARGS)

bench: system-deps $(STAMP)
	@for b in bench/bench_*.py; do $(PY) $$b || exit 1; done

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache

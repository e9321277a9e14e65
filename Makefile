# tribune: `make demo` runs a simulated room, `make test` runs the tests, `make lint` checks the code.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: venv demo demo-fleet test lint format clean wheels system-test

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

venv: $(STAMP)

demo: $(STAMP)
	$(PY) -m tribune demo

# A broker, a hub (fleet page on http://127.0.0.1:8090) and 54 rooms: 18 centres x 3 rooms.
demo-fleet: $(STAMP)
	$(PY) -m tribune demo --fleet 54

# The panel tests drive Chromium through Playwright's sync API, which keeps an event loop
# running for its whole session: they get a pytest process of their own.
test: $(STAMP)
	$(PY) -m pytest -q --ignore=tests/panel
	$(PY) -m pytest -q tests/panel

# The offline installer's input: tribune and every dependency as wheels, for
# `deploy/install.sh --wheels dist/wheels` on a PC without PyPI (docs/install.md).
wheels: $(STAMP)
	rm -rf dist/wheels
	$(PY) -m pip wheel --quiet . -w dist/wheels

# The system test (docs/system-test.md): tribune installed from `make wheels` on a minimal Debian 12
# booted under QEMU (TCG), with an emulated USB-serial adapter and keyboard. Needs root,
# debootstrap, qemu-system-x86, qemu-utils, e2fsprogs. The guest image is cached in
# /var/tmp/tribune-system-test (TRIBUNE_SYSTEM_CACHE): the first run builds it (minutes).
system-test: $(STAMP)
	TRIBUNE_SYSTEM_TEST=1 $(PY) -m pytest -v --timeout=3600 tests/system

lint: $(STAMP)
	$(VENV)/bin/ruff check tribune tests bench
	$(VENV)/bin/ruff format --check tribune tests bench
	$(VENV)/bin/mypy

format: $(STAMP)
	$(VENV)/bin/ruff format tribune tests bench
	$(VENV)/bin/ruff check --fix tribune tests bench

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache

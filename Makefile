# Tonle: `make run` starts everything, `make test` runs the whole suite. Both install what they need.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
PYTEST_ARGS ?=

.PHONY: run test lint unit integration cloud security bench install devcloud-up devcloud-down devcloud-status clean

# Debian packages the orchestrator runs (not Python): restic reads the backup repositories.
# Through devcloud/apt.py (standard library only): one apt at a time, another's lock waited for.
/usr/bin/restic:
	$(PYTHON) -m devcloud.apt install restic

$(STAMP): pyproject.toml | /usr/bin/restic
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check --upgrade pip==25.3
	$(PY) -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

run: $(STAMP)
	$(VENV)/bin/tonle run

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check orchestrator portal_api stacks tests bench devcloud pulumi_embedded
	$(VENV)/bin/mypy orchestrator portal_api stacks tests bench devcloud pulumi_embedded

unit: $(STAMP)
	$(VENV)/bin/pytest -m unit $(PYTEST_ARGS)

integration: $(STAMP)
	$(VENV)/bin/pytest -m integration $(PYTEST_ARGS)

cloud: $(STAMP)
	$(VENV)/bin/pytest -m cloud $(PYTEST_ARGS)

security: $(STAMP)
	$(VENV)/bin/pytest -m security $(PYTEST_ARGS)

test: lint
	$(VENV)/bin/pytest $(PYTEST_ARGS)

bench: $(STAMP)
	$(PY) bench/api.py

devcloud-up: $(STAMP)
	$(PY) -m devcloud up

devcloud-down: $(STAMP)
	$(PY) -m devcloud down

devcloud-status: $(STAMP)
	$(PY) -m devcloud status

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache

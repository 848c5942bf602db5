# Tonle: `make run` starts everything, `make test` runs the whole suite. Both install what they need.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
PYTEST_ARGS ?=

.PHONY: run test lint unit integration cloud security browser screenshots bench install devcloud-up devcloud-down devcloud-status clean

# Debian packages the orchestrator runs (not Python): restic reads the backup repositories.
# Through devcloud/apt.py (standard library only): one apt at a time, another's lock waited for.
/usr/bin/restic:
	$(PYTHON) -m devcloud.apt install restic

# uv installs the project (parallel downloads: ~6 s from a cold cache here, against ~33 s for
# pip), and pip does when uv fails. The same uv pin as the local data centre's venvs.
UV := uv==0.13.8

$(STAMP): pyproject.toml | /usr/bin/restic
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check $(UV)
	$(VENV)/bin/uv pip install --quiet --python $(PY) -e '.[dev]' \
		|| $(PY) -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	touch $(STAMP)

# The browser tier drives Debian's Chromium (Playwright's own browser download needs the internet
# and a distribution it knows); fonts-khmeros gives Chromium a system Khmer font besides the
# console's own web font.
/usr/bin/chromium:
	$(PYTHON) -m devcloud.apt install chromium fonts-khmeros

# The tests' Node packages, from their committed lock files: axe-core (browser tier) and the
# OpenID provider the console's single sign-on is tested against. `npm ci` writes
# node_modules/.package-lock.json: it runs again only when the lock file is newer, or
# node_modules is gone.
NODE_DIRS := $(patsubst %/package-lock.json,%,$(wildcard tests/browser/package-lock.json tests/support/oidc_provider/package-lock.json))
NODE_STAMP := $(addsuffix /node_modules/.package-lock.json,$(NODE_DIRS))

%/node_modules/.package-lock.json: %/package-lock.json
	@command -v npm >/dev/null || { echo "npm (Node.js 20.19 or newer) is needed for the tests' Node packages" >&2; exit 1; }
	npm ci --prefix "$*" --no-audit --no-fund --loglevel=error
	touch $@

install: $(STAMP) $(NODE_STAMP) | /usr/bin/chromium

run: $(STAMP)
	$(VENV)/bin/tonle run

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check orchestrator portal_api stacks tests bench devcloud pulumi_embedded
	$(VENV)/bin/mypy orchestrator portal_api stacks tests bench devcloud pulumi_embedded

unit: $(STAMP)
	$(VENV)/bin/pytest -m unit $(PYTEST_ARGS)

integration: $(STAMP) $(NODE_STAMP)
	$(VENV)/bin/pytest -m integration $(PYTEST_ARGS)

cloud: $(STAMP)
	$(VENV)/bin/pytest -m cloud $(PYTEST_ARGS)

security: $(STAMP)
	$(VENV)/bin/pytest -m security $(PYTEST_ARGS)

browser: $(STAMP) $(NODE_STAMP) | /usr/bin/chromium
	$(VENV)/bin/pytest -m browser $(PYTEST_ARGS)

# The README's console screenshots (docs/console/*.png), taken again by the browser tier.
/usr/bin/pngquant:
	$(PYTHON) -m devcloud.apt install pngquant

screenshots: $(STAMP) $(NODE_STAMP) | /usr/bin/chromium /usr/bin/pngquant
	TONLE_UPDATE_SCREENSHOTS=1 $(VENV)/bin/pytest -m browser tests/browser $(PYTEST_ARGS)

# Two pytest processes at once: the cloud tier, and every other tier beside it (tests/support/two_lanes.py).
test: lint $(NODE_STAMP) | /usr/bin/chromium
	$(PY) -m tests.support.two_lanes $(PYTEST_ARGS)

# bench/api.py's load generator (C, so it takes little of the CPU the servers under test share).
/usr/bin/wrk:
	$(PYTHON) -m devcloud.apt install wrk

bench: $(STAMP) | /usr/bin/wrk
	$(PY) bench/api.py

devcloud-up: $(STAMP)
	$(PY) -m devcloud up

devcloud-down: $(STAMP)
	$(PY) -m devcloud down

devcloud-status: $(STAMP)
	$(PY) -m devcloud status

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache $(addsuffix /node_modules,$(NODE_DIRS))

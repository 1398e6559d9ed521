# Every target creates .venv on a fresh machine when it is missing (or stale).
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
DEMO_ARGS ?=

.PHONY: all demo demo-headless test lint bench clean browser-test

all: test

$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[test,lint]'
	touch $(STAMP)

venv: $(STAMP)

## make demo: the dashboard on the simulator (reference scenario)
demo: $(STAMP)
	$(BIN)/rhtui --demo $(DEMO_ARGS)

## make demo-headless: three minutes on the simulator at 20x speed, as log lines
demo-headless: $(STAMP)
	$(BIN)/rhtui --demo --headless --duration 3 --speed 20 $(DEMO_ARGS)

## make test: the whole suite
test: $(STAMP)
	$(BIN)/python -m pytest -q

## make browser-test: `rhtui serve` in a real headless Chromium (installs Debian's chromium if missing); saves docs/serve-screenshot.png
browser-test: $(STAMP)
	@command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 || \
	  { echo "chromium is not installed: installing Debian's (apt-get)"; \
	    $(if $(filter 0,$(shell id -u)),,sudo) apt-get update && \
	    $(if $(filter 0,$(shell id -u)),,sudo) apt-get install -y chromium; }
	BROWSER_SCREENSHOT=docs/serve-screenshot.png $(BIN)/python -m pytest -q -rs -m browser tests/web/test_browser.py

## make lint: the static checks: ruff (style, imports, likely bugs), mypy (types), the import contracts (layers)
lint: $(STAMP)
	$(BIN)/lint-imports
	$(BIN)/ruff check rhtui tests bench
	$(BIN)/mypy

## make bench: every bench/bench_*.py (run_all finds them: store, scheduler, session, soak, throughput, ensemble, ui), each writing its bench/results/*.md
bench: $(STAMP)
	$(BIN)/python -m bench.run_all

clean:
	rm -rf $(VENV) build dist *.egg-info .pytest_cache .hypothesis

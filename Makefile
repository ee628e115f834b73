# Switchboard developer commands. `make demo` and `make test` are all a newcomer needs.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
PYTEST := $(BIN)/python -m pytest

.PHONY: demo serve test test-sqlite test-postgres lint bench i18n chromium clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test,lint]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/switchboard demo

serve: $(STAMP)
	$(BIN)/switchboard serve

# Debian's Chromium drives the browser tests (Playwright cannot download its own browser here).
chromium:
	@if [ ! -x /usr/bin/chromium ]; then \
		if [ "$$(id -u)" != 0 ]; then echo "install Debian's chromium package (apt-get install chromium) and re-run" >&2; exit 1; fi; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium fonts-dejavu-core >/dev/null; \
	fi

# The two passes use different databases, so they run side by side (each one's output printed whole).
test: $(STAMP) chromium
	$(MAKE) --no-print-directory -j2 --output-sync=target test-sqlite test-postgres

test-sqlite: $(STAMP)
	SWITCHBOARD_TEST_BACKEND=sqlite $(PYTEST) -m "not postgres and not redis"

# Runs the whole suite again on PostgreSQL with Redis when their URLs are set (.ci/run sets them).
test-postgres: $(STAMP)
	@if [ -n "$$SWITCHBOARD_TEST_PG_URL$$SWITCHBOARD_TEST_REDIS_URL" ]; then \
		SWITCHBOARD_TEST_BACKEND=postgres $(PYTEST); \
	else \
		echo "SWITCHBOARD_TEST_PG_URL / SWITCHBOARD_TEST_REDIS_URL not set: PostgreSQL + Redis pass not run"; \
	fi

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/mypy

bench: $(STAMP)
	@for script in bench/bench_*.py bench/ingest.py bench/routing.py bench/calls.py bench/search.py; do echo "== $$script"; $(BIN)/python $$script || exit 1; done

i18n: $(STAMP)
	$(BIN)/pybabel extract -F babel.cfg -k N_ -k gettext --no-location --project Switchboard -o webui/locale/messages.pot .
	$(BIN)/pybabel update -i webui/locale/messages.pot -d webui/locale -D messages --no-fuzzy-matching

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache

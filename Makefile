# klubb — the README's commands. Everything installs into .venv from pyproject.toml.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
DEMO_DB := sqlite://var/demo.sqlite3
# GraphiQL's browser assets (React, GraphiQL), pinned in package-lock.json and served by klubb itself (api/graphiql.py)
NODE_ASSETS := node_modules/.package-lock.json

.PHONY: install demo test lint bench clean

$(BIN)/klubb: pyproject.toml
	test -d $(VENV) || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[test]'
	touch $@

$(NODE_ASSETS): package.json package-lock.json
	command -v npm >/dev/null || (apt-get update -qq && apt-get install -y -qq npm)
	npm ci --no-audit --no-fund --ignore-scripts
	touch $@

install: $(BIN)/klubb $(NODE_ASSETS)

demo: install
	mkdir -p var
	KLUBB_DATABASE_URL=$(DEMO_DB) $(BIN)/klubb migrate
	KLUBB_DATABASE_URL=$(DEMO_DB) $(BIN)/klubb seed demo/program.toml
	FIREBASE_AUTH_EMULATOR_HOST=127.0.0.1:9099 KLUBB_DATABASE_URL=$(DEMO_DB) $(BIN)/klubb demo

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

# The console's browser tests drive Debian's chromium (never a Playwright browser download).
test: install lint
	command -v chromium >/dev/null || (apt-get update -qq && apt-get install -y -qq chromium)
	$(BIN)/python -m pytest

# The load generators come from Debian: wrk, and pgbench (Debian 12 ships it with the server, postgresql-contrib;
# /usr/bin/pgbench alone is only postgresql-common's wrapper, hence the --version check).
# bench.live (after the HTTP phases, with the push benches) needs Redis: started here if down, as .ci/run does.
# Extra options: make bench BENCH_ARGS='--duration 5 --engines sqlite' (python -m bench.run --help lists them;
# --push-members 100000 for the README's campaign, --no-push-live to skip the push and live benches).
BENCH_ARGS ?=
bench: install
	command -v wrk >/dev/null || (apt-get update -qq && apt-get install -y -qq wrk)
	pgbench --version >/dev/null 2>&1 || (apt-get update -qq && apt-get install -y -qq postgresql-contrib)
	command -v redis-server >/dev/null || (apt-get update -qq && apt-get install -y -qq redis-server)
	redis-cli -h 127.0.0.1 ping >/dev/null 2>&1 || \
		redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no
	$(BIN)/python -m bench.run $(BENCH_ARGS)

clean:
	rm -rf $(VENV) node_modules var .pytest_cache .ruff_cache .mypy_cache

# Two commands on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
RUNTIME := $(VENV)/.installed
STAMP  := $(VENV)/.installed-dev
OUT    ?= cityx-demo
FUZZ_S ?= 20

.PHONY: demo test lint typecheck unit fuzz services bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# The demo needs the package and the sandbox; the tests also need the dev tools.
$(RUNTIME): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[sumo]'
	touch $(RUNTIME)

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@command -v bwrap >/dev/null || { apt-get update -q && apt-get install -y -q bubblewrap; } \
	  || echo "bubblewrap is missing: the server will refuse to run vendor code" >&2
	@ldconfig -p | grep -q libseccomp.so.2 || { apt-get update -q && apt-get install -y -q libseccomp2; } \
	  || echo "libseccomp is missing: the server's walls will have no seccomp filter" >&2
	# The console's browser tests drive Debian's Chromium (never `playwright install`).
	@test -x /usr/bin/chromium || apt-get install -y -q chromium \
	  || echo "chromium is missing: the console's browser tests will be skipped" >&2
	touch $(RUNTIME) $(STAMP)

demo: $(RUNTIME)
	$(BIN)/cityx demo --out $(OUT)
	@echo "serve these results: $(BIN)/cityx serve --demo (one user per role, printed; docs/server.md)"

# PostgreSQL and Mosquitto run on the development machines and CI; start them if down.
services: $(STAMP)
	@pg_isready -q -h 127.0.0.1 -p 5432 || pg_ctlcluster --skip-systemctl-redirect $$(ls /etc/postgresql) main start
	@for i in $$(seq 1 30); do pg_isready -q -h 127.0.0.1 -p 5432 && exit 0; sleep 1; done; \
	  echo "PostgreSQL did not come up at 127.0.0.1:5432" >&2; exit 1
	@$(BIN)/python -c "import socket; socket.create_connection(('127.0.0.1', 1883), 2).close()" 2>/dev/null \
	  || mosquitto -d -c /etc/mosquitto/mosquitto.conf
	@for i in $$(seq 1 30); do $(BIN)/python -c "import socket; socket.create_connection(('127.0.0.1', 1883), 2).close()" 2>/dev/null && exit 0; sleep 1; done; \
	  echo "Mosquitto did not come up at 127.0.0.1:1883" >&2; exit 1

# ruff, import-linter for the layers (contracts in pyproject.toml), bandit for security.
lint: $(STAMP)
	$(BIN)/ruff check src tests bench examples fuzz
	$(BIN)/ruff format --check src tests bench examples fuzz
	$(BIN)/lint-imports
	$(BIN)/bandit -q -c pyproject.toml -r src -ll

typecheck: $(STAMP)
	$(BIN)/mypy src

unit: services
	$(BIN)/pytest --cov=cityx --cov-report=term:skip-covered --durations=30

# A bounded run of the envelope verifier's fuzz target (atheris/libFuzzer).
fuzz: $(STAMP)
	$(BIN)/python fuzz/verify.py -max_total_time=$(FUZZ_S) -rss_limit_mb=2048

test: lint typecheck unit fuzz

bench: $(STAMP)
	$(BIN)/python bench/demo.py

clean:
	rm -rf $(VENV) $(OUT) .pytest_cache .mypy_cache .ruff_cache .coverage build src/*.egg-info

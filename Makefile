# Two commands for a new user:  `make run`  (install + serve on 127.0.0.1:8000)  and  `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: install run init test test-fast lint bench clean chromium rasa

install: $(STAMP)

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info[:2] == (3, 11) else "Python 3.11 is required (set PYTHON=python3.11)")'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	# torch first, pinned to the CPU build: anything looser pulls several GB of CUDA packages.
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet -e ".[dev]"
	@touch $(STAMP)

## run: install, then serve the demo help desk on http://127.0.0.1:8000 (SQLite in ./var: articles, vectors, models)
run: install
	HF_HUB_OFFLINE=1 $(BIN)/frontdesk serve

## init: create the database, import the demo help center, build the index and train (progress bars)
init: install
	HF_HUB_OFFLINE=1 $(BIN)/frontdesk init

## chromium: Debian's Chromium for the browser tests (no browser download)
chromium:
	@command -v chromium >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	  elif command -v sudo >/dev/null 2>&1; then sudo apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	  else echo "chromium is not installed and cannot be installed here: browser tests will be skipped"; fi; }

## test: install, then run the whole suite (unit, storage on SQLite and PostgreSQL, MiniLM, browser)
test: install chromium
	HF_HUB_OFFLINE=1 $(BIN)/python -m pytest $(PYTEST_ARGS)

## test-fast: only the unit tests
test-fast: install
	$(BIN)/python -m pytest -m unit $(PYTEST_ARGS)

lint: install
	$(BIN)/ruff check .
	$(BIN)/mypy .

## bench: turn latency and throughput through the HTTP API, and index build throughput
bench: install
	HF_HUB_OFFLINE=1 $(BIN)/python bench/turn_latency.py
	HF_HUB_OFFLINE=1 $(BIN)/python bench/index_build.py

## rasa: build Rasa 3.6.21's own Python 3.10 virtualenv (once, in $FRONTDESK_RASA_HOME, default
## ~/.cache/frontdesk/rasa-3.6.21), train it from the configured nlu.yml (cached) and serve it on 127.0.0.1
## (RASA_PORT=..., default: the port of rasa.url, 5005). Then set FRONTDESK_RASA__ENABLED=true for the bot.
rasa: install
	tools/rasa/setup.sh
	RASA_TELEMETRY_ENABLED=false $(BIN)/python -m tools.rasa.project serve $(if $(RASA_PORT),--port $(RASA_PORT))

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache *.egg-info

# CDP Lite — two commands: `make demo` and `make test`. Nothing to install by hand.
PYTHON ?= $(shell command -v python3.11 || command -v python3.12 || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo test test-pg ui bench lint format clean install

install: $(STAMP)

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "CDP Lite needs Python >= 3.11; set PYTHON=/path/to/python3.11")'
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)            ## set up and run the whole pipeline on demo data
	$(BIN)/cdp demo $(ARGS)

test: $(STAMP)            ## the test suite (embedded PostgreSQL unless CDP_DATABASE_URL is set)
	$(BIN)/python -m pytest $(ARGS)

test-pg: $(STAMP)         ## database-facing tests against the machine's PostgreSQL service
	CDP_DATABASE_URL=$${CDP_TEST_PG_URL:-postgresql://postgres@127.0.0.1:5432/postgres} \
		$(BIN)/python -m pytest -m "db" $(ARGS)

ui: $(STAMP)              ## Dagster UI on http://localhost:3000
	$(BIN)/cdp ui

bench: $(STAMP)           ## benchmarks -> benchmarks/results/ and benchmarks/README.md
	$(BIN)/python benchmarks/run.py $(ARGS)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

clean:                    ## stop the embedded server and delete local state (.cdp) and dbt output
	-$(BIN)/cdp db stop
	rm -rf .cdp target logs

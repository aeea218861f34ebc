# Two commands set everything up on a fresh clone: `make demo` and `make test`.
# Both create .venv with the package installed; nothing else is needed beyond Python >= 3.11.

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/python -m newsletter.jobs.demo

test: $(STAMP)
	$(BIN)/python -m pytest -q

lint: $(STAMP)
	$(BIN)/ruff check newsletter tests benchmarks
	$(BIN)/ruff format --check newsletter tests benchmarks
	$(BIN)/mypy
	$(BIN)/lint-imports

# Every performance target, measured; writes docs/benchmarks.md. QUICK=1: small sizes, a smoke
# test of the scripts. PostgreSQL is measured when NEWSLETTER_BENCH_POSTGRES_URL (or
# NEWSLETTER_TEST_POSTGRES_URL) points at a reachable database.
bench: $(STAMP)
	$(BIN)/python benchmarks/suite.py $(if $(QUICK),--quick)

clean:
	rm -rf $(VENV) build demo outbox preview *.egg-info

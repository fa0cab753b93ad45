# The verbs a person types. Every target installs what it needs into .venv first.
PY ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: install demo test lint bench clean

$(STAMP): pyproject.toml
	$(PY) -m venv $(VENV)
# chalice 1.34 requires pip<26.3: a newer pip would make every later install warn of the conflict
	$(BIN)/python -m pip install --quiet 'pip>=24,<26.3'
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

## The main job: synthetic extract -> training pipeline -> served model -> predictions.
demo: $(STAMP)
	$(BIN)/woundcare demo

## The whole test suite (unit, integration, e2e).
test: $(STAMP)
	$(BIN)/python -m pytest

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

## Benchmarks print a table and write JSON under out/bench/.
bench: $(STAMP)
	@for b in tests/benchmarks/bench_*.py; do $(BIN)/python $$b || exit 1; done

clean:
	rm -rf $(VENV) .woundcare out .pytest_cache .hypothesis

# Clarion: `make run` starts the embedded demo, `make test` runs every check.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test lint typecheck unit bench soak lock clean

$(STAMP): requirements/dev.lock pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check --require-hashes -r requirements/dev.lock
	$(BIN)/pip install --quiet --disable-pip-version-check --no-deps -e .
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/clarion demo

test: lint typecheck unit

lint: $(STAMP)
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench

typecheck: $(STAMP)
	$(BIN)/mypy

unit: $(STAMP)
	$(BIN)/pytest

# Every benchmark in bench/, then one summary table (figure | value | reference | ratio).
bench: $(STAMP)
	$(BIN)/python -m bench

# The stability target: 10 minutes at a steady 5,000 deliveries/s (make bench runs 60 s of it).
soak: $(STAMP)
	CLARION_BENCH_SOAK_SECONDS=$${CLARION_BENCH_SOAK_SECONDS:-600} $(BIN)/python -m bench soak

lock:
	$(PYTHON) -m venv .lockvenv && .lockvenv/bin/pip install --quiet pip-tools
	.lockvenv/bin/pip-compile --quiet --extra dev --generate-hashes --strip-extras --allow-unsafe \
		-o requirements/dev.lock pyproject.toml

clean:
	rm -rf $(VENV) .lockvenv .mypy_cache .pytest_cache .ruff_cache

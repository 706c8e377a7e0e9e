# Two commands set everything up: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: demo test bench venv browser clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip setuptools wheel

# Installed (again) whenever the project's metadata changes.
$(VENV)/.installed-%: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[$*]'
	touch $@

browser:
	@scripts/ensure-browser.sh

demo: $(VENV)/.installed-sandbox browser
	$(BIN)/harvestkit demo

test: $(VENV)/.installed-test browser
	$(BIN)/python -m pytest

# Not part of `make test`: the benchmark suite, with the peers it compares against.
$(VENV)/.installed-bench-peers: $(VENV)/.installed-test
	$(BIN)/python -m pip install --quiet 'g4f>=8.8' httpx2
	touch $@

bench: $(VENV)/.installed-bench-peers browser
	$(BIN)/python scripts/bench_suite.py

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .hypothesis

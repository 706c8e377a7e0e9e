# Two commands set everything up: `make demo` and `make test`.
# Both install the exact versions in constraints.txt; `make test-latest` tries the newest ones.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PIN := -c constraints.txt
LATEST := .venv-latest

.PHONY: demo test test-latest pins bench venv browser detectors redis clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# Installed (again) whenever the project's metadata or the pins change. No build isolation, so
# the build uses the pinned setuptools too.
$(VENV)/.installed-%: pyproject.toml constraints.txt | $(BIN)/python
	$(BIN)/python -m pip install --quiet $(PIN) pip setuptools wheel
	$(BIN)/python -m pip install --quiet --no-build-isolation $(PIN) -e '.[$*]'
	touch $@

browser:
	@scripts/ensure-browser.sh

# The sandbox's challenge runs the pinned bot detectors (npm pack, once, into the user cache;
# HARVESTKIT_DETECTORS_DIR moves it); nodejs/npm and, for the headful tests, Xvfb come from Debian.
detectors: | $(BIN)/python
	@scripts/ensure-tools.sh node
	@$(BIN)/python -c 'import sys; from harvestkit.sandbox.detectors import main; sys.exit(main())'

# The Redis store's tests start their own redis-server processes: only the binary is needed.
redis:
	@scripts/ensure-redis.sh

demo: $(VENV)/.installed-sandbox browser
	@$(MAKE) --no-print-directory detectors
	$(BIN)/harvestkit demo

test: $(VENV)/.installed-test browser redis
	@$(MAKE) --no-print-directory detectors
	@scripts/ensure-tools.sh xvfb
	$(BIN)/python -m pytest

# Not for CI: the test suite on the newest releases of everything, in a venv of its own.
test-latest: $(VENV)/.installed-test browser redis
	@$(MAKE) --no-print-directory detectors
	@scripts/ensure-tools.sh xvfb
	rm -rf $(LATEST)
	$(PYTHON) -m venv $(LATEST)
	$(LATEST)/bin/python -m pip install --quiet --upgrade pip setuptools wheel
	$(LATEST)/bin/python -m pip install --quiet --upgrade --upgrade-strategy eager -e '.[test]'
	$(LATEST)/bin/python -m pip freeze --exclude-editable > $(LATEST)/freeze.txt
	$(LATEST)/bin/python -m pytest -p no:cacheprovider

# After a green `make test-latest`: write its versions into constraints.txt (then commit that alone).
pins:
	@test -f $(LATEST)/freeze.txt || { echo "run 'make test-latest' first"; exit 1; }
	{ sed -n '1,2p' constraints.txt; \
	  $(LATEST)/bin/python -m pip --version | awk '{print "pip==" $$2}'; \
	  $(LATEST)/bin/python -c 'import setuptools, wheel; print(f"setuptools=={setuptools.__version__}\nwheel=={wheel.__version__}")'; \
	  grep -viE '^(pip|setuptools|wheel)==' $(LATEST)/freeze.txt; } > constraints.txt.new
	mv constraints.txt.new constraints.txt
	git diff --stat constraints.txt

# Not part of `make test`: the benchmark suite, with the peers it compares against.
$(VENV)/.installed-bench-peers: $(VENV)/.installed-test
	$(BIN)/python -m pip install --quiet $(PIN) 'g4f>=8.8' httpx2 orjson
	touch $@

bench: $(VENV)/.installed-bench-peers browser redis
	@$(MAKE) --no-print-directory detectors
	$(BIN)/python scripts/bench_suite.py

clean:
	rm -rf $(VENV) $(LATEST) build *.egg-info .pytest_cache .hypothesis

# Two commands do all the set-up: `make run` and `make test`.
VENV ?= .venv
PY := $(VENV)/bin/python
PORT ?= 8501
# Test processes; --dist loadfile keeps each test file (and its module fixtures) in one process.
TEST_WORKERS ?= 2
PYTHON ?= python3
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: run test test-fast lint format bench install install-test chromium demo clean

run: install demo  ## open the dashboard at http://127.0.0.1:$(PORT)
	$(PY) -m streamlit run dashboard/app.py --server.port $(PORT)

# The browser tests run after the rest, one at a time: they wait on page reruns, which a busy
# second test process makes slow enough to race.
test: install-test chromium lint  ## the whole suite, browser tests included
	$(PY) -m pytest -n $(TEST_WORKERS) --dist loadfile -m "not e2e"
	$(PY) -m pytest -m e2e

test-fast: install-test  ## skip slow and browser tests while working
	$(PY) -m pytest -n $(TEST_WORKERS) --dist loadfile -m "not slow and not e2e"

lint: install-test
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .

format: install-test
	$(PY) -m ruff check --fix .
	$(PY) -m ruff format .

bench: install-test  ## speed side by side; results go to docs/benchmarks.md
	$(PY) -m pip install -q -r requirements-bench.txt
	$(PY) benchmarks/bench_data.py --write
	$(PY) benchmarks/bench_augment.py --write

demo: install
	$(PY) -m core demo

install: $(VENV)/.installed
install-test: $(VENV)/.test-installed

$(VENV)/.installed: requirements.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements.txt
	touch $@

$(VENV)/.test-installed: $(VENV)/.installed requirements-test.txt
	$(PY) -m pip install -q -r requirements-test.txt
	touch $@

# Debian's Chromium for the browser tests; Playwright never downloads a browser here.
chromium:
	@command -v chromium >/dev/null 2>&1 || { \
	  if command -v apt-get >/dev/null 2>&1; then \
	    $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq chromium chromium-driver; \
	  else echo "warning: chromium not found and apt-get unavailable; browser tests will be skipped"; fi; }

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache test-artifacts

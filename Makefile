# Two commands do all the set-up on a fresh machine:
#   make reports   build every report on the built-in synthetic data
#   make test      run the whole test suite (unit tests + notebook regression)
VENV ?= .venv
PYTHON ?= python3
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
JOBS ?= 2
export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)

.PHONY: install reports test unit notebooks lint clean

# pip -qq: errors only (setuptools prints an "Editable installation" notice for every flat-layout project)
$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet --quiet -e ".[dev]"
	touch $(STAMP)

install: $(STAMP)

reports: $(STAMP)
	$(VENV)/bin/cxresearch run --all --jobs $(JOBS) --out reports

test: $(STAMP)
	$(PY) -m pytest -n $(JOBS) --dist loadfile tests

unit: $(STAMP)
	$(PY) -m pytest -n $(JOBS) --dist loadfile -m 'not slow' tests

# Re-execute the committed notebooks in place (after changing them): tests/test_notebooks.py compares
# fresh runs with these outputs (numbers at 4 significant digits). One BLAS thread, as the runner uses.
notebooks: $(STAMP)
	$(PY) -m cxresearch.runner notebooks/*.ipynb

lint: $(STAMP)
	$(VENV)/bin/ruff check cxresearch tests notebooks benchmarks

clean:
	rm -rf reports/*/ reports/index.html data/synthetic .pytest_cache

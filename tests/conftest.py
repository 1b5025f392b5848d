"""Fixtures shared by the test modules."""

from __future__ import annotations

import os

import pytest

# The suite's JVMs (local Spark, the README's Spark commands, the Spark Connect server) run small queries once:
# the quick JIT compiler alone and one GC thread do them in less time and CPU than the defaults (measured: the
# CLV log's checks and summaries on local[2], twice, 42.8 s -> 33.1 s). Results do not depend on the JIT.
os.environ.setdefault("JAVA_TOOL_OPTIONS", "-XX:TieredStopAtLevel=1 -XX:+UseSerialGC")


@pytest.fixture
def clean_labels():
    """The display label registry, empty before the test and emptied after it."""
    from cxresearch.display import LABELS

    LABELS.reset()
    yield LABELS
    LABELS.reset()


@pytest.fixture
def clean_fits():
    """The global FITS log, empty during the test and restored to what it held before."""
    from cxresearch.fits import FITS

    saved = list(FITS.fits)
    FITS.reset()
    yield FITS
    FITS.reset()
    FITS.fits.extend(saved)


#: the test files that take longest (whole notebooks, a JVM or a database server), in the order pytest-xdist
#: should start them: its file-by-file split then ends on short files, not on one long file with the other
#: worker idle (measured: `make test` with --durations)
HEAVY_FIRST = ("test_readme.py", "test_readme_engines.py", "test_browser.py", "test_spark.py", "test_spark_connect.py",
               "test_databases.py", "test_files_and_cli.py", "test_notebooks.py", "test_clv.py", "test_churn.py",
               "test_payoff.py", "test_synth_scale.py", "test_runner.py", "test_engine_audits.py",
               "test_parquet_folders.py", "test_survey.py")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    rank = {name: i for i, name in enumerate(HEAVY_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))  # stable: file order kept otherwise

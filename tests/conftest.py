"""Fixtures shared by the test modules."""

from __future__ import annotations

import fcntl
import json
import os
import sys
from pathlib import Path

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


def shared_folder(tmp_path_factory: pytest.TempPathFactory, name: str) -> Path:
    """A folder of this test session that every pytest-xdist worker sees (a plain run has one process)."""
    base = tmp_path_factory.getbasetemp()
    folder = (base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base) / name
    folder.mkdir(exist_ok=True)
    return folder


@pytest.fixture(scope="session")
def all_reports(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The reports of the README's ``run --all`` command (what ``make reports`` runs), run verbatim once for the
    whole session in a folder of its own: the README check, the browser checks, the notebook regression and
    the default-run checks all read these reports (one run of every notebook with its defaults, not four)."""
    from tests.test_readme import RUN_ALL, run_verbatim

    folder = shared_folder(tmp_path_factory, "readme-run-all")
    done, failed = folder / "done", folder / "failed"
    with open(folder.with_suffix(".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # the first worker runs it, the other waits and reads it
        if not done.exists() and not failed.exists():
            ws = folder / "workspace"
            ws.mkdir()
            (ws / ".venv").symlink_to(Path(sys.prefix))
            try:
                run_verbatim(RUN_ALL, ws)
            except BaseException as exc:
                failed.write_text(json.dumps(str(exc)[-4000:]))
                raise
            done.touch()
    if failed.exists():
        pytest.fail("the README's run --all failed (see the test that ran it):\n" + json.loads(failed.read_text()))
    return folder / "workspace" / "reports"


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

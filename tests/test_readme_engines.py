"""The README's commands on tables outside memory (Parquet folders, a DuckDB file, PostgreSQL, Spark), run
verbatim as in tests/test_readme.py (a file of their own, so that pytest-xdist runs them beside the others)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.test_readme import COMMANDS, ENGINE_COMMANDS, MEMORY_COMMANDS, postgres, run_verbatim, workspace  # noqa: F401


def test_every_readme_command_is_run_by_one_of_the_two_files():
    assert ENGINE_COMMANDS and sorted(ENGINE_COMMANDS + MEMORY_COMMANDS) == sorted(COMMANDS)
    assert any("engine spark" in c for c in ENGINE_COMMANDS) and any("postgresql://" in c for c in ENGINE_COMMANDS)


@pytest.mark.slow
@pytest.mark.parametrize("command", ENGINE_COMMANDS, ids=[c[:60] for c in ENGINE_COMMANDS])
def test_readme_command_runs_verbatim(command: str, workspace: Path) -> None:  # noqa: F811 (the fixture)
    run_verbatim(command, workspace)

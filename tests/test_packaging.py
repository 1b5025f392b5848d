"""pyproject.toml and environment.yml list the same dependencies; the README shows the two commands first."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent


def _norm(spec: str) -> tuple[str, str]:
    m = re.match(r"^\s*([A-Za-z0-9_.\-]+)\s*(.*)$", spec)
    return m.group(1).lower().replace("_", "-"), m.group(2).replace(" ", "")


def test_environment_yml_matches_pyproject():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    wanted = {_norm(s) for s in project["dependencies"] + project["optional-dependencies"]["dev"]}
    wanted.add(_norm("python" + project["requires-python"]))
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    pip = [s for d in env["dependencies"] if isinstance(d, dict) for s in d.get("pip", [])]
    listed = {_norm(s) for s in env["dependencies"] + pip if isinstance(s, str) and s != "pip"}
    assert listed == wanted


def test_readme_starts_with_the_two_commands():
    readme = (ROOT / "README.md").read_text()
    first_code = re.search(r"```(?:bash|sh)?\n(.*?)```", readme, re.S).group(1)
    assert [line.split("#")[0].strip() for line in first_code.strip().splitlines()] == ["make reports", "make test"]


def test_ci_calls_make_test():
    assert "make test" in (ROOT / ".ci" / "run").read_text()

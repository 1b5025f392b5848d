"""Where built-in data and notebooks live: never guessed from the working directory when the package knows."""

from __future__ import annotations

from pathlib import Path

from cxresearch import paths

CHECKOUT = Path(__file__).resolve().parents[1]


def test_data_dir_follows_the_package_not_the_working_directory(tmp_path, monkeypatch):
    monkeypatch.delenv("CXRESEARCH_DATA_DIR", raising=False)
    (tmp_path / "notebooks").mkdir()
    (tmp_path / "pyproject.toml").write_text("[project]\nname = 'other'\n")
    monkeypatch.chdir(tmp_path)  # another project folder: it must not capture the synthetic-world cache
    assert paths.data_dir() == CHECKOUT / "data"
    assert paths.notebooks_dir() == CHECKOUT / "notebooks"
    assert paths.project_root() == CHECKOUT
    assert paths.project_root(tmp_path / "notebooks") == tmp_path  # an explicit start is searched upwards
    monkeypatch.setenv("CXRESEARCH_DATA_DIR", str(tmp_path / "cache"))
    assert paths.data_dir() == tmp_path / "cache"


def test_an_installed_package_without_a_checkout_uses_the_user_cache(tmp_path, monkeypatch):
    monkeypatch.delenv("CXRESEARCH_DATA_DIR", raising=False)
    monkeypatch.setattr(paths, "_checkout", lambda: None)
    monkeypatch.setattr(Path, "home", lambda: tmp_path)
    monkeypatch.chdir(tmp_path)
    assert paths.data_dir() == tmp_path / ".cache" / "cxresearch"
    try:
        paths.notebooks_dir()
    except FileNotFoundError as err:
        assert "pip install -e ." in str(err)
    else:
        raise AssertionError("no notebooks folder: the error must say where to run from")

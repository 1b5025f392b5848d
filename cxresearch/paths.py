"""Where the project's data and reports live."""

from __future__ import annotations

import os
from pathlib import Path


def project_root(start: str | Path | None = None) -> Path | None:
    """The project checkout: the nearest folder at or above ``start`` holding ``pyproject.toml`` and
    ``notebooks/``; without ``start``, the checkout this package is installed from (None for a wheel)."""
    if start is None:
        return _checkout()
    here = Path(start).resolve()
    for folder in (here, *here.parents):
        if _is_project(folder):
            return folder
    return _checkout()


def _is_project(folder: Path) -> bool:
    return (folder / "pyproject.toml").is_file() and (folder / "notebooks").is_dir()


def _checkout() -> Path | None:
    """The folder above the package when it is a project checkout (an editable install), else None."""
    folder = Path(__file__).resolve().parent.parent
    return folder if _is_project(folder) else None


def data_dir() -> Path:
    """Folder for the built-in data: ``$CXRESEARCH_DATA_DIR``, else ``data/`` of the checkout the package is
    installed from, else the user cache ``~/.cache/cxresearch``. Never guessed from the working directory."""
    if env := os.environ.get("CXRESEARCH_DATA_DIR"):
        return Path(env)
    root = _checkout()
    return root / "data" if root is not None else Path.home() / ".cache" / "cxresearch"


def notebooks_dir() -> Path:
    """The notebooks of the checkout the package is installed from; for an installed wheel, those of the project
    folder the command runs in (the one place the working directory is used, and the error says so)."""
    root = _checkout() or project_root(Path.cwd())
    if root is None:
        raise FileNotFoundError(
            "Cannot find the cxresearch notebooks: this cxresearch is installed without them. Run from inside the "
            "project folder (the one with pyproject.toml and notebooks/), or install the project with "
            "`pip install -e .` from its checkout."
        )
    return root / "notebooks"


def atomic_write(path: Path, text: str) -> None:
    """Write ``text`` whole or not at all: a temporary file in the same folder, renamed into place."""
    import tempfile

    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes owner-only files; reports are meant to be shared
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise

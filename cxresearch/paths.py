"""Where the project's data and reports live."""

from __future__ import annotations

import os
from pathlib import Path


def project_root(start: str | Path | None = None) -> Path | None:
    """The nearest folder at or above ``start`` (default: cwd) holding ``pyproject.toml`` and ``notebooks/``."""
    here = Path(start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if (folder / "pyproject.toml").is_file() and (folder / "notebooks").is_dir():
            return folder
    package_parent = Path(__file__).resolve().parent.parent
    if (package_parent / "notebooks").is_dir():
        return package_parent
    return None


def data_dir() -> Path:
    """Folder for the built-in data: ``$CXRESEARCH_DATA_DIR``, else ``<project>/data``, else a user cache."""
    if env := os.environ.get("CXRESEARCH_DATA_DIR"):
        return Path(env)
    root = project_root()
    if root is not None:
        return root / "data"
    return Path.home() / ".cache" / "cxresearch"


def notebooks_dir() -> Path:
    root = project_root()
    if root is None:
        raise FileNotFoundError(
            "Cannot find the cxresearch notebooks: run from inside the project folder "
            "(the one with pyproject.toml and notebooks/)."
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

"""cxresearch: tested claims about churn, customer value, loyalty payoff and the voice of the customer."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

#: the names ``import cxresearch as cx`` offers, by module. They load on first use, so that the command line
#: starts without the statistics and plotting stack (2.1 of its 2.3 s to start, python -X importtime). Every
#: module that draws imports ``plots`` first, which sets the plot style (data labels never become mathtext).
_NAMES = {"escape_md": "display", "say": "display", "table": "display", "tell": "display", "FitError": "fits",
          "InputError": "io", "Ledger": "io", "read_table": "io", "show": "plots", "Results": "results",
          "interval": "results", "verdict": "results"}

__all__ = ["FitError", "InputError", "Ledger", "Results", "__version__", "escape_md", "interval", "read_table", "say",
           "show", "sources", "table", "tell", "verdict"]


def __getattr__(name: str) -> Any:
    if name in _NAMES:
        return getattr(importlib.import_module(f"cxresearch.{_NAMES[name]}"), name)
    try:  # a module of the package: cx.sources, cx.plots, ...
        return importlib.import_module(f"cxresearch.{name}")
    except ModuleNotFoundError as exc:
        if exc.name != f"cxresearch.{name}":
            raise
        raise AttributeError(f"module 'cxresearch' has no attribute {name!r}") from None


def __dir__() -> list[str]:  # tab completion in JupyterLab lists the lazy names too
    return sorted({*globals(), *__all__})


if TYPE_CHECKING:
    from cxresearch import plots, sources  # noqa: F401
    from cxresearch.display import escape_md, say, table, tell  # noqa: F401
    from cxresearch.fits import FitError  # noqa: F401
    from cxresearch.io import InputError, Ledger, read_table  # noqa: F401
    from cxresearch.plots import show  # noqa: F401
    from cxresearch.results import Results, interval, verdict  # noqa: F401

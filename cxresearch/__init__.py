"""cxresearch: tested claims about churn, customer value, loyalty payoff and the voice of the customer."""

__version__ = "0.1.0"

# plots sets the plot style on import (data labels never become mathtext); sources: where tables come from
from cxresearch import plots, sources  # noqa: E402,F401
from cxresearch.display import escape_md, say, table, tell  # noqa: E402
from cxresearch.fits import FitError  # noqa: E402
from cxresearch.io import InputError, Ledger, read_table  # noqa: E402
from cxresearch.plots import show  # noqa: E402
from cxresearch.results import Results, interval, verdict  # noqa: E402

__all__ = ["FitError", "InputError", "Ledger", "Results", "__version__", "escape_md", "interval", "read_table", "say",
           "show", "sources", "table", "tell", "verdict"]

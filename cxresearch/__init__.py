"""cxresearch: tested claims about churn, customer value, loyalty payoff and the voice of the customer."""

__version__ = "0.1.0"

from cxresearch import plots  # noqa: E402,F401  (sets the plot style: data labels never become mathtext)
from cxresearch.display import escape_md, say, table  # noqa: E402
from cxresearch.fits import FitError  # noqa: E402
from cxresearch.io import InputError, read_table  # noqa: E402
from cxresearch.results import Results, interval, verdict  # noqa: E402

__all__ = ["FitError", "InputError", "Results", "__version__", "escape_md", "interval", "read_table", "say", "table",
           "verdict"]

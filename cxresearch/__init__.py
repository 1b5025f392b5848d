"""cxresearch: tested claims about churn, customer value, loyalty payoff and the voice of the customer."""

__version__ = "0.1.0"

from cxresearch.display import table  # noqa: E402
from cxresearch.io import InputError, read_table  # noqa: E402
from cxresearch.results import Results, interval, verdict  # noqa: E402

__all__ = ["InputError", "Results", "__version__", "interval", "read_table", "table", "verdict"]

"""The opening every notebook shares, in one call.

>>> results, source = cx.notebook.start("churn_survival", "Churn: ...", tables={"customers": customers_path},
...                                      seed=seed, n_customers=n_customers, effects=effects,
...                                      min_group_size=min_group_size, labels=labels, currency=currency)

It creates the run's :class:`~cxresearch.results.Results` (with its ledger), resolves where the tables
come from (:func:`cxresearch.sources.resolve`: the given files, or the synthetic world), registers the
user's ``labels`` (they win over any data dictionary registered later), and says in one sentence where
the data come from.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from cxresearch import sources
from cxresearch.display import say, use_labels
from cxresearch.results import Results


def start(notebook: str, title: str, tables: Mapping[str, str | Path | None] | None = None, *, seed: int = 20240101,
          n_customers: int = 5000, effects: dict[str, Any] | None = None, min_group_size: int = 5,
          labels: Mapping[str, str] | None = None, currency: str | None = None,
          source: sources.Source | None = None, otherwise: sources.Source | None = None,
          announce: bool = True) -> tuple[Results, sources.Source | None]:
    """The run's results record and data source (``None`` when neither ``tables`` nor a source is given).

    ``source`` is a ready source used instead of resolving ``tables``; ``otherwise`` is the source used when
    ``tables`` is None (e.g. ``cx.sources.cdnow()`` when the CLV notebook is asked for the CDNOW sample).
    ``currency`` None means the data's own (``source.defaults["currency"]``: RUB for the synthetic world,
    USD for CDNOW, none for a user's files); ``results.currency`` holds the one used.
    """
    if source is None and tables is not None:
        source = sources.resolve(tables, seed, n_customers, effects)
    if source is None:
        source = otherwise
    currency = currency or (source.defaults.get("currency", "") if source is not None else "")
    results = Results(notebook, title, min_group_size=min_group_size, currency=currency)
    use_labels(user=labels)
    if source is not None and announce:
        say("Data: {source}.", source=source.description)
    return results, source

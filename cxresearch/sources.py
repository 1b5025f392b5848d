"""Where a run's tables come from: the files a user gives, the cached synthetic world, or the CDNOW sample.

Analyses never know which: a notebook resolves a :class:`Source` and hands it to the analysis's loader,
which reads ``source.paths[table]`` through the validated readers of :mod:`cxresearch.io`. Only this
module knows the synthetic world's generator and calendar (``source.defaults``) and where sample data
live. A user's table may be a file, a folder of Parquet files, or a database table by URL.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import pandas as pd

from cxresearch.io import is_url
from cxresearch.truth import Truth


@dataclass(frozen=True)
class Source:
    """The tables of one run and what is known about them.

    Attributes
    ----------
    paths
        Table name → file, for the tables this source has (a user may give only some).
    synthetic
        Whether the tables are the built-in synthetic world.
    truth
        The synthetic world's planted values (:class:`cxresearch.truth.Truth`); ``None`` for real data. Analyses never
        read it: :mod:`cxresearch.checks` compares estimates with it, and :func:`synthetic_defaults` takes the
        data's own parameters from it.
    description
        How a report names the data ("the files given as parameters").
    defaults
        What the data themselves say when a parameter is not given (empty for a user's files): the dates
        ``observation_end``, ``calibration_end``, ``holdout_end``; the ``currency`` of money columns; a loyalty
        panel's enrolment window ``pre_end`` and ``post_start``; the programme's ``margin`` and
        ``cost_per_member`` (each a number, or a mapping design → number: the cost covers the outcome period
        of that design's table).
    """

    paths: dict[str, Path | str]  # a file, Parquet folder or glob; a database table's URL (text)
    synthetic: bool = False
    truth: Truth | None = None
    description: str = "the files given as parameters"
    defaults: dict[str, Any] = field(default_factory=dict)

    def __contains__(self, table: object) -> bool:
        return table in self.paths

    def path(self, table: str) -> Path | str | None:
        return self.paths.get(table)


def from_files(paths: Mapping[str, str | Path | None]) -> Source:
    """A user's files or database tables (a table URL stays text; tables given as ``None`` are absent)."""
    return Source({k: v if is_url(v) else Path(v) for k, v in paths.items() if v})


# The synthetic world's calendar: the calibration/holdout split its CLV checks use.
SYNTHETIC_CLV_PERIODS = {"calibration_end": "2023-06-30", "holdout_end": "2023-12-31"}


def synthetic_world(tables: Iterable[str], seed: int = 20240101, n_customers: int = 5000,
                    effects: dict[str, Any] | None = None) -> Source:
    """The built-in synthetic world's files for ``tables`` (generated once per seed, size and effects)."""
    from cxresearch.synth import ensure_world, load_truth

    world = ensure_world(seed=seed, n_customers=n_customers, effects=effects)
    truth = load_truth(world)
    return Source({t: world[t] for t in tables}, True, truth,
                  f"the built-in synthetic world ({n_customers:,} customers, seed {seed})", synthetic_defaults(truth))


def synthetic_defaults(truth: Truth) -> dict[str, Any]:
    """What the synthetic world's tables say about themselves: its dates, currency, the open enrolment's window
    (its first month, and the month after the last enrolment day) and the programme's money per design."""
    cal = truth.calendar
    pilot_months = cal.pilot_weeks * 7 / (365.25 / 12)  # the pilot table's outcomes cover the whole pilot
    return {"observation_end": cal.observation_end, **SYNTHETIC_CLV_PERIODS, "currency": "RUB",
            "pre_end": str(pd.Period(cal.enrolment_start, "M")),
            "post_start": str(pd.Period(cal.enrolment_end, "M") + 1),
            "margin": {"randomized": truth.loyalty_pilot.margin, "observational": truth.loyalty_enrolment.margin},
            "cost_per_member": {"randomized": truth.loyalty_pilot.cost_per_member_month * pilot_months,
                                "observational": truth.loyalty_enrolment.cost_per_member_month}}


def resolve(paths: Mapping[str, str | Path | None], seed: int = 20240101, n_customers: int = 5000,
            effects: dict[str, Any] | None = None) -> Source:
    """The given files, or — when none is given — the synthetic world's tables of the same names.

    Mixing a user's table with synthetic ones would describe nobody, so once any path is given only the
    given tables are used.
    """
    if any(paths.values()):
        return from_files(paths)
    return synthetic_world(paths, seed, n_customers, effects)


CDNOW_PERIODS = {"calibration_end": "1997-09-30", "holdout_end": "1998-06-30"}


def _dataset(name: str) -> Path:
    return Path(str(resources.files("cxresearch") / "datasets" / name))


def fader_hardie_2007() -> pd.DataFrame:
    """The "High End" and "Regular" cohort retention tables of Fader & Hardie (2007) (cohort, period, active;
    see ``cxresearch/datasets/README.md``)."""
    return pd.read_csv(_dataset("fader_hardie_2007_retention.csv"))


def donations() -> pd.DataFrame:
    """The 1995 donor cohort of Fader, Hardie & Shang (2010) as (x, t_x, n, weight) rows."""
    return pd.read_csv(_dataset("donations.csv"))


def cdnow() -> Source:
    """The CDNOW 2,357-customer sample (Fader, Hardie & Lee 2005) shipped with the package.

    One transactions table: ``customer_id``, ``timestamp``, ``amount`` (see ``cxresearch/datasets/README.md``).
    """
    path = _dataset("cdnow_sample.csv")
    return Source({"transactions": path}, False, None,
                  "the CDNOW sample (2,357 customers, Fader, Hardie & Lee 2005)", {**CDNOW_PERIODS, "currency": "USD"})


def fader_hardie() -> Source:
    """The "High End" and "Regular" cohorts of Fader & Hardie (2007) as a retention table (periods are years)."""
    return Source({"retention": _dataset("fader_hardie_2007_retention.csv")}, False, None,
                  "the 'High End' and 'Regular' cohorts of 1,000 customers each (Fader & Hardie 2007, Table 1)",
                  {"time_unit": "years", "fit_by": "cohort", "fit_periods": 7})


def donor_cohort() -> Source:
    """The 1995 donor cohort of Fader, Hardie & Shang (2010) as repeat-donation patterns (occasions are years)."""
    return Source({"occasions": _dataset("donations.csv")}, False, None,
                  "the 1995 cohort of 11,104 first-time donors (Fader, Hardie & Shang 2010), six yearly occasions",
                  {"time_unit": "years"})


#: the published data sets of ``-p dataset`` (the synthetic world is generated instead)
BUILTIN = {"cdnow": cdnow, "fader_hardie": fader_hardie, "donations": donor_cohort}


def builtin(dataset: str) -> Source | None:
    """The published data set ``dataset`` shipped with the package (None for ``synthetic``)."""
    return BUILTIN[dataset]() if dataset in BUILTIN else None

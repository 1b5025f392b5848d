"""Convergence of iterative fits: try, check, retry with a safer setting, record, or fail clearly.

Every iterative estimator (Cox, AFT, BTYD likelihoods, propensity logits, factor analysis, PLS) runs through
:func:`fit_with_retries`. An attempt counts as converged only when it raised nothing, emitted no
convergence warning and passed the caller's ``check`` (finite parameters, small gradient, ...). The first
attempt that converges is used; every attempt is recorded in :data:`FITS`, which the run's
``results.json`` reports under ``fits`` and ``converged``. When no attempt converges a :class:`FitError`
stops the run with a message that says what was tried and what to change — never a number from a fit
that did not converge.

:func:`fit_logit` is the package's one logistic regression (payoff's propensity model, survey's response
model): IRLS on the covariates as given, then IRLS on standardised covariates with 200 iterations, then
BFGS on standardised covariates; a fit is accepted only when every estimate is finite, nobody is predicted
with certainty and the score equations are solved. When none is accepted, the error names the design
terms that on their own separate the two outcomes (:func:`separating_columns`).
"""

from __future__ import annotations

import math
import re
import warnings
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

import numpy as np
import pandas as pd

# statsmodels' modules, not statsmodels.api (which imports everything: 0.6 s per kernel)
from statsmodels.discrete.discrete_model import Logit
from statsmodels.genmod.families import Binomial
from statsmodels.genmod.generalized_linear_model import GLM
from statsmodels.tools.tools import add_constant

T = TypeVar("T")


class FitError(RuntimeError):
    """An iterative fit did not converge with any of the settings tried."""


@dataclass
class FitLog:
    """Every fit of a run: model, whether it converged, the setting that worked, what failed before."""

    fits: list[dict[str, Any]] = field(default_factory=list)

    def reset(self) -> None:
        self.fits.clear()

    def record(self, model: str, converged: bool, method: str, failed: Iterable[str] = ()) -> None:
        self.fits.append({"model": model, "converged": bool(converged), "method": method,
                          "failed_attempts": list(failed)})

    def all_converged(self) -> bool:
        return all(f["converged"] for f in self.fits)


FITS = FitLog()


def _is_convergence_warning(w: warnings.WarningMessage) -> bool:
    return any("Convergence" in c.__name__ for c in w.category.__mro__)


def finite(values: Any) -> bool:
    """Whether every number in ``values`` (scalar, array, Series, DataFrame) is finite."""
    arr = np.asarray(values, dtype=float)
    return bool(np.all(np.isfinite(arr)))


def fit_with_retries(model: str, attempts: Sequence[tuple[str, Callable[[], T]]],
                     check: Callable[[T], str | None] | None = None, fix: str = "", record: bool = True) -> T:
    """Run ``attempts`` (``(setting, fit)`` pairs) in order and return the first converged fit.

    Parameters
    ----------
    model
        Name shown in the report and in errors, e.g. ``"Cox model"``.
    attempts
        Settings to try, safest last, e.g. ``[("Newton, step 0.95", f1), ("standardised, step 0.2", f2)]``.
    check
        Returns a reason when a finished fit is still not acceptable (non-finite parameters, large
        gradient, estimates at a bound), else ``None``.
    fix
        What the user can change when nothing converges.
    record
        Record the fit in :data:`FITS` (set False for bootstrap replicates: the caller counts failures).

    Raises
    ------
    FitError
        When no attempt converges; the message lists every attempt and why it failed.
    """
    failed: list[str] = []
    for method, fit in attempts:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                out = fit()
            except (ArithmeticError, ValueError, RuntimeError, np.linalg.LinAlgError) as exc:
                failed.append(f"{method}: {type(exc).__name__}: {_first_line(exc)}")
                continue
        conv = [w for w in caught if _is_convergence_warning(w)]
        reason = _first_line(conv[0].message) if conv else (check(out) if check else None)
        if reason:
            failed.append(f"{method}: {reason}")
            continue
        for w in caught:  # pass on the warnings that are not about convergence
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
        if record:
            FITS.record(model, True, method, failed)
        return out
    if record:
        FITS.record(model, False, attempts[-1][0] if attempts else "", failed)
    tried = "; ".join(failed)
    raise FitError(f"The {model} did not converge (tried: {tried}). No estimate from it is shown."
                   + (f" Fix: {fix}" if fix else ""))


def _first_line(x: Any) -> str:
    text = str(x).strip()
    return text.splitlines()[0][:300] if text else type(x).__name__


def check_params(params: Any, bound: float = 1e6) -> str | None:
    """A standard ``check``: every parameter finite and below ``bound`` in absolute value."""
    arr = np.asarray(params, dtype=float).ravel()
    if not np.all(np.isfinite(arr)):
        return "some estimates are not finite"
    if arr.size and float(np.max(np.abs(arr))) > bound:
        return f"an estimate ran off to {float(np.max(np.abs(arr))):.3g} (separation or a covariate on a huge scale)"
    return None


def is_number(x: Any) -> bool:
    """Finite real number (not None, NaN or inf)."""
    try:
        return x is not None and not isinstance(x, bool) and math.isfinite(float(x))
    except (TypeError, ValueError):
        return False


# ---------------------------------------------------------------------------------------------
# logistic regression


def standardise(x: pd.DataFrame) -> pd.DataFrame:
    """Columns centred and scaled to SD 1; constant columns dropped (the intercept carries them)."""
    sd = x.std(ddof=0)
    keep = sd[sd > 0].index
    return (x[keep] - x[keep].mean()) / sd[keep]


@dataclass
class LogitFit:
    """A fitted logistic regression: probabilities and the setting that produced them.

    ``params`` belong to the design of ``method``: the covariates as given (``"IRLS"``) or standardised
    (``"IRLS, standardised"``, ``"BFGS, standardised"``), intercept first.
    """

    probability: np.ndarray
    params: np.ndarray
    method: str


def _logit_attempts(x: pd.DataFrame, y: np.ndarray) -> list[tuple[str, Callable[[], LogitFit]]]:
    """Settings to try for a logit, safest last: as given, standardised with more iterations, BFGS."""

    def irls(standardise_x: bool, maxiter: int, name: str) -> Callable[[], LogitFit]:
        def run() -> LogitFit:
            xs = standardise(x) if standardise_x else x
            xc = add_constant(xs, has_constant="add")
            fit = GLM(y, xc, family=Binomial()).fit(maxiter=maxiter, tol=1e-10, rtol=1e-10,
                                                                    tol_criterion="params")
            prob = np.asarray(fit.predict(xc), float)
            if not fit.converged:
                if np.isfinite(prob).all() and (prob.min() < 1e-8 or prob.max() > 1 - 1e-8):
                    raise RuntimeError(f"no convergence in {maxiter} iterations; some customers are predicted "
                                       "with certainty (separation)")
                raise RuntimeError(f"no convergence in {maxiter} iterations")
            return LogitFit(prob, np.asarray(fit.params, float), name)
        return run

    def bfgs() -> LogitFit:
        xc = add_constant(standardise(x), has_constant="add")
        fit = Logit(y, xc).fit(method="bfgs", maxiter=5000, gtol=1e-9, disp=False)
        if not fit.mle_retvals.get("converged", False):
            raise RuntimeError("BFGS did not converge in 5000 iterations")
        return LogitFit(np.asarray(fit.predict(xc), float), np.asarray(fit.params, float), "BFGS, standardised")

    # 200, not more: IRLS on standardised covariates converges in well under 20 iterations or not at all
    # (near-separation, common in bootstrap replicates), and 1000 failing iterations made the payoff
    # bootstrap 4x slower before BFGS took over
    return [("IRLS, covariates as given", irls(False, 100, "IRLS")),
            ("IRLS, standardised covariates, 200 iterations", irls(True, 200, "IRLS, standardised")),
            ("BFGS, standardised covariates", bfgs)]


def _logit_check(x: pd.DataFrame, y: np.ndarray, outcome: str, groups: str) -> Callable[[LogitFit], str | None]:
    """Accept a logit fit only when it is finite, nobody is predicted with certainty and the score equations
    are solved (on standardised covariates, so that the tolerance does not depend on their scale)."""
    xs = add_constant(standardise(x), has_constant="add").to_numpy(float)

    def check(fit: LogitFit) -> str | None:
        p = fit.probability
        if not (np.all(np.isfinite(p)) and np.all(np.isfinite(fit.params))):
            return "some estimates are not finite"
        if p.min() < 1e-8 or p.max() > 1 - 1e-8:
            return (f"some customers are predicted to {outcome} (or not) with certainty: the covariates separate "
                    f"{groups}, so there are no comparable customers for them")
        score = float(np.max(np.abs(xs.T @ (y - p)))) / len(y)
        if score > 1e-6:
            return f"the likelihood is not at its maximum (score {score:.1e}; covariates on very different scales?)"
        return None
    return check


_LEVEL_TERM = re.compile(r"^(?P<var>.+)\[(?P<level>[^\[\]]+)\]$")


def term_text(term: str) -> str:
    """A design term as an analyst types it in a message: ``seg[gold]`` → "seg = gold", others unchanged."""
    m = _LEVEL_TERM.match(str(term))
    return f"{m.group('var')} = {m.group('level')}" if m else str(term)


def separating_columns(x: pd.DataFrame, y: np.ndarray) -> list[str]:
    """Design terms that on their own separate the outcomes: a 0/1 column whose 1s all have the outcome (or
    none has it), or a number whose ranges with and without the outcome do not overlap."""
    d = np.asarray(y, bool)
    out = []
    for c in x.columns:
        v = x[c].to_numpy(float)
        if set(np.unique(v)) <= {0.0, 1.0}:
            ones = d[v == 1]
            if len(ones) and (ones.all() or not ones.any()):
                out.append(term_text(c))
        elif d.any() and (~d).any() and (v[d].min() > v[~d].max() or v[d].max() < v[~d].min()):
            out.append(term_text(c))
    return out


def fit_logit(x: pd.DataFrame, y: np.ndarray, model: str = "logistic regression", *, outcome: str = "have the outcome",
              groups: str | None = None, decides: str = "the outcome", fix: str | None = None,
              record: bool = True) -> LogitFit:
    """Logistic regression of the 0/1 outcome ``y`` on the numeric columns ``x`` (plus an intercept), with
    checked convergence and safer retries (:func:`fit_with_retries`).

    Attempts, in order: IRLS on ``x`` as given (100 iterations), IRLS on standardised ``x`` (1000
    iterations), BFGS on standardised ``x``; parameter and likelihood tolerances 1e-10 / gradient 1e-9, so
    refits agree far beyond the digits shown. A fit is accepted when every estimate is finite, every
    probability lies in [1e-8, 1 − 1e-8] (nobody predicted with certainty) and the score equations are
    solved (largest mean score on standardised covariates ≤ 1e-6). Probabilities do not depend on which
    attempt was accepted.

    Parameters
    ----------
    x
        Design columns without an intercept, e.g. :attr:`cxresearch.design.DesignMatrix.X`.
    y
        The outcome, 0/1 or true/false, one per row of ``x``.
    model
        Name in the report and in errors, e.g. ``"propensity logit"``.
    outcome
        The outcome as a verb in messages ("join", "respond").
    groups
        Who the covariates would separate, e.g. "members from non-members" (default: those who ``outcome``
        from those who do not).
    decides
        What a separating term decides, e.g. "membership", "who responds".
    fix
        What the user can change when no attempt is accepted (default: leave out covariates that decide
        ``decides`` on their own, or merge rare levels). The terms that separate on their own are named
        before it.
    record
        Record the fit in :data:`FITS` (False for bootstrap replicates: the caller counts failures).

    Raises
    ------
    FitError
        No attempt was accepted; the message lists every attempt, why it failed and the fix.
    ValueError
        ``y`` is not 0/1 or does not have one value per row of ``x``.
    """
    y = np.asarray(y, float)
    if y.shape != (len(x),) or not np.isin(y, (0.0, 1.0)).all():
        raise ValueError(f"the {model} needs one 0/1 (or true/false) outcome per row: got {y.size} value(s) for "
                         f"{len(x)} row(s), values {sorted(map(float, np.unique(y)))[:5]}")
    attempts = _logit_attempts(x, y)
    check = _logit_check(x, y, outcome, groups or f"those who {outcome} from those who do not")
    try:
        return fit_with_retries(model, attempts, check=check, record=record)
    except FitError as exc:
        culprits = separating_columns(x, y)
        named = f"{', '.join(culprits)} alone decides {decides} for some customers; " if culprits else ""
        advice = fix or f"leave out covariates that (almost) decide {decides} on their own, or merge rare levels"
        raise FitError(f"{exc} Fix: {named}{advice}") from None

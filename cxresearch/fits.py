"""Convergence of iterative fits: try, check, retry with a safer setting, record, or fail clearly.

Every iterative estimator (Cox, AFT, BTYD likelihoods, propensity logits, factor analysis, PLS) runs through
:func:`fit_with_retries`. An attempt counts as converged only when it raised nothing, emitted no
convergence warning and passed the caller's ``check`` (finite parameters, small gradient, ...). The first
attempt that converges is used; every attempt is recorded in :data:`FITS`, which the run's
``results.json`` reports under ``fits`` and ``converged``. When no attempt converges a :class:`FitError`
stops the run with a message that says what was tried and what to change — never a number from a fit
that did not converge.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

import numpy as np

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

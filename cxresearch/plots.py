"""Plot helpers shared by the analysis modules."""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib.pyplot as plt
import numpy as np


def plot_intervals(labels: Sequence[str], estimate: Sequence[float], low: Sequence[float], high: Sequence[float],
                   ax: plt.Axes | None = None, xlabel: str = "", title: str = "", reference: float | None = None,
                   scale: float = 1.0) -> plt.Axes:
    """One row per label: the estimate as a dot and its interval as a bar (first label on top).

    ``reference`` draws a dashed line (e.g. 0 = no effect); ``scale`` multiplies all values (100 for %).
    """
    est = np.asarray(estimate, float) * scale
    lo, hi = np.asarray(low, float) * scale, np.asarray(high, float) * scale
    ax = ax or plt.subplots(figsize=(7.5, 0.45 * len(est) + 1.3))[1]
    y = np.arange(len(est))[::-1]
    ax.errorbar(est, y, xerr=[est - lo, hi - est], fmt="o", color="#1f4e79", capsize=4)
    if reference is not None:
        ax.axvline(reference * scale, color="black", ls="--", lw=1)
    ax.set_yticks(y, [str(lab) for lab in labels])
    ax.set_xlabel(xlabel)
    ax.set_title(title)
    ax.grid(axis="x", alpha=0.3)
    return ax


# Labels come from data: "$" must print as a dollar, never start matplotlib mathtext (an unbalanced "$"
# would crash the plot, a balanced pair would typeset the label as a formula).
plt.rcParams["text.parse_math"] = False

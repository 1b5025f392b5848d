"""The one plot style of cxresearch, and small helpers every plot function uses.

Importing :mod:`cxresearch` applies the style: seaborn's white-grid theme, one colour-blind-safe palette
(:data:`PALETTE`), readable font sizes, and no matplotlib mathtext (labels come from data: "$" must print
as a dollar). Plot functions in the analysis modules take results and an optional ``ax``, compute nothing,
and return the axes; they name things with :func:`label` (the reader's label of a column, item, code or
model term) and use :data:`PALETTE`, :data:`DIVERGING` and :func:`date_axis`.
"""

from __future__ import annotations

import textwrap
from collections.abc import Sequence

import matplotlib.dates as mdates
import matplotlib.pyplot as plt
import numpy as np
import seaborn as sns

from cxresearch.display import plain

PALETTE = sns.color_palette("colorblind")  # categorical colours, in this order everywhere
MAIN = PALETTE[0]  # a single series
ACCENT = PALETTE[3]  # a highlight, e.g. "improve first"
MUTED = "#6b7280"  # references, guides, annotations
INK = "#111827"  # reference lines that must stand out (no effect, 50%)
PAPER = "white"  # separators between stacked bars and heatmap cells
DIVERGING = "RdBu"  # negative → positive (Likert disagree → agree, correlations)
SEQUENTIAL = "Blues"  # counts, shares


def set_style() -> None:
    """Apply the cxresearch look (called on import)."""
    sns.set_theme(context="notebook", style="whitegrid", palette=PALETTE, font_scale=0.95,
                  rc={"figure.dpi": 100, "savefig.dpi": 100, "axes.titleweight": "bold", "axes.titlesize": 12,
                      "axes.labelsize": 10.5, "legend.frameon": False, "axes.spines.top": False,
                      "axes.spines.right": False, "figure.autolayout": False, "text.parse_math": False})
    # Labels come from data: "$" must print as a dollar, never start matplotlib mathtext (an unbalanced "$"
    # would crash the plot, a balanced pair would typeset the label as a formula).
    plt.rcParams["text.parse_math"] = False


def label(name: object, width: int | None = None) -> str:
    """The reader's label of ``name`` (see :func:`cxresearch.display.plain`), wrapped at ``width`` characters."""
    text = plain(name)
    return "\n".join(textwrap.wrap(text, width)) if width and len(text) > width else text


def labels(names: Sequence[object], width: int | None = None) -> list[str]:
    return [label(n, width) for n in names]


def date_axis(ax: plt.Axes, axis: str = "x") -> plt.Axes:
    """Readable dates: concise labels ("2024", "Apr", "Jul") that never overlap."""
    target = ax.xaxis if axis == "x" else ax.yaxis
    locator = mdates.AutoDateLocator(minticks=5, maxticks=10)
    target.set_major_locator(locator)
    target.set_major_formatter(mdates.ConciseDateFormatter(locator))
    return ax


def show(figure: object, alt: str) -> None:
    """Show a figure (or the figure of axes, or of an array of axes) with its alt text, and close it.

    ``alt`` says in words what the chart shows; the report puts it on the image for screen readers.
    """
    from IPython.display import display

    if isinstance(figure, np.ndarray):
        figure = figure.flat[0]
    fig = getattr(figure, "figure", figure)
    display(fig, metadata={"alt": alt})
    plt.close(fig)


def percent_axis(axis: object, whole: float = 1.0) -> None:
    """Ticks at round steps (1, 2, 5, 10, ...; never 2.5) written as whole percents of ``whole``.

    ``axis`` is an axis (``ax.xaxis``) or axes (then the y axis).
    """
    from matplotlib.ticker import MaxNLocator, PercentFormatter

    target = getattr(axis, "yaxis", axis)
    target.set_major_locator(MaxNLocator(nbins=7, steps=[1, 2, 5, 10]))
    target.set_major_formatter(PercentFormatter(whole, decimals=0))


def plot_intervals(names: Sequence[str], estimate: Sequence[float], low: Sequence[float], high: Sequence[float],
                   ax: plt.Axes | None = None, xlabel: str = "", title: str = "", reference: float | None = None,
                   scale: float = 1.0) -> plt.Axes:
    """One row per name: the estimate as a dot and its interval as a bar (first name on top).

    Names are shown by their labels (:func:`label`); ``reference`` draws a dashed line (e.g. 0 = no effect);
    ``scale`` multiplies all values (100 for %).
    """
    est = np.asarray(estimate, float) * scale
    lo, hi = np.asarray(low, float) * scale, np.asarray(high, float) * scale
    ax = ax or plt.subplots(figsize=(7.5, 0.45 * len(est) + 1.3))[1]
    y = np.arange(len(est))[::-1]
    ax.errorbar(est, y, xerr=[est - lo, hi - est], fmt="o", color=MAIN, capsize=4)
    if reference is not None:
        ax.axvline(reference * scale, color=MUTED, ls="--", lw=1)
    ax.set_yticks(y, labels(names, 45))
    ax.set_xlabel(xlabel)
    ax.set_title(title)
    ax.grid(axis="y", visible=False)
    return ax


set_style()

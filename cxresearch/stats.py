"""Small statistical helpers shared by the analysis modules."""

from __future__ import annotations

import numpy as np


def holm(p_values: np.ndarray | list[float]) -> np.ndarray:
    """Holm step-down adjusted p-values (same as statsmodels' ``multipletests(method="holm")``).

    Written out because statsmodels' version costs about 0.1 s per call, which dominates simulations.
    """
    p = np.asarray(p_values, float)
    m = len(p)
    if m == 0:
        return p
    order = np.argsort(p)
    adjusted = np.minimum(1.0, np.maximum.accumulate((m - np.arange(m)) * p[order]))
    out = np.empty(m)
    out[order] = adjusted
    return out

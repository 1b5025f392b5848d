"""The errors every layer may raise: a bad parameter, data that cannot answer the question.

(Bad input files raise :class:`cxresearch.io.InputError`; fits that do not converge raise
:class:`cxresearch.fits.FitError`.)
"""

from __future__ import annotations


class ParameterError(ValueError):
    """A run was asked for with parameters the notebook does not have or values it cannot take."""


class NotEstimable(ValueError):
    """The data cannot answer the analysis at all (e.g. nobody churned, one arm only); the message says why and what to change."""

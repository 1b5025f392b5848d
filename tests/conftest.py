"""Fixtures shared by the test modules."""

from __future__ import annotations

import pytest


@pytest.fixture
def clean_labels():
    """The display label registry, empty before the test and emptied after it."""
    from cxresearch.display import LABELS

    LABELS.reset()
    yield LABELS
    LABELS.reset()


@pytest.fixture
def clean_fits():
    """The global FITS log, empty during the test and restored to what it held before."""
    from cxresearch.fits import FITS

    saved = list(FITS.fits)
    FITS.reset()
    yield FITS
    FITS.reset()
    FITS.fits.extend(saved)

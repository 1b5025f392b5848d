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

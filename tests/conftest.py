"""Shared fixtures. The project is installed (editable) into the venv; nothing is added to sys.path."""

import numpy as np
import pytest


@pytest.fixture
def rng() -> np.random.Generator:
    """A seeded generator, so that randomized tests are reproducible."""
    return np.random.default_rng(0)

"""Shared fixtures. The project is installed (editable) into the venv; nothing is added to sys.path."""

import os

# MuJoCo picks its OpenGL backend at import: headless EGL, as the ohio command does.
os.environ.setdefault("MUJOCO_GL", "egl")

import numpy as np  # noqa: E402
import pytest  # noqa: E402


@pytest.fixture
def rng() -> np.random.Generator:
    """A seeded generator, so that randomized tests are reproducible."""
    return np.random.default_rng(0)

"""Comparing the rows of two ``Trajectories`` (a bag read back, the collector's output), shared by the bag tests."""

from __future__ import annotations

import numpy as np

ARRAYS = ("t", "q", "qd", "tau", "reward", "success", "episode", "step", "obs", "timeout", "terminal")


def assert_same_rows(a, b, atol=0.0):
    assert len(a) == len(b)
    for name in ARRAYS + ("goal", "gripper"):
        x, y = getattr(a, name), getattr(b, name)
        assert (x is None) == (y is None), name
        if x is not None:
            np.testing.assert_allclose(np.asarray(x, float), np.asarray(y, float), rtol=0, atol=atol,
                                       equal_nan=True, err_msg=name)

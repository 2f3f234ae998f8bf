"""Fixtures of the routing tests."""

from __future__ import annotations

import pytest

from ohio_core.routing.scenario import synthetic


@pytest.fixture(scope="module")
def city():
    return synthetic(12, layout="grid", horizon=24, seed=1)

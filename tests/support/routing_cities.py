"""Small cities written in the public AMoD scenario format (only its own keys, by
``ohio_core.routing.cities.write_public``), shared by the routing and CLI tests.

- ``peak_town``: 5 regions, a centre (0) and four suburbs 6 minutes from it; suburbs 1 and 3 (and 2
  and 4) are 45 (30) minutes apart directly, far more than via the centre (travel times that break
  the triangle inequality, as road data with closures do); requests peak into the centre at steps
  2 and 3; 1,500 vehicles (``totalAcc``) for about 20 requests per step.
- ``grid_six``: 6 regions on a 3 x 2 grid (``nlat``, ``nlon``), Manhattan travel times (metric), flat
  demand, no ``totalAcc`` (the fleet follows from Little's law).

Both start at 8:00 in 3-minute steps and hold 6 steps of demand.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ohio_core.routing.cities import write_public

START = 8 * 60                 # minute of day of step 0
STEP = 3                       # minutes per step
STEPS = 6
PEAK_TOWN_REGIONS = 5
PEAK_TOWN_FLEET = 1500
GRID_SIX_REGIONS = 6


def _peak_town_minutes(i: int, j: int) -> float:
    if i == j:
        return 3.0
    if 0 in (i, j):
        return 6.0
    return {frozenset((1, 3)): 45.0, frozenset((2, 4)): 30.0}.get(frozenset((i, j)), 9.0)


def _grid_six_minutes(i: int, j: int) -> float:
    (xi, yi), (xj, yj) = divmod(i, 3)[::-1], divmod(j, 3)[::-1]
    return 3.0 if i == j else 6.0 * (abs(xi - xj) + abs(yi - yj))


def _write(path: Path, n: int, minutes, rate, vehicles: int | None, regions: dict | None = None) -> Path:
    mins = np.array([[minutes(i, j) for j in range(n)] for i in range(n)])
    rates = np.array([[[rate(t, i, j) for j in range(n)] for i in range(n)] for t in range(STEPS)])
    return write_public(path, mins, rates, np.round(2.0 + 0.8 * mins, 2), vehicles, START, STEP, regions=regions)


def peak_town(path: Path) -> Path:
    """Write ``peak_town`` (module docstring) to ``path``."""
    def rate(t, i, j):
        base = 0.2 if i == j else 0.8
        return base * 4.0 if j == 0 and i != 0 and t in (2, 3) else base
    return _write(path, PEAK_TOWN_REGIONS, _peak_town_minutes, rate, PEAK_TOWN_FLEET)


def grid_six(path: Path) -> Path:
    """Write ``grid_six`` (module docstring) to ``path``."""
    return _write(path, GRID_SIX_REGIONS, _grid_six_minutes, lambda t, i, j: 0.3 if i == j else 0.6, None,
                  regions={"nlat": 3, "nlon": 2})

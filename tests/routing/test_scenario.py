"""The city model and its generator (ohio_core.routing.scenario): validation, immutability, synthetic cities."""

from __future__ import annotations

import numpy as np
import pytest

from ohio_core.routing.scenario import Scenario, ScenarioError, synthetic


def tiny_scenario(**changes) -> dict:
    n, T = 3, 4
    fields = dict(name="tiny", travel_time=np.array([[1, 2, 3], [2, 1, 2], [3, 2, 1]]),
                  demand=np.full((T, n, n), 0.5), price=np.full((T, n, n), 4.0), vehicles=12, horizon=T)
    fields.update(changes)
    return fields


@pytest.mark.parametrize("changes, match_text", [
    ({"name": ""}, "name"),
    ({"travel_time": np.ones((3, 2))}, "square"),
    ({"travel_time": np.array([[1, 0, 1], [1, 1, 1], [1, 1, 1]])}, "integers >= 1"),
    ({"travel_time": np.array([[1, 1.5, 1], [1, 1, 1], [1, 1, 1]])}, "integers >= 1"),
    ({"demand": -np.ones((4, 3, 3))}, "demand must be >= 0"),
    ({"demand": np.ones((4, 2, 2))}, "demand must have shape"),
    ({"price": np.ones((3, 3, 3))}, "price shape"),
    ({"price": np.full((4, 3, 3), np.nan)}, "finite"),
    ({"vehicles": 0}, "vehicles"),
    ({"vehicles": 2.5}, "vehicles"),
    ({"vehicles": True}, "vehicles"),
    ({"horizon": 5}, "horizon"),
    ({"step_minutes": 0.0}, "step_minutes"),
    ({"op_cost": -1.0}, "op_cost"),
    ({"positions": np.zeros((2, 2))}, "positions"),
    ({"start_hour": 24}, "start_hour"),
])
def test_scenario_validation(changes, match_text):
    with pytest.raises(ScenarioError, match=match_text):
        Scenario(**tiny_scenario(**changes))


def test_scenario_is_immutable():
    s = Scenario(**tiny_scenario())
    assert s.regions == 3 and s.steps == 4 and s.travel_time.dtype == np.int64
    with pytest.raises(ValueError):
        s.demand[0, 0, 0] = 1.0
    with pytest.raises(AttributeError):
        s.vehicles = 3


@pytest.mark.parametrize("regions, layout", [(10, "grid"), (10, "geometric"), (200, "grid"), (200, "geometric")])
def test_synthetic_sizes_and_seeds(regions, layout):
    s = synthetic(regions, layout=layout, horizon=30, seed=3)
    n = regions
    assert s.travel_time.shape == (n, n) and s.demand.shape == (30, n, n) and s.price.shape == (30, n, n)
    assert (s.travel_time >= 1).all() and (np.diagonal(s.travel_time) == 1).all()
    assert (s.demand > 0).all() and (s.price > 0).all() and s.positions.shape == (n, 2)
    assert 100 <= s.vehicles <= 20000
    # a served trip pays more than it costs to drive
    assert (s.price > s.op_cost * s.travel_time).all()
    again = synthetic(regions, layout=layout, horizon=30, seed=3)
    other = synthetic(regions, layout=layout, horizon=30, seed=4)
    for key in ("travel_time", "demand", "price", "positions"):
        assert np.array_equal(getattr(s, key), getattr(again, key)), key
    assert not np.array_equal(s.price, other.price)


def test_synthetic_peaks_point_in_then_out():
    s = synthetic(25, horizon=40, seed=0)
    r = np.linalg.norm(s.positions - 0.5, axis=1)
    central = r <= np.quantile(r, 0.3)
    into = lambda t: s.demand[t][:, central].sum() / s.demand[t].sum()      # noqa: E731
    out_of = lambda t: s.demand[t][central].sum() / s.demand[t].sum()      # noqa: E731
    morning, evening = int(0.3 * 40), int(0.75 * 40)
    assert into(morning) > into(evening) + 0.05 and out_of(evening) > out_of(morning) + 0.05
    flat = synthetic(25, horizon=40, seed=0, peaks=False)
    assert np.allclose(flat.demand, flat.demand[0])
    assert s.demand[morning].sum() > 1.5 * flat.demand[morning].sum()


def test_synthetic_builds_a_200_region_city():
    s = synthetic(200, layout="geometric", horizon=60)
    assert s.regions == 200 and s.travel_time.shape == (200, 200) and s.positions.shape == (200, 2)
    assert s.demand.shape[1:] == (200, 200) and s.demand.shape[0] >= 60 and s.price.shape == s.demand.shape
    off = ~np.eye(200, dtype=bool)
    assert (s.travel_time[off] >= 1).all() and (s.travel_time == s.travel_time.T).all()
    assert s.demand.sum(axis=(1, 2)).min() > 0 and s.vehicles >= 1000

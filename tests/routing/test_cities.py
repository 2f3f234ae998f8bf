"""The synthetic cities shipped in the public AMoD format (``config/routing/harbor14.json``,
``config/routing/twin17.json``): what the generator writes, and the shape of the public city files."""

import json
from pathlib import Path

import numpy as np
import pytest

from controllers.rebalancing import triangle_violation
from ohio_core.routing import cities
from ohio_core.routing.scenario import fleet_for
from ohio_core.routing.scenario_io import load_scenario

SHIPPED = Path(__file__).resolve().parents[2] / "config" / "routing"
PUBLIC_KEYS = {"region", "demand", "rebTime", "totalAcc"}


@pytest.mark.parametrize("name", sorted(cities.CITIES))
def test_the_shipped_file_is_what_the_generator_writes(name, tmp_path):
    assert cities.main([str(tmp_path), "--cities", name]) == 0
    assert (tmp_path / f"{name}.json").read_bytes() == (SHIPPED / f"{name}.json").read_bytes()


@pytest.mark.parametrize("name", sorted(cities.CITIES))
def test_a_shipped_city_has_the_shape_of_the_public_files(name):
    path = SHIPPED / f"{name}.json"
    assert set(json.loads(path.read_text())) == PUBLIC_KEYS          # the public format's keys only
    shape = cities.CITIES[name]
    city = load_scenario(path)
    assert (city.name, city.regions, city.vehicles) == (name, shape.regions, shape.vehicles)
    assert 14 <= city.regions <= 17 and 1500 <= city.vehicles <= 1850
    assert (city.horizon, city.step_minutes, city.start_hour) == (cities.STEPS, 3, shape.start_hour)
    assert triangle_violation(city.travel_time) is not None             # non-metric travel times
    requests = city.demand.sum((1, 2))
    assert requests.max() > 2.5 * requests.min()                         # a peak
    assert fleet_for(city.demand, city.travel_time) < city.vehicles / 10  # a large fleet, few requests


def test_write_public_writes_the_keys_given_and_loads_back(tmp_path):
    minutes = np.array([[3.0, 6.0], [9.0, 3.0]])
    rate = np.array([[[0.0, 1.5], [0.25, 0.0]]] * 2)
    path = cities.write_public(tmp_path / "two.json", minutes, rate, np.array([[2.0, 4.5], [6.0, 2.0]]), None,
                               8 * 60, regions={"nlat": 2, "nlon": 1})
    city = load_scenario(path)
    assert (city.regions, city.horizon, city.start_hour) == (2, 2, 8)
    np.testing.assert_array_equal(city.travel_time, [[1, 2], [3, 1]])
    np.testing.assert_allclose(city.demand, rate)
    assert city.price[0, 0, 1] == 4.5 and city.vehicles == fleet_for(rate, city.travel_time)
    with pytest.raises(KeyError, match="unknown city"):
        cities.write_city("atlantis", tmp_path / "a.json")

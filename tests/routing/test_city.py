"""A run's city as a spec, its record in result.json and sidecars, and the city built back from it."""

import hashlib
import json

import numpy as np
import pytest
import routing_cities

from ohio_core.routing.city import CitySpec, check_formulation, recorded_city, spec_of_record
from ohio_core.routing.scenario import ScenarioError, synthetic
from ohio_core.routing.scenario_io import load_scenario


def same_city(a, b) -> None:
    assert (a.name, a.regions, a.vehicles, a.horizon) == (b.name, b.regions, b.vehicles, b.horizon)
    np.testing.assert_array_equal(a.travel_time, b.travel_time)
    np.testing.assert_array_equal(a.demand, b.demand)
    np.testing.assert_array_equal(a.price, b.price)


@pytest.fixture
def town(tmp_path):
    return routing_cities.peak_town(tmp_path / "peak_town.json")


def test_a_synthetic_spec_is_the_synthetic_city_and_its_record_builds_it_again():
    spec = CitySpec(regions=6, layout="geometric", horizon=12, seed=3)
    city = spec.build()
    same_city(city, synthetic(6, layout="geometric", horizon=12, seed=3))
    record = spec.record(city)
    assert record == {"name": city.name, "regions": 6, "vehicles": city.vehicles, "horizon": 12,
                      "demand_scale": 1.0, "layout": "geometric", "seed": 3}
    same_city(recorded_city(json.loads(json.dumps(record))), city)
    spec = CitySpec(regions=6, horizon=12, vehicles=500)
    fleet = spec.build()
    assert fleet.vehicles == 500 and recorded_city(spec.record(fleet)).vehicles == 500


def test_older_records_take_the_defaults_and_the_region_count_given():
    """Sidecars written before the fleet and the name were recorded; the oldest record no city at all."""
    same_city(recorded_city({"regions": 5, "layout": "grid", "horizon": 8, "seed": 1}),
              synthetic(5, horizon=8, seed=1))
    same_city(recorded_city({}, regions=7), synthetic(7, horizon=60, seed=0))
    assert spec_of_record({}, regions=7) == CitySpec(regions=7)


def test_a_file_spec_scales_the_requests_sets_the_fleet_and_records_the_file(town, tmp_path, monkeypatch):
    plain = load_scenario(town)
    assert plain.vehicles == routing_cities.PEAK_TOWN_FLEET and plain.regions == routing_cities.PEAK_TOWN_REGIONS
    spec = CitySpec(file=str(town), demand_scale=2.5, vehicles=900)
    city = spec.build()
    np.testing.assert_allclose(city.demand, 2.5 * plain.demand)
    np.testing.assert_allclose(city.price, plain.price)
    assert city.vehicles == 900 and city.name == "peak_town" and city.horizon == routing_cities.STEPS
    assert CitySpec(file=str(town), demand_scale=2.5).build().vehicles == routing_cities.PEAK_TOWN_FLEET   # totalAcc
    monkeypatch.chdir(tmp_path)
    record = CitySpec(file="peak_town.json", demand_scale=2.5, vehicles=900).record(city)
    assert record == {"name": "peak_town", "regions": 5, "vehicles": 900, "horizon": routing_cities.STEPS,
                      "demand_scale": 2.5, "file": str(town.resolve()),
                      "sha256": hashlib.sha256(town.read_bytes()).hexdigest()}
    monkeypatch.chdir("/")
    same_city(recorded_city(record), city)                            # the absolute path: from any folder


def test_a_recorded_file_that_is_gone_damaged_or_changed_is_refused(town, tmp_path):
    record = CitySpec(file=str(town)).record(load_scenario(town))
    same_city(recorded_city(record), load_scenario(town))
    edited = json.loads(town.read_text())
    edited["demand"][0]["demand"] += 1.0                              # the same regions, one request more
    town.write_text(json.dumps(edited))
    with pytest.raises(ScenarioError, match=r"the city in the sidecar: .*peak_town.json has changed since it was "
                                            r"recorded \(its SHA-256 differs\)"):
        recorded_city(record)
    record = CitySpec(file=str(town)).record(load_scenario(town))
    routing_cities.grid_six(town)                                     # now 6 regions, not 5
    with pytest.raises(ScenarioError, match=r"the city in the sidecar: .*peak_town.json now has 6 regions, not the 5"):
        recorded_city(record)
    town.write_text('{"demand": [')
    with pytest.raises(ScenarioError, match=r"the city in the sidecar: .*peak_town.json: invalid JSON"):
        recorded_city(record)
    town.unlink()
    with pytest.raises(ScenarioError, match=r"the city in the sidecar: scenario file not found: .*peak_town.json"):
        recorded_city(record)


@pytest.mark.parametrize("settings, message", [
    ({"file": "x.json", "demand_scale": 0.0}, "demand_scale must be a finite number > 0"),
    ({"file": "x.json", "demand_scale": float("nan")}, "demand_scale must be a finite number > 0"),
    ({"file": "x.json", "demand_scale": True}, "demand_scale must be a finite number > 0"),
    ({"demand_scale": 2.0}, "give a scenario file"),
    ({"vehicles": 0}, "vehicles must be an integer >= 1"),
    ({"vehicles": 2.5}, "vehicles must be an integer >= 1"),
    ({"layout": "ring"}, "unknown layout"),
    ({"regions": 1}, "regions must be >= 2"),
])
def test_bad_settings_are_refused(settings, message):
    with pytest.raises(ScenarioError, match=message):
        CitySpec(**settings)


def test_transport_is_refused_for_travel_times_that_break_the_triangle_inequality(town, tmp_path):
    city = load_scenario(town)
    check_formulation(city, "edges", str(town))
    with pytest.raises(ScenarioError, match=r"peak_town.json: travel times break the triangle inequality "
                                            r"\(t\(1, 3\) = 15 > t\(1, 0\) \+ t\(0, 3\) = 4 steps\).*'edges'"):
        check_formulation(city, "transport", str(town))
    check_formulation(load_scenario(routing_cities.grid_six(tmp_path / "grid.json")), "transport")

"""Scenarios in the public AMoD JSON format (ohio_core.routing.scenario_io): round trips, the shipped example,
the loader and its errors naming the file and the key."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import numpy as np
import pytest

from ohio_core.routing.scenario import Scenario, ScenarioError, synthetic
from ohio_core.routing.scenario_io import load_scenario, save_scenario

EXAMPLE = Path(__file__).resolve().parents[2] / "config" / "routing" / "example_4x4.json"


def assert_same_scenario(a: Scenario, b: Scenario) -> None:
    for key in ("name", "vehicles", "horizon", "step_minutes", "op_cost", "start_hour"):
        assert getattr(a, key) == getattr(b, key), key
    for key in ("travel_time", "demand", "price", "positions"):
        assert np.array_equal(getattr(a, key), getattr(b, key)), key


@pytest.mark.parametrize("layout, step", [("grid", 3.0), ("geometric", 2.5)])
def test_json_round_trip(tmp_path, layout, step):
    s = synthetic(9, layout=layout, horizon=12, step_minutes=step, seed=7)
    back = load_scenario(save_scenario(s, tmp_path / "s.json"))
    assert_same_scenario(s, back)
    data = json.loads((tmp_path / "s.json").read_text())
    assert {"demand", "rebTime", "totalAcc", "region", "nlat", "nlon"} <= set(data)
    rec = data["demand"][0]
    assert set(rec) == {"time_stamp", "origin", "destination", "demand", "travel_time", "price"}


def test_shipped_example_is_the_synthetic_grid():
    s = load_scenario(EXAMPLE)
    ref = synthetic(16, horizon=10, name="example_4x4")
    assert s.name == "example_4x4" and s.regions == 16 and s.horizon == 10 and s.vehicles == ref.vehicles
    assert np.array_equal(s.travel_time, ref.travel_time) and np.array_equal(s.positions, ref.positions)
    assert np.abs(s.demand - ref.demand).max() <= 5e-4 and np.abs(s.price - ref.price).max() <= 5e-4


def public_file(tmp_path: Path, data: dict) -> Path:
    path = tmp_path / "scenario_test.json"
    path.write_text(json.dumps(data))
    return path


PUBLIC = {
    "nlat": 2, "nlon": 2,
    "demand": [
        # step 0 (07:00-07:03): two records on 0 -> 1, aggregated
        {"time_stamp": 420, "origin": 0, "destination": 1, "demand": 1.0, "travel_time": 6, "price": 10.0},
        {"time_stamp": 421, "origin": 0, "destination": 1, "demand": 3.0, "travel_time": 6, "price": 20.0},
        {"time_stamp": 423, "origin": 2, "destination": 3, "demand": 2.0, "travel_time": 9, "price": 7.0},
        {"time_stamp": 426, "origin": 3, "destination": 0, "demand": 0.5, "travel_time": 3, "price": 5.0},
        {"time_stamp": 300, "origin": 1, "destination": 2, "demand": 9.0, "travel_time": 3, "price": 5.0},
    ],
    "rebTime": [
        {"time_stamp": 6, "origin": 0, "destination": 1, "reb_time": 30},
        {"time_stamp": 7, "origin": 0, "destination": 1, "reb_time": 6},
        {"time_stamp": 7, "origin": 1, "destination": 0, "reb_time": 6},
        {"time_stamp": 7, "origin": 1, "destination": 2, "reb_time": 3},
        {"time_stamp": 7, "origin": 2, "destination": 1, "reb_time": 3},
        {"time_stamp": 7, "origin": 2, "destination": 3, "reb_time": 12},
        {"time_stamp": 7, "origin": 3, "destination": 2, "reb_time": 12},
    ],
    "totalAcc": [{"hour": 6, "acc": 100}, {"hour": 7, "acc": 200}, {"hour": 9, "acc": 300}],
}


def test_loader_reads_the_public_format(tmp_path):
    data = copy.deepcopy(PUBLIC)
    data["json_hr"] = 7          # the simulators' argument; without it the earliest record (05:00) starts
    s = load_scenario(public_file(tmp_path, data))
    assert s.name == "scenario_test" and s.regions == 4 and s.start_hour == 7 and s.step_minutes == 3.0
    assert s.steps == 3 and s.horizon == 3                   # the record at 05:00 is before the start
    assert s.demand[0, 0, 1] == 4.0 and s.price[0, 0, 1] == pytest.approx(17.5)   # (1*10 + 3*20) / 4
    assert s.demand[1, 2, 3] == 2.0 and s.demand[2, 3, 0] == 0.5 and s.demand.sum() == 6.5
    assert s.price[0, 1, 0] == 0.0                            # no demand there: never requested
    tt = s.travel_time
    assert tt[0, 1] == 2 and tt[1, 2] == 1 and tt[2, 3] == 4     # rebTime of hour 7, minutes / 3
    assert tt[3, 0] == 1                                     # from the demand record (3 min)
    assert tt[0, 2] == 3 and tt[0, 3] == 7                   # shortest paths over known pairs: 6+3, 6+3+12 min
    assert s.vehicles == 200                                 # totalAcc at json_hr + round(3/2 * 3/60) = 7
    assert s.op_cost == pytest.approx(1.5) and s.positions.shape == (4, 2)
    early = load_scenario(public_file(tmp_path, PUBLIC))
    assert early.start_hour == 5 and early.demand[0, 1, 2] == 9.0
    assert load_scenario(public_file(tmp_path, data), horizon=10, vehicles=50).horizon == 10


def _mutate(path: str, value):
    def apply(data):
        target = data
        keys = path.split(".")
        for k in keys[:-1]:
            target = target[int(k)] if isinstance(target, list) else target[k]
        last = keys[-1]
        if value is KeyError:
            del target[last]
        else:
            target[int(last) if isinstance(target, list) else last] = value
    return apply


@pytest.mark.parametrize("mutate, match_text", [
    (_mutate("demand", KeyError), "missing key 'demand'"),
    (_mutate("demand.2.price", KeyError), r"demand\[2\]: missing key 'price'"),
    (_mutate("demand.1.demand", "many"), r"demand\[1\]: 'demand' must be a finite number"),
    (_mutate("demand.0.demand", -1.0), r"demand\[0\]: 'demand' must be >= 0"),
    (_mutate("demand.3.origin", 1.5), r"demand\[3\]: 'origin' must be an integer"),
    (_mutate("demand.3.origin", 9), r"demand\[3\]: region 9 out of range"),
    (_mutate("rebTime.1", "x"), r"rebTime\[1\] must be an object"),
    (_mutate("totalAcc", {"hour": 7}), "'totalAcc' must be a list"),
    (_mutate("region", 1), "'region' must be an integer >= 2"),
    (_mutate("json_tstep", 0), "'json_tstep' must be >= 0|minutes per step must be > 0"),
])
def test_loader_errors_name_file_and_key(tmp_path, mutate, match_text):
    data = copy.deepcopy(PUBLIC)
    data["json_hr"] = 7
    mutate(data)
    path = public_file(tmp_path, data)
    with pytest.raises(ScenarioError, match=match_text) as err:
        load_scenario(path)
    assert str(path) in str(err.value)


def test_loader_file_errors(tmp_path):
    with pytest.raises(ScenarioError, match="not found"):
        load_scenario(tmp_path / "missing.json")
    bad = tmp_path / "bad.json"
    bad.write_text("{\"demand\": [")
    with pytest.raises(ScenarioError, match="invalid JSON") as err:
        load_scenario(bad)
    assert str(bad) in str(err.value)
    bad.write_text("[1, 2]")
    with pytest.raises(ScenarioError, match="expected a JSON object"):
        load_scenario(bad)
    data = copy.deepcopy(PUBLIC)
    data["json_hr"] = 7
    data["rebTime"] = [r for r in data["rebTime"] if r["destination"] != 3]
    data["demand"] = [r for r in data["demand"] if r["destination"] != 3]
    with pytest.raises(ScenarioError, match=r"no travel time from region \d to 3"):
        load_scenario(public_file(tmp_path, data))

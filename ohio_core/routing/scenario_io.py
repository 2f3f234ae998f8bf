"""Scenario files: the public AMoD JSON format, read into a ``Scenario`` and written from one.

Scenario JSON (the format of the public AMoD simulators, e.g. ``data/scenario_nyc4x4.json``)
=============================================================================================

Times in the file are minutes or hours of the day; the loader bins them into steps of
``json_tstep`` minutes starting at hour ``json_hr`` (step k = floor((time_stamp - 60 json_hr) /
json_tstep)), as the public simulators do. Records before the start are ignored.

==================  =========================================  ==============================================
key                 content (units)                            when absent
==================  =========================================  ==============================================
``demand``          list of records ``{"time_stamp": minute    required. Per step and OD pair the rate is the
                    of day, "origin": i, "destination": j,     sum of its records' ``demand`` (times
                    "demand": trips, "travel_time": minutes,   ``demand_scale``); ``price`` is their demand-
                    "price": revenue per trip}``               weighted mean (0 where the rate is 0: no trip
                                                               is ever requested there). ``travel_time`` only
                                                               fills pairs that ``rebTime`` lacks.
``rebTime``         list of ``{"time_stamp": hour, "origin":   travel times from the demand records (demand-
                    i, "destination": j, "reb_time":           weighted mean over all steps). Pairs missing
                    minutes}``; the records of hour            in both are completed by shortest paths over
                    ``json_hr`` are used (else those of the    the known pairs; a pair still unreachable is
                    nearest hour present)                      an error. Steps = max(1, round(minutes /
                                                               json_tstep)).
``totalAcc``        list of ``{"hour": h, "acc": vehicles}``;  ``ceil(1.2 mean_t sum_ij demand[t,i,j] t_ij)``
                    the record of hour ``json_hr +             (the fleet Little's law needs for the mean
                    round(json_tstep tf / 120)`` (mid-         demand, plus 20%)
                    episode) is used, else the nearest hour
``region``          number of regions n (regions 0..n-1),      ``topology_graph`` (largest index + 1), then
                    or the list ``[0, ..., n-1]``              ``nlat * nlon``, then the largest region index
                                                               in ``demand`` / ``rebTime`` + 1
``topology_graph``  list of ``{"i": i, "j": j}`` edges         complete graph. Only counts regions here:
                                                               every pair is a direct move with its travel
                                                               time
``nlat``, ``nlon``  grid size of the regions (region i at      ``positions`` stay unknown (``None``)
                    column i % nlat, row i // nlat, as the
                    public simulators index them)
``json_hr``         hour of step 0 (the simulators take it     hour of the earliest demand record
                    as an argument)
``json_tstep``      minutes per step (simulators' argument)    3
``tf``              steps per episode (simulators' argument)   up to the last step with demand records
                                                               (T = max(tf, last such step + 1))
``op_cost``         cost per vehicle-step of travel            ``0.5 json_tstep`` (the simulators' default
                                                               of 0.5 per vehicle-minute)
``name``            scenario name                              the file name without extension
``positions``       n x 2 region coordinates (plots)           from ``nlat``/``nlon`` if they count n regions
==================  =========================================  ==============================================

One travel-time matrix times trips and rebalancing alike (the public simulators time trips by the
demand records' ``travel_time`` per step; here those only fill pairs that ``rebTime`` lacks).

``json_hr``, ``json_tstep``, ``tf``, ``op_cost``, ``name`` and ``positions`` extend the public
format (which passes the first three on the command line); ``save_scenario`` writes them and the
public simulators ignore them. Keyword arguments of ``load_scenario`` override the file. Other
keys are ignored. Malformed input raises ``ScenarioError`` naming the file, the key and the
record index.

The shipped example ``config/routing/example_4x4.json`` is
``save_scenario(synthetic(16, horizon=10, name="example_4x4"), path, decimals=3)``.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
from scipy import sparse
from scipy.sparse import csgraph

from ohio_core.routing.scenario import DEFAULT_BETA, DEFAULT_STEP_MINUTES, Scenario, ScenarioError, fleet_for


def _field(path: Path, key: str, index: int | None, record: Any, name: str, *, integer: bool = False,
           low: float | None = 0.0) -> float:
    where = f"{path}: {key}" + (f"[{index}]" if index is not None else "")
    if not isinstance(record, dict):
        raise ScenarioError(f"{where} must be an object, got {type(record).__name__}")
    if name not in record:
        raise ScenarioError(f"{where}: missing key {name!r}")
    value = record[name]
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ScenarioError(f"{where}: {name!r} must be a finite number, got {value!r}")
    if integer and not float(value).is_integer():
        raise ScenarioError(f"{where}: {name!r} must be an integer, got {value!r}")
    if low is not None and value < low:
        raise ScenarioError(f"{where}: {name!r} must be >= {low:g}, got {value!r}")
    return value


def _records(path: Path, data: dict, key: str, fields: tuple[str, ...], integer: tuple[str, ...],
             required: bool) -> np.ndarray | None:
    """The list under ``key`` as an array (records, fields); errors name the record."""
    if key not in data:
        if required:
            raise ScenarioError(f"{path}: missing key {key!r}")
        return None
    items = data[key]
    if not isinstance(items, list):
        raise ScenarioError(f"{path}: {key!r} must be a list of records, got {type(items).__name__}")
    rows = [[_field(path, key, k, rec, f, integer=f in integer) for f in fields] for k, rec in enumerate(items)]
    return np.asarray(rows, dtype=float).reshape(len(rows), len(fields))


def _count_regions(path: Path, data: dict, indices: list[np.ndarray]) -> int:
    if "region" in data:
        region = data["region"]
        if isinstance(region, list):
            if region != list(range(len(region))):
                raise ScenarioError(f"{path}: 'region' must list the regions 0..n-1 in order")
            return len(region)
        if isinstance(region, bool) or not isinstance(region, int) or region < 2:
            raise ScenarioError(f"{path}: 'region' must be an integer >= 2 or a list of regions, got {region!r}")
        return region
    if "topology_graph" in data:
        edges = _records(path, data, "topology_graph", ("i", "j"), ("i", "j"), True)
        if len(edges):
            return int(edges.max()) + 1
    if "nlat" in data and "nlon" in data:
        return int(_field(path, "nlat", None, data, "nlat", integer=True, low=1)
                   * _field(path, "nlon", None, data, "nlon", integer=True, low=1))
    used = np.concatenate([a.ravel() for a in indices]) if indices else np.zeros(0)
    if used.size == 0:
        raise ScenarioError(f"{path}: cannot tell the number of regions (no 'region', 'topology_graph', "
                            "'nlat'/'nlon' or records)")
    return int(used.max()) + 1


def _check_regions(path: Path, key: str, od: np.ndarray, n: int) -> None:
    bad = np.flatnonzero((od >= n).any(1)) if od.size else np.zeros(0, int)
    if bad.size:
        raise ScenarioError(f"{path}: {key}[{bad[0]}]: region {int(od[bad[0]].max())} out of range "
                            f"(the file has {n} regions)")


def _nearest(values: np.ndarray, target: float) -> float:
    return float(values[np.argmin(np.abs(values - target) + 1e-9 * values)])  # ties: the earlier hour


def load_scenario(path: str | Path, *, start_hour: int | None = None, step_minutes: float | None = None,
                  horizon: int | None = None, vehicles: int | None = None, op_cost: float | None = None,
                  demand_scale: float = 1.0, name: str | None = None) -> Scenario:
    """Read a scenario in the public AMoD JSON format (table in the module docstring)."""
    path = Path(path)
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise ScenarioError(f"scenario file not found: {path}") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ScenarioError(f"{path}: invalid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise ScenarioError(f"{path}: expected a JSON object of scenario keys, got {type(data).__name__}")
    opt = lambda key, low, integer=False: (_field(path, key, None, data, key, integer=integer, low=low)  # noqa: E731
                                           if key in data else None)

    dem = _records(path, data, "demand", ("time_stamp", "origin", "destination", "demand", "travel_time", "price"),
                   ("origin", "destination"), required=True)
    reb = _records(path, data, "rebTime", ("time_stamp", "origin", "destination", "reb_time"),
                   ("origin", "destination"), required=False)
    acc = _records(path, data, "totalAcc", ("hour", "acc"), ("acc",), required=False)
    n = _count_regions(path, data, [dem[:, 1:3]] + ([reb[:, 1:3]] if reb is not None else []))
    _check_regions(path, "demand", dem[:, 1:3], n)
    if reb is not None:
        _check_regions(path, "rebTime", reb[:, 1:3], n)

    tstep = step_minutes if step_minutes is not None else opt("json_tstep", 0.0)
    tstep = DEFAULT_STEP_MINUTES if tstep is None else tstep
    if not tstep > 0:
        raise ScenarioError(f"{path}: minutes per step must be > 0, got {tstep}")
    hour = start_hour if start_hour is not None else opt("json_hr", 0.0, integer=True)
    if hour is None:
        if not len(dem):
            raise ScenarioError(f"{path}: 'demand' is empty and no 'json_hr' says when the scenario starts")
        hour = math.floor(dem[:, 0].min() / 60.0)
    hour = int(hour)
    tf = horizon if horizon is not None else opt("tf", 1.0, integer=True)

    step = np.floor((dem[:, 0] - 60.0 * hour) / tstep + 1e-9).astype(np.int64)
    keep = step >= 0
    if not keep.any():
        raise ScenarioError(f"{path}: no demand record falls after the start (hour {hour})")
    dem, step = dem[keep], step[keep]
    T = max(int(step.max()) + 1, 0 if tf is None else int(tf))
    o, d = dem[:, 1].astype(np.int64), dem[:, 2].astype(np.int64)
    v = dem[:, 3] * demand_scale
    rate, revenue = np.zeros((T, n, n)), np.zeros((T, n, n))
    np.add.at(rate, (step, o, d), v)
    np.add.at(revenue, (step, o, d), v * dem[:, 5])
    price = np.divide(revenue, rate, out=np.zeros_like(rate), where=rate > 0)
    count = np.zeros((T, n, n), dtype=np.int64)
    np.add.at(count, (step, o, d), 1)
    single = (count[step, o, d] == 1) & (v > 0)          # one record: its price as written, not (p v) / v
    price[step[single], o[single], d[single]] = dem[single, 5]

    minutes = np.full((n, n), np.nan)
    trip_w, trip_min = np.zeros((n, n)), np.zeros((n, n))
    np.add.at(trip_w, (o, d), v)
    np.add.at(trip_min, (o, d), v * dem[:, 4])
    has_trip = trip_w > 0
    minutes[has_trip] = trip_min[has_trip] / trip_w[has_trip]
    if reb is not None and len(reb):
        hours = np.unique(reb[:, 0])
        use = reb[:, 0] == (hour if hour in hours else _nearest(hours, hour))
        ro, rd = reb[use, 1].astype(np.int64), reb[use, 2].astype(np.int64)
        total, count = np.zeros((n, n)), np.zeros((n, n))
        np.add.at(total, (ro, rd), reb[use, 3])
        np.add.at(count, (ro, rd), 1.0)
        minutes = np.where(count > 0, total / np.maximum(count, 1.0), minutes)
    off = ~np.eye(n, dtype=bool)
    if np.isnan(minutes[off]).any():
        known = np.where(np.isnan(minutes) | ~off, 0.0, np.maximum(minutes, 1e-9))
        paths = csgraph.shortest_path(sparse.csr_array(known), method="D", directed=True)
        minutes = np.where(np.isnan(minutes) & off, paths, minutes)
        if not np.isfinite(minutes[off]).all():
            i, j = np.argwhere(~np.isfinite(minutes) & off)[0]
            raise ScenarioError(f"{path}: no travel time from region {i} to {j} ('rebTime' and 'demand' "
                                "records do not connect them)")
    travel_time = np.maximum(1, np.rint(np.nan_to_num(minutes, nan=tstep) / tstep)).astype(np.int64)

    if vehicles is None and acc is not None and len(acc):
        target = hour + round(tstep / 2 * (T if tf is None else tf) / 60)
        vehicles = int(acc[acc[:, 0] == _nearest(np.unique(acc[:, 0]), target), 1][0])
    if vehicles is None:
        vehicles = fleet_for(rate, travel_time)
    cost = op_cost if op_cost is not None else opt("op_cost", 0.0)
    positions = data.get("positions")
    if positions is None and "nlat" in data and "nlon" in data:
        nlat = int(_field(path, "nlat", None, data, "nlat", integer=True, low=1))
        if nlat * int(_field(path, "nlon", None, data, "nlon", integer=True, low=1)) == n:
            positions = np.stack([np.arange(n) % nlat, np.arange(n) // nlat], axis=1).astype(float)
    label = name if name is not None else data.get("name", path.stem)
    try:
        return Scenario(name=label, travel_time=travel_time, demand=rate, price=price, vehicles=vehicles,
                        horizon=T if tf is None else int(tf), step_minutes=tstep,
                        op_cost=DEFAULT_BETA * tstep if cost is None else cost, positions=positions, start_hour=hour)
    except ScenarioError as exc:
        raise ScenarioError(f"{path}: {exc}") from None


def _grid_shape(positions: np.ndarray | None, n: int) -> tuple[int, int]:
    if positions is None:
        return n, 1
    nx, ny = len(np.unique(positions[:, 0])), len(np.unique(positions[:, 1]))
    return (nx, ny) if nx * ny == n else (n, 1)


def _number_json(x: float, decimals: int | None):
    x = float(x) if decimals is None else round(float(x), decimals)
    return int(x) if x.is_integer() and abs(x) < 2 ** 53 else x


def save_scenario(scenario: Scenario, path: str | Path, *, decimals: int | None = None) -> Path:
    """Write ``scenario`` in the public AMoD JSON format (one record per line).

    One ``demand`` record per step and OD pair with a positive rate; one ``rebTime`` record per
    pair (hour ``json_hr``); one ``totalAcc`` record at the hour the public loaders read. Values are
    written exactly unless ``decimals`` rounds demand rates and prices. ``load_scenario`` gives the
    scenario back (prices where the rate is 0 are not stored and load as 0).
    """
    s, path = scenario, Path(path)
    n, tstep, hour = s.regions, s.step_minutes, s.start_hour
    num = lambda x, dec=None: _number_json(x, dec)  # noqa: E731
    tt_min = s.travel_time * tstep
    t_idx, o_idx, d_idx = np.nonzero(s.demand > 0)
    demand = [{"time_stamp": num(60 * hour + t * tstep), "origin": int(i), "destination": int(j),
               "demand": num(s.demand[t, i, j], decimals), "travel_time": num(tt_min[i, j]),
               "price": num(s.price[t, i, j], decimals)} for t, i, j in zip(t_idx, o_idx, d_idx)]
    reb = [{"time_stamp": hour, "origin": i, "destination": j, "reb_time": num(tt_min[i, j])}
           for i in range(n) for j in range(n)]
    nlat, nlon = _grid_shape(s.positions, n)
    header = {"name": s.name, "region": n, "nlat": nlat, "nlon": nlon, "json_hr": hour, "json_tstep": num(tstep),
              "tf": s.horizon, "op_cost": num(s.op_cost),
              "totalAcc": [{"hour": hour + round(tstep / 2 * s.horizon / 60), "acc": s.vehicles}]}
    if s.positions is not None:
        header["positions"] = [[num(x), num(y)] for x, y in s.positions]
    parts = [f"  {json.dumps(k)}: {json.dumps(v)}" for k, v in header.items()]
    for key, records in (("demand", demand), ("rebTime", reb)):
        body = ",\n".join(f"    {json.dumps(r)}" for r in records)
        parts.append(f"  {json.dumps(key)}: [\n{body}\n  ]" if records else f"  {json.dumps(key)}: []")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text("{\n" + ",\n".join(parts) + "\n}\n")
    tmp.replace(path)
    return path

"""Synthetic cities written in the public AMoD scenario format, with that format's keys only.

The public city files (e.g. the Brooklyn, Chicago or Washington scenarios of the public AMoD
simulators) hold 14-17 regions, a fleet of 1,500-1,850 vehicles (``totalAcc``), few requests per
3-minute step for that fleet (the simulators scale them by a demand ratio), travel times from road
data that break the triangle inequality, and demand that peaks within the hour. They cannot be
shipped or downloaded here, so ``config/routing/`` holds two synthetic cities of the same shape,
written by ``write_city`` (``python -m ohio_core.routing.cities DIR`` writes both again; the
shipped files are byte for byte what it writes):

- ``harbor14``: 14 regions around a bay (the region pairs across the water drive around it), a
  downtown pulling requests in at the morning peak (7:00-9:00), 1,500 vehicles;
- ``twin17``: 17 regions with two centres, requests leaving both at the evening peak
  (16:30-18:30), 1,850 vehicles.

Each file holds ``region``, ``demand`` (one record per 3-minute step and region pair with
requests: minute of day, origin, destination, requests, minutes, price), ``rebTime`` (one record per
region pair, minutes, at the first hour) and ``totalAcc``; no ``json_hr``, ``json_tstep`` or ``tf``
(the public simulators take them on the command line), so ``load_scenario`` starts at the first
hour with requests, bins them into 3-minute steps and runs every step the file holds (40).

Travel times: road distance on a random geometric graph, 2 minutes of access plus 20 minutes per
unit, times a congestion factor per directed pair (LogNormal(0, 0.3)): some direct trips take
longer than a detour, as in the public files. Requests: a gravity model on the road minutes (trips
inside a region 0.3 times as likely), ``TRIPS_PER_REGION`` per region and step off peak, plus a
Gaussian peak (sd 20 minutes) of ``PEAK`` times that many into (morning) or out of (evening) the
centres. Prices: 2.5 plus 0.6 per minute, times LogNormal(0, 0.1) per pair. Deterministic in the
seed.

``write_public`` writes any such city (travel minutes, request rates per step and pair, prices,
fleet) with the format's keys only; the tests' small cities use it too.
"""

from __future__ import annotations

import argparse
import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy import sparse
from scipy.sparse import csgraph

STEP_MINUTES = 3
STEPS = 40                     # two hours of 3-minute steps
TRIPS_PER_REGION = 0.8         # requests per region and step off peak, before any demand scale
PEAK = 2.5                     # extra requests at the peak, in multiples of the off-peak total


@dataclass(frozen=True)
class CityShape:
    """One synthetic city in the public format (module docstring)."""

    name: str
    regions: int
    vehicles: int
    start_hour: int
    peak_minute: int            # minutes after the start
    inbound: bool               # the peak's requests go into the centres (else out of them)
    centres: tuple              # centre points on the unit square
    water: bool                 # a bay in the middle: no road crosses it
    seed: int


CITIES = {
    "harbor14": CityShape("harbor14", 14, 1500, 7, 60, True, ((0.75, 0.55),), True, 14),
    "twin17": CityShape("twin17", 17, 1850, 16, 60, False, ((0.3, 0.35), (0.7, 0.65)), False, 17),
}


def _roads(pos: np.ndarray, water: bool) -> np.ndarray:
    """Road distance between the regions: a random geometric graph plus a spanning tree, no road over the bay."""
    n = len(pos)
    euclid = np.linalg.norm(pos[:, None, :] - pos[None, :, :], axis=-1)
    blocked = np.zeros((n, n), bool)
    if water:                   # the bay: the disc of radius 0.22 at the middle; a road through it is blocked
        c, r = np.array([0.5, 0.5]), 0.22
        for i in range(n):
            for j in range(n):
                d = pos[j] - pos[i]
                s = np.clip(np.dot(c - pos[i], d) / max(np.dot(d, d), 1e-12), 0.0, 1.0)
                blocked[i, j] = np.linalg.norm(pos[i] + s * d - c) < r
    radius = 1.6 * math.sqrt(math.log(n) / (math.pi * n))
    allowed = np.where(blocked, 0.0, euclid)
    roads = np.where(allowed <= radius, allowed, 0.0)
    tree = csgraph.minimum_spanning_tree(sparse.csr_array(allowed)).toarray()
    roads = np.maximum(roads, np.maximum(tree, tree.T))
    return csgraph.shortest_path(sparse.csr_array(roads), method="D", directed=False)


def _positions(shape: CityShape, rng: np.random.Generator) -> np.ndarray:
    pos = []
    while len(pos) < shape.regions:        # regions off the bay
        p = rng.random(2)
        if not shape.water or np.linalg.norm(p - 0.5) > 0.25:
            pos.append(p)
    return np.asarray(pos)


def city_arrays(shape: CityShape) -> dict:
    """The city's travel minutes (n, n), request rates (STEPS, n, n), prices (n, n) and fleet."""
    rng = np.random.default_rng(shape.seed)
    pos = _positions(shape, rng)
    n = shape.regions
    minutes = 2.0 + 20.0 * _roads(pos, shape.water)
    minutes *= rng.lognormal(0.0, 0.3, (n, n))
    np.fill_diagonal(minutes, STEP_MINUTES)
    minutes = np.round(minutes, 1)
    centre = np.min([np.linalg.norm(pos - np.asarray(c), axis=1) for c in shape.centres], axis=0)
    central = np.exp(-(centre / 0.25) ** 2)
    pop = (0.5 + central) * rng.lognormal(0.0, 0.25, n)
    off = ~np.eye(n, dtype=bool)
    decay = np.exp(-minutes / minutes[off].mean())
    base = np.outer(pop, pop) * decay
    base[~off] *= 0.3
    base *= n * TRIPS_PER_REGION / base.sum()
    peak = np.outer(pop * (1.0 - central), pop * central) * decay
    peak = peak if shape.inbound else peak.T
    peak *= PEAK * base.sum() / peak.sum()
    t = STEP_MINUTES * (np.arange(STEPS) + 0.5)
    bump = np.exp(-0.5 * ((t - shape.peak_minute) / 20.0) ** 2)[:, None, None]
    rate = base[None] + bump * peak[None]
    price = (2.5 + 0.6 * minutes) * rng.lognormal(0.0, 0.1, (n, n))
    return {"minutes": minutes, "rate": rate, "price": price, "vehicles": shape.vehicles,
            "start_minute": 60 * shape.start_hour}


def write_public(path: str | Path, minutes: np.ndarray, rate: np.ndarray, price: np.ndarray, vehicles: int | None,
                 start_minute: int, step_minutes: float = STEP_MINUTES, decimals: int = 3,
                 regions: dict | None = None) -> Path:
    """Write a city in the public AMoD format, its keys only: ``region``, ``demand`` (one record per step
    and pair whose rate is positive at ``decimals``), ``rebTime`` (every pair, at the first hour),
    ``totalAcc`` (every hour the steps cover; none if ``vehicles`` is None). ``price``: (n, n) or (T, n, n).
    ``regions``: the keys that say how many regions there are, instead of ``region`` (e.g. ``nlat``, ``nlon``)."""
    path = Path(path)
    T, n = rate.shape[0], rate.shape[1]
    price = np.broadcast_to(price, rate.shape)
    num = lambda x: (lambda r: int(r) if float(r).is_integer() else r)(round(float(x), decimals))  # noqa: E731
    demand = [{"time_stamp": num(start_minute + step_minutes * t), "origin": i, "destination": j,
               "demand": num(rate[t, i, j]), "travel_time": num(minutes[i, j]), "price": num(price[t, i, j])}
              for t in range(T) for i in range(n) for j in range(n) if round(float(rate[t, i, j]), decimals) > 0]
    reb = [{"time_stamp": start_minute // 60, "origin": i, "destination": j, "reb_time": num(minutes[i, j])}
           for i in range(n) for j in range(n)]
    header = dict(regions) if regions is not None else {"region": list(range(n))}
    if vehicles is not None:
        header["totalAcc"] = [{"hour": start_minute // 60 + h, "acc": int(vehicles)}
                              for h in range(max(1, math.ceil(T * step_minutes / 60)))]
    parts = [f"  {json.dumps(k)}: {json.dumps(v)}" for k, v in header.items()]
    for key, records in (("demand", demand), ("rebTime", reb)):
        parts.append(f"  {json.dumps(key)}: [\n" + ",\n".join(f"    {json.dumps(r)}" for r in records) + "\n  ]")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("{\n" + ",\n".join(parts) + "\n}\n")
    return path


def write_city(name: str, path: str | Path) -> Path:
    """Write the synthetic city ``name`` (a key of ``CITIES``) to ``path``."""
    if name not in CITIES:
        raise KeyError(f"unknown city {name!r}; known: {sorted(CITIES)}")
    return write_public(path, **city_arrays(CITIES[name]), decimals=2)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m ohio_core.routing.cities",
                                description="write the synthetic cities in the public AMoD format to DIR/NAME.json")
    p.add_argument("dir", type=Path, nargs="?", default=Path("config/routing"))
    p.add_argument("--cities", nargs="+", default=list(CITIES), choices=list(CITIES))
    args = p.parse_args(argv)
    for name in args.cities:
        print(write_city(name, args.dir / f"{name}.json"))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

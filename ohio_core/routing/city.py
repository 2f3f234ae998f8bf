"""Which city a routing run uses, recorded so that a model's city can be built again.

A ``CitySpec`` is a synthetic city, ``scenario.synthetic(regions, vehicles, layout, horizon, seed)``,
or, with ``file``, a scenario file in the public AMoD format (``scenario_io.load_scenario``) with its
requests scaled, rate[t, i, j] = demand_scale * sum of the file's records of (t, i, j), and its fleet
set by ``vehicles`` (None: the file's ``totalAcc``, else Little's law on the scaled rates). A file
city keeps the file's own regions, horizon and step.

``record(scenario)`` is what ``result.json`` and every model's sidecar store (``meta["scenario"]``):
the city's name, regions, fleet, horizon and demand scale, plus the file's absolute path and
SHA-256 or the synthetic settings. ``recorded_city(record)`` builds that city again with the fleet
recorded, and refuses a file that is gone, damaged, now holds other regions, or has changed since
(its SHA-256). ``check_formulation`` refuses the rebalancing LP's ``transport`` formulation for a
city whose travel times break the triangle inequality.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from pathlib import Path

from controllers.rebalancing import triangle_violation
from ohio_core.routing.scenario import LAYOUTS, Scenario, ScenarioError, synthetic
from ohio_core.routing.scenario_io import load_scenario


@dataclass(frozen=True)
class CitySpec:
    """A synthetic city or a scenario file (module docstring); validated on construction."""

    regions: int = 16
    layout: str = "grid"
    horizon: int = 60
    seed: int = 0
    file: str | None = None
    demand_scale: float = 1.0
    vehicles: int | None = None

    def __post_init__(self):
        scale = self.demand_scale
        if isinstance(scale, bool) or not isinstance(scale, (int, float)) or not math.isfinite(scale) or scale <= 0:
            raise ScenarioError(f"demand_scale must be a finite number > 0, got {scale!r}")
        if self.file is None and scale != 1.0:
            raise ScenarioError("demand_scale scales a scenario file's requests: give a scenario file")
        if self.vehicles is not None and (isinstance(self.vehicles, bool) or not isinstance(self.vehicles, int)
                                          or self.vehicles < 1):
            raise ScenarioError(f"vehicles must be an integer >= 1, got {self.vehicles!r}")
        if self.file is None:
            if self.layout not in LAYOUTS:
                raise ScenarioError(f"unknown layout {self.layout!r}; expected one of {LAYOUTS}")
            for name in ("regions", "horizon"):
                if int(getattr(self, name)) < (2 if name == "regions" else 1):
                    raise ScenarioError(f"{name} must be >= {2 if name == 'regions' else 1}, "
                                        f"got {getattr(self, name)}")

    def build(self) -> Scenario:
        """The city: synthetic, or the file loaded (a ``ScenarioError`` naming the file if it cannot be)."""
        if self.file is None:
            return synthetic(int(self.regions), vehicles=self.vehicles, layout=self.layout,
                             horizon=int(self.horizon), seed=int(self.seed))
        return load_scenario(self.file, vehicles=self.vehicles, demand_scale=float(self.demand_scale))

    def record(self, scenario: Scenario) -> dict:
        """What ``result.json`` and a model's sidecar store of the city ``scenario`` built from this spec."""
        out = {"name": scenario.name, "regions": int(scenario.regions), "vehicles": int(scenario.vehicles),
               "horizon": int(scenario.horizon), "demand_scale": float(self.demand_scale)}
        if self.file is not None:
            return {**out, "file": str(Path(self.file).resolve()), "sha256": file_sha256(self.file)}
        return {**out, "layout": self.layout, "seed": int(self.seed)}


def file_sha256(path) -> str:
    """SHA-256 of the file's bytes, hex."""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def spec_of_record(record: dict, regions: int | None = None) -> CitySpec:
    """The spec a ``CitySpec.record`` came from; a record without ``regions`` (older sidecars) takes
    ``regions``, and settings it lacks take the routing experiment's defaults."""
    vehicles = record.get("vehicles")
    vehicles = None if vehicles is None else int(vehicles)
    if record.get("file"):
        return CitySpec(file=str(record["file"]), demand_scale=float(record.get("demand_scale", 1.0)),
                        vehicles=vehicles)
    return CitySpec(regions=int(record.get("regions", regions if regions is not None else 16)),
                    layout=record.get("layout", "grid"), horizon=int(record.get("horizon", 60)),
                    seed=int(record.get("seed", 0)), vehicles=vehicles)


def recorded_city(record: dict, regions: int | None = None) -> Scenario:
    """The city of a record (``spec_of_record``); a ``ScenarioError`` when its file is gone or damaged,
    when the city no longer has the regions recorded, or when the file's bytes changed since."""
    spec = spec_of_record(record, regions)
    try:
        scenario = spec.build()
    except ScenarioError as exc:
        raise ScenarioError(f"the city in the sidecar: {exc}") from None
    want = record.get("regions", regions)
    if want is not None and scenario.regions != int(want):
        raise ScenarioError(f"the city in the sidecar: {spec.file or scenario.name} now has {scenario.regions} "
                            f"regions, not the {int(want)} recorded")
    if spec.file is not None and record.get("sha256") and file_sha256(spec.file) != record["sha256"]:
        raise ScenarioError(f"the city in the sidecar: {spec.file} has changed since it was recorded "
                            "(its SHA-256 differs)")
    return scenario


def check_formulation(scenario: Scenario, formulation: str, source: str | None = None) -> None:
    """A ``ScenarioError`` (naming ``source``, default the city's name) when ``formulation`` is ``transport``
    and the travel times break t_ij <= t_ik + t_kj, which it needs (``controllers.rebalancing``)."""
    bad = triangle_violation(scenario.travel_time) if formulation == "transport" else None
    if bad is not None:
        i, k, j = bad
        t = scenario.travel_time
        raise ScenarioError(f"{source or scenario.name}: travel times break the triangle inequality (t({i}, {j}) = "
                            f"{t[i, j]} > t({i}, {k}) + t({k}, {j}) = {t[i, k] + t[k, j]} steps), which the LP "
                            "formulation 'transport' needs: use 'edges' (the default)")

"""Benchmark of the inverse problems on simulated segments with known goals.

The segments are simulated once per (controller, count, k, seed) and cached as .npz under the
output folder; timing covers the whole inverse (controller terms for every segment included),
best of 3 runs for the fast methods after a warm-up, as ``timeit`` does. State matching reads the
states only (no torques), on the same segments.
"""

from __future__ import annotations

import multiprocessing
import time
from pathlib import Path

import numpy as np

from controllers.config import OSCConfig
from controllers.osc import OSC
from controllers.qp import QP
from controllers.robot import ArmModel
from ohio_core.inverse import Segments, invert
from ohio_core.inverse.synthetic import SyntheticSegments, recovery, simulate_segments

TARGETS = {"analytical": 100_000.0, "numerical": 1_000.0}


def _simulate_chunk(args) -> SyntheticSegments:
    kind, n, k, seed, velocity_std = args
    model = ArmModel()
    # the OSC's law, which the inverses invert (the joint-limit filter acts on some random states)
    ctl = OSC(model, OSCConfig(joint_limits=False, singularity_damping=0.0)) if kind == "osc" else QP(model)
    return simulate_segments(ctl, n, k=k, seed=seed, velocity_std=velocity_std)


def synthetic(kind: str, n: int, k: int, seed: int, velocity_std: float, cache: Path | None,
              workers: int = 2) -> SyntheticSegments:
    path = cache / f"segments_{kind}_n{n}_k{k}_seed{seed}_v{velocity_std:g}.npz" if cache else None
    if path is not None and path.is_file():
        z = np.load(path)
        return SyntheticSegments(Segments(z["q"], z["qd"], z["tau"], z["q_next"], z["qd_next"]),
                                 z["goal_p"], z["goal_R"], z["action"], z["saturated"])
    sizes = np.diff(np.linspace(0, n, workers + 1).astype(int))
    jobs = [(kind, int(s), k, seed * 1000 + i, velocity_std) for i, s in enumerate(sizes) if s > 0]
    with multiprocessing.get_context("fork").Pool(len(jobs)) as pool:
        parts = pool.map(_simulate_chunk, jobs)
    cat = lambda get: np.concatenate([get(p) for p in parts])  # noqa: E731
    data = SyntheticSegments(
        Segments(cat(lambda p: p.segments.q), cat(lambda p: p.segments.qd), cat(lambda p: p.segments.tau),
                 cat(lambda p: p.segments.q_next), cat(lambda p: p.segments.qd_next)),
        cat(lambda p: p.goal_p), cat(lambda p: p.goal_R), cat(lambda p: p.action), cat(lambda p: p.saturated))
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        s = data.segments
        np.savez(path, q=s.q, qd=s.qd, tau=s.tau, q_next=s.q_next, qd_next=s.qd_next, goal_p=data.goal_p,
                 goal_R=data.goal_R, action=data.action, saturated=data.saturated)
    return data


def _measure(method: str, data: SyntheticSegments, controller, n: int, workers: int, repeats: int = 1,
             **options) -> dict:
    """Best wall time of ``repeats`` runs over the first n segments, after a small warm-up run."""
    seg = data.segments.take(slice(0, n))
    invert(method, seg.take(slice(0, min(n, 64))), controller, **options)
    seconds = np.inf
    for _ in range(repeats):
        t0 = time.perf_counter()
        res = invert(method, seg, controller, workers=workers, **options)
        seconds = min(seconds, time.perf_counter() - t0)
    _, _, rec = recovery(res, data.goal_p[:n], data.goal_R[:n])
    sat = data.saturated[:n]
    return {"segments": n, "seconds": seconds, "segments_per_s": n / seconds, "recovery_rate": float(rec.mean()),
            "recovery_rate_saturated": float(rec[sat.any((1, 2))].mean()) if sat.any() else None,
            "ok_rate": float(res.ok.mean()), "workers": workers}


def run(segments: int = 100_000, k: int = 5, seed: int = 0, velocity_std: float = 1.0, cem_segments: int = 2_000,
        qp_segments: int = 5_000, workers: int = 2, cache: Path | None = Path("out/bench"),
        state_matching_segments: int = 2_000) -> dict:
    model = ArmModel()
    osc_data = synthetic("osc", segments, k, seed, velocity_std, cache, workers)
    qp_data = synthetic("qp", qp_segments, k, seed, velocity_std, cache, workers)
    osc, qp = OSC(model, OSCConfig(joint_limits=False, singularity_damping=0.0)), QP(model)
    methods = {
        "analytical": _measure("analytical", osc_data, osc, segments, workers, repeats=3),
        "numerical": _measure("numerical", osc_data, osc, segments, workers, repeats=3),
        "cem": _measure("cem", osc_data, osc, min(cem_segments, segments), workers),
        "state_matching": _measure("state_matching", osc_data, osc, min(state_matching_segments, segments), workers),
        "qp": _measure("qp", qp_data, qp, qp_segments, workers),
    }
    return {"methods": methods, "k": k, "velocity_std": velocity_std,
            "saturated_entries": float(osc_data.saturated.mean()),
            "segments_with_saturation": float(osc_data.saturated.any((1, 2)).mean())}

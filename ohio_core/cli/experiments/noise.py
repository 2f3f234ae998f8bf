"""``ohio experiment noise``."""

from __future__ import annotations

import argparse

from ohio_core.cli.experiments.common import (build, json_arg, out_arg, out_dir, report, task_arg, training_args,
                                              workers_arg)
from ohio_core.experiments import noise
from ohio_core.experiments.noise import NoiseConfig


def add_parser(ex) -> None:
    d = NoiseConfig()
    n = ex.add_parser("noise", help="stochastic low level: goal recovery and policies vs torque noise",
                      description="Torque noise eps ~ N(0, (f tau_max)^2) per control period on the original OSC. "
                                  "Recovery of known goals by the analytical, numerical and maximum-likelihood (ml) "
                                  "inverses per noise level f, then policies trained on data relabeled at the "
                                  "--bc-levels, evaluated under the deployment controller without noise.")
    task_arg(n, default=d.task)
    n.add_argument("--levels", type=float, nargs="+", default=list(d.levels), help="recovery noise fractions f")
    n.add_argument("--segments", type=int, default=d.segments, help="recovery segments per level")
    n.add_argument("--action-scale", type=float, default=d.action_scale,
                   help="recovery goals: uniform normalized actions times this")
    n.add_argument("--velocity-std", type=float, default=d.velocity_std,
                   help="recovery start states: joint velocity std, rad/s (2.5 saturates many torques)")
    n.add_argument("--bc-levels", type=float, nargs="*", default=list(d.bc_levels),
                   help="noise fractions with trained policies (none: recovery only)")
    n.add_argument("--episodes", type=int, default=d.episodes, help="behavior episodes per policy level")
    n.add_argument("--deploy", default=d.deploy, help="deployment config (original, damping3, ...)")
    n.add_argument("--censored", choices=["hinge", "exclude"], default=d.censored,
                   help="ml: saturated entries as a one-sided residual (hinge) or left out")
    training_args(n, defaults=d)
    workers_arg(n, defaults=d)
    out_arg(n, "noise")
    json_arg(n)
    n.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    cfg = build("noise", noise.NoiseConfig,
                task=args.task, levels=tuple(args.levels), segments=args.segments,
                action_scale=args.action_scale, velocity_std=args.velocity_std,
                bc_levels=tuple(args.bc_levels), episodes=args.episodes, deploy=args.deploy,
                censored=args.censored, algo=args.algo, steps=args.steps,
                eval_episodes=args.eval_episodes, seed=args.seed, workers=args.workers)
    out = out_dir(args, "noise")
    result = noise.run(cfg, out)
    tables = [(f"\nGoal recovery against the true goals, {cfg.segments} segments per level (k = {cfg.k}); "
               f"noise std = f * torque limit per joint:", noise.table_rows(result))]
    if result["scores"]:
        tables.append((f"\nNormalized score, mean +- s.e. over {cfg.eval_episodes} episodes (success rate); task "
                       f"{cfg.task}, {cfg.algo}, data from the noisy original OSC, deployed under {cfg.deploy} "
                       f"without noise:", noise.score_rows(result)))
    return report(tables,
                  f"\nwrote {out}/result.json, recovery.png and scores.png ({result['seconds']['total']:.0f} s)",
                  noise.summary_json(result), args.json)

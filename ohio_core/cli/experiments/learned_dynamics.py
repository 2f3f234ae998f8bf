"""``ohio experiment learned-dynamics``."""

from __future__ import annotations

import argparse

from ohio_core.cli.experiments.common import arm_args, build, out_dir, report
from ohio_core.experiments import learned_dynamics
from ohio_core.experiments.learned_dynamics import PLANTS, LearnedDynamicsConfig


def add_parser(ex) -> None:
    p = ex.add_parser("learned-dynamics", help="state matching with a learned vs the known dynamics model",
                      description="Per simulated plant (nominal; friction: joint damping and friction the "
                                  "Pinocchio model lacks), learn the one-period dynamics from the data (validation "
                                  "on held-out episodes), relabel by state matching with the known and the learned "
                                  "model, compare the goals with the logged ones and score BC on each.")
    arm_args(p, LearnedDynamicsConfig, "learned-dynamics")
    p.add_argument("--plants", nargs="+", choices=PLANTS, default=list(PLANTS))
    p.add_argument("--dynamics-kind", choices=["mlp", "affine"], default=LearnedDynamicsConfig.dynamics_kind)
    p.add_argument("--dynamics-epochs", type=int, default=LearnedDynamicsConfig.dynamics_epochs)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    cfg = build("learned-dynamics", learned_dynamics.LearnedDynamicsConfig,
                task=args.task, plants=tuple(args.plants), episodes=args.episodes, dynamics_kind=args.dynamics_kind,
                dynamics_epochs=args.dynamics_epochs, algo=args.algo, steps=args.steps,
                eval_episodes=args.eval_episodes, seed=args.seed, workers=args.workers)
    out = out_dir(args, "learned-dynamics")
    result = learned_dynamics.run(cfg, out)
    title = ("\nState matching, goal errors against the logged goals (recovered: within 1 mm and 0.01 rad) and "
             f"normalized score, mean +- s.e. over {cfg.eval_episodes} episodes (success rate); task {cfg.task}, "
             f"{cfg.algo}:")
    return report([("\nOne-period prediction error on held-out episodes, learned and known (Pinocchio) model:",
                    learned_dynamics.dynamics_rows(result)), (title, learned_dynamics.table_rows(result))],
                  f"\nwrote {out}/result.json, {out}/dynamics.png and {out}/learned_dynamics.png "
                  f"({result['seconds']['total']:.0f} s)",
                  learned_dynamics.summary_json(result), args.json)

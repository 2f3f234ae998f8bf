"""``ohio experiment finetune [--domain arm|routing|both]``."""

from __future__ import annotations

import argparse
from pathlib import Path

from ohio_core.cli.experiments.common import build, json_arg, report, task_arg
from ohio_core.experiments import finetune
from ohio_core.experiments.finetune import FinetuneExperimentConfig as C


def add_parser(ex) -> None:
    f = ex.add_parser("finetune", help="online fine-tuning of OHIO and the flat policy: scores and violations",
                      description="Train (or reuse) offline OHIO and flat models on a small behavior dataset, "
                                  "fine-tune each online with the same budget, and report the start, minimum and "
                                  "final normalized score and the constraint violations of the exploration "
                                  "(arm: joint position, joint velocity, torque limits; routing: flows above the "
                                  "idle vehicles, negative flows).")
    f.add_argument("--domain", choices=["arm", "routing", "both"], default=C.domain)
    f.add_argument("--algo", choices=["iql", "calql"], default=C.algo)
    f.add_argument("--steps", type=int, default=C.steps, help="online steps per method")
    f.add_argument("--eval-every", type=int, default=C.eval_every)
    f.add_argument("--eval-episodes", type=int, default=C.eval_episodes)
    f.add_argument("--online-ratio", type=float, default=C.online_ratio,
                   help="share of each mini-batch drawn from the online transitions (the rest: offline data)")
    f.add_argument("--seed", type=int, default=0)
    task_arg(f, default=C.task, help="arm task")
    f.add_argument("--controllers", nargs="+", default=list(C.arm_controllers),
                   help="OHIO's arm controllers (default: qp original)")
    f.add_argument("--episodes", type=int, default=C.arm_episodes, help="arm behavior episodes")
    f.add_argument("--offline-steps", type=int, default=C.arm_offline_steps, help="arm offline updates")
    f.add_argument("--horizon", type=int, default=None, help="arm episode length in control periods")
    f.add_argument("--regions", type=int, default=C.regions)
    f.add_argument("--routing-episodes", type=int, default=C.routing_episodes)
    f.add_argument("--routing-offline-steps", type=int, default=C.routing_offline_steps)
    f.add_argument("--out", type=Path, default=Path("out/experiments/finetune"), help="output folder")
    json_arg(f)
    f.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    cfg = build("finetune", finetune.FinetuneExperimentConfig,
                domain=args.domain, algo=args.algo, steps=args.steps, eval_every=args.eval_every,
                eval_episodes=args.eval_episodes, online_ratio=args.online_ratio, seed=args.seed, task=args.task,
                arm_controllers=tuple(args.controllers),
                arm_episodes=args.episodes, arm_offline_steps=args.offline_steps, horizon=args.horizon,
                regions=args.regions, routing_episodes=args.routing_episodes,
                routing_offline_steps=args.routing_offline_steps)
    result = finetune.run(cfg, args.out)
    title = (f"\nOnline fine-tuning, {cfg.steps} steps per method ({cfg.algo}); normalized score (mean +- s.e. over "
             f"{cfg.eval_episodes} episodes) every {cfg.eval_every} steps; violations: exploration control periods "
             f"(arm) or steps (routing) with a violated constraint:")
    plots = ", ".join(f"{args.out}/{d}.png" for d in result["domains"])
    return report([(title, finetune.table_rows(result))],
                  f"\nwrote {args.out}/result.json and {plots} ({result['seconds']:.0f} s)",
                  finetune.summary_json(result), args.json)

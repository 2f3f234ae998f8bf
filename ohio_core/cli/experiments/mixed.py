"""``ohio experiment mixed``."""

from __future__ import annotations

import argparse

from ohio_core.cli.experiments.common import (build, json_arg, out_arg, out_dir, report, task_arg, training_args,
                                              workers_arg)
from ohio_core.experiments import mixed
from ohio_core.experiments.mixed import RELABELINGS, MixedConfig


def add_parser(ex) -> None:
    d = MixedConfig()
    m = ex.add_parser("mixed", help="data mixing OSC, QP and flat-policy parts: per-part vs deployment relabeling",
                      description="Collect parts with the original OSC (kp 150), the QP controller and the flat torque "
                                  "policy; relabel per part with its source controller's inverse where known "
                                  "(source) or everything with the deployment config's inverse (deployment); train "
                                  "and evaluate with the standard and flat baselines under each deployment config.")
    task_arg(m, default=d.task)
    m.add_argument("--episodes", type=int, default=d.episodes, help="behavior episodes over all parts")
    m.add_argument("--shares", type=float, nargs=3, default=list(d.shares), metavar=("OSC", "QP", "FLAT"),
                   help="shares of the episodes per part")
    m.add_argument("--deploy", nargs="+", default=list(d.deploy), help="deployment configs (damping3, qp, ...)")
    m.add_argument("--relabelings", nargs="+", default=list(RELABELINGS), choices=RELABELINGS)
    training_args(m, defaults=d)
    workers_arg(m, defaults=d)
    out_arg(m, "mixed")
    json_arg(m)
    m.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    cfg = build("mixed", mixed.MixedConfig,
                task=args.task, episodes=args.episodes, shares=tuple(args.shares),
                deploy=tuple(args.deploy), relabelings=tuple(args.relabelings), algo=args.algo,
                steps=args.steps, eval_episodes=args.eval_episodes, seed=args.seed, workers=args.workers)
    out = out_dir(args, "mixed")
    result = mixed.run(cfg, out)
    parts = ", ".join(f"{p} {v['episodes']}" for p, v in result["parts"].items())
    title = (f"\nNormalized score, mean +- s.e. over {cfg.eval_episodes} episodes (success rate); task {cfg.task}, "
             f"{cfg.algo}, mixed data ({parts} episodes):")
    return report([(title, mixed.table_rows(result))],
                  f"\nwrote {out}/result.json and {out}/scores.png ({result['seconds']['total']:.0f} s)",
                  mixed.summary_json(result), args.json)

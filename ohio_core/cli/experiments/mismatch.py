"""``ohio experiment mismatch --task {reach,lift} [--json [OUT]]``."""

from __future__ import annotations

import argparse

from ohio_core.cli.experiments.common import (build, json_arg, out_arg, out_dir, report, task_arg, training_args,
                                              workers_arg)
from ohio_core.experiments import mismatch
from ohio_core.experiments.mismatch import MismatchConfig
from ohio_core.learning.algos import ACTION_SCALINGS


def add_parser(ex) -> None:
    m = ex.add_parser("mismatch", help="deploy under changed controllers: OHIO vs standard, flat, naive",
                      description="Collect data with the original OSC (kp 150, damping ratio 1, 0.05 m / 0.5 rad), "
                                  "train every method with the same offline RL algorithm and evaluate each under "
                                  "every changed controller config (ori_scale, kp_ori50, damping3, qp, kp_ori50_wide, "
                                  "damping3_pos_wide).")
    task_arg(m, required=True)
    out_arg(m, "mismatch-TASK")
    m.add_argument("--episodes", type=int, default=MismatchConfig.episodes,
                   help="behavior episodes (expert, noisy0.1, noisy0.3 in equal shares)")
    training_args(m, algo_help="the offline algorithm every method is trained with (default bc: the fastest on a CPU)",
                  defaults=MismatchConfig)
    m.add_argument("--configs", nargs="+", default=None,
                   help="deployment configs (default: every changed one; 'original' also known)")
    m.add_argument("--methods", nargs="+", default=None,
                   help="methods (default: ohio_analytical ohio_numerical standard flat naive; also known: "
                        "ohio_state (state matching), hiro_joint, hiro_ops (a learned low level), expert and "
                        "expert_full_pace (the scripted expert's own closed loop through each config))")
    workers_arg(m, "processes for relabeling, training and evaluation", MismatchConfig)
    m.add_argument("--bags", action="store_true", help="go through rosbag2 bags (collect -> bag -> read)")
    m.add_argument("--action-scaling", choices=ACTION_SCALINGS, default=MismatchConfig.action_scaling,
                   help="minmax: train on each action dimension mapped from the dataset's range onto [-1, 1] "
                        "(inverted when the policy acts)")
    m.add_argument("--train-seed", type=int, default=None,
                   help="seed of the training runs (default: --seed, which also draws the data)")
    m.add_argument("--ignore-observations", nargs="+", default=(), metavar="PART",
                   help="observation parts every policy is blind to, e.g. q (the joint positions)")
    json_arg(m)
    m.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    cfg = build("mismatch", mismatch.MismatchConfig,
                task=args.task, episodes=args.episodes, algo=args.algo, steps=args.steps,
                eval_episodes=args.eval_episodes, seed=args.seed, workers=args.workers, bags=args.bags,
                action_scaling=args.action_scaling, train_seed=args.train_seed,
                ignore_observations=tuple(args.ignore_observations),
                configs=tuple(args.configs) if args.configs else None,
                methods=tuple(args.methods) if args.methods else mismatch.DEFAULT_METHODS)
    out = out_dir(args, f"mismatch-{args.task}")
    result = mismatch.run(cfg, out)
    title = (f"\nNormalized score, mean +- s.e. over {cfg.eval_episodes} episodes (success rate); task {cfg.task}, "
             f"{cfg.algo}, data from the original controller:")
    return report([(title, mismatch.table_rows(result))],
                  f"\nwrote {out}/result.json and {out}/scores.png ({result['seconds']['total']:.0f} s)",
                  mismatch.summary_json(result), args.json)

"""``ohio experiment mismatch --task {reach,lift} [--json [OUT]]``."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from ohio_core.cli.output import emit_json, table
from ohio_core.experiments.mismatch import MismatchConfig
from ohio_core.learning.algos import ALGOS


def add_parser(sub) -> None:
    p = sub.add_parser("experiment", help="experiments that measure OHIO against baselines")
    ex = p.add_subparsers(dest="experiment", required=True, metavar="EXPERIMENT")
    m = ex.add_parser("mismatch", help="deploy under changed controllers: OHIO vs standard, flat, naive",
                      description="Collect data with the original OSC (kp 150, damping ratio 1, 0.05 m / 0.5 rad), "
                                  "train every method with the same offline RL algorithm and evaluate each under "
                                  "every changed controller config (ori_scale, kp_ori50, damping3, qp).")
    m.add_argument("--task", choices=["reach", "lift"], required=True)
    m.add_argument("--out", type=Path, default=None, help="output folder (default out/experiments/mismatch-TASK)")
    m.add_argument("--episodes", type=int, default=MismatchConfig.episodes,
                   help="behavior episodes (expert, noisy0.1, noisy0.3 in equal shares)")
    m.add_argument("--algo", choices=ALGOS, default=MismatchConfig.algo,
                   help="the offline algorithm every method is trained with (default bc: the fastest on a CPU)")
    m.add_argument("--steps", type=int, default=None, help="updates per policy (default: per task)")
    m.add_argument("--eval-episodes", type=int, default=20)
    m.add_argument("--seed", type=int, default=0)
    m.add_argument("--configs", nargs="+", default=None,
                   help="deployment configs (default: ori_scale kp_ori50 damping3 qp; 'original' also known)")
    m.add_argument("--methods", nargs="+", default=None,
                   help="methods (default: ohio_analytical ohio_numerical standard flat naive)")
    m.add_argument("--workers", type=int, default=2, help="processes for relabeling, training and evaluation")
    m.add_argument("--bags", action="store_true", help="go through rosbag2 bags (collect -> bag -> read)")
    m.add_argument("--json", nargs="?", type=Path, const=Path("-"), default=None, metavar="OUT",
                   help="end with the result as one JSON line; with OUT, also write it there")
    m.set_defaults(func=run_mismatch)


def run_mismatch(args: argparse.Namespace) -> int:
    from ohio_core.experiments import mismatch

    try:
        cfg = mismatch.MismatchConfig(
            task=args.task, episodes=args.episodes, algo=args.algo, steps=args.steps,
            eval_episodes=args.eval_episodes, seed=args.seed, workers=args.workers, bags=args.bags,
            configs=tuple(args.configs) if args.configs else None,
            methods=tuple(args.methods) if args.methods else mismatch.METHODS)
    except ValueError as exc:
        raise SystemExit(f"ohio experiment mismatch: {exc}") from None
    out = args.out or Path("out/experiments") / f"mismatch-{args.task}"
    result = mismatch.run(cfg, out)
    rows, header = mismatch.table_rows(result)
    print(f"\nNormalized score, mean +- s.e. over {cfg.eval_episodes} episodes (success rate); task {cfg.task}, "
          f"{cfg.algo}, data from the original controller:")
    print(table(rows, header))
    print(f"\nwrote {out}/result.json and {out}/scores.png ({result['seconds']['total']:.0f} s)")
    summary = mismatch.summary_json(result)
    if args.json is not None and str(args.json) != "-":
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(summary, indent=1))
    if args.json is not None:
        emit_json(summary)
    return 0

"""``ohio demo``: the main job, end to end on a 2-core CPU."""

from __future__ import annotations

import argparse
from pathlib import Path

from ohio_core.cli.output import emit_json, table


def add_parser(sub) -> None:
    p = sub.add_parser("demo", help="run the main job end to end and write plots")
    p.add_argument("--out", type=Path, default=Path("out/demo"), help="output folder")
    p.add_argument("--goals", type=int, default=8, help="step goals per controller")
    p.add_argument("--episodes", type=int, default=5, help="expert episodes per task and controller")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", action="store_true", help="end with one JSON object")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ohio_core.demo import tracking

    if args.goals < 1 or args.episodes < 1:
        raise SystemExit("ohio demo: --goals and --episodes must be >= 1")
    result = tracking.run(args.out, n_goals=args.goals, n_episodes=args.episodes, seed=args.seed)
    rows = [[name, r["pos_err_mm_final_max"], r["ori_err_rad_final_max"], r["settle_s_max"], r["max_torque_ratio"]]
            for name, r in result["tracking"].items()]
    print("\nStep goals (up to 15 cm, 0.5 rad) from home, 2 s at 50 Hz:")
    print(table(rows, ["controller", "final pos err max (mm)", "final ori err max (rad)",
                       "settle time max (s)", "max |tau|/limit"]))
    rows = [[task, ctl, r["success_rate"], r["return_mean"]]
            for task, per in result["experts"].items() for ctl, r in per.items()]
    print("\nScripted experts through each controller:")
    print(table(rows, ["task", "controller", "success rate", "mean return"]))
    print(f"\nwritten to {args.out}/: " + ", ".join(sorted(result["files"])))
    if args.json:
        emit_json(result)
    return 0

"""``ohio demo``: the main job, end to end on a 2-core CPU in at most 10 minutes."""

from __future__ import annotations

import argparse
from pathlib import Path

from ohio_core.cli.output import emit_json, table
from ohio_core.demo import main_job
from ohio_core.envs.arm.tasks import TASKS
from ohio_core.experiments import mismatch
from ohio_core.experiments.configs import CHANGED
from ohio_core.learning.algos import ACTION_SCALINGS, ALGOS


def add_parser(sub) -> None:
    d = main_job.DEFAULTS
    p = sub.add_parser("demo", help="run the main job end to end and write plots and a video",
                       description="Collect behavior data with the original OSC into rosbag2 bags, relabel them "
                                   "for a changed controller (OHIO), train OHIO, standard and flat offline RL with "
                                   "d3rlpy, evaluate all three under the changed controller, and write the table, "
                                   "plots and a side-by-side video of OHIO and standard (default: lift under "
                                   "kp_ori50_wide, where standard offline RL collapses).")
    p.add_argument("--out", type=Path, default=Path("out/demo"), help="output folder")
    p.add_argument("--task", choices=list(TASKS), default=d["task"])
    p.add_argument("--config", default=d["config"], choices=list(CHANGED), help="the changed deployment controller")
    p.add_argument("--episodes", type=int, default=d["episodes"], help="behavior episodes")
    p.add_argument("--algo", choices=list(ALGOS), default="bc", help="offline algorithm")
    p.add_argument("--steps", type=int, default=d["steps"], help="updates per policy")
    p.add_argument("--action-scaling", choices=list(ACTION_SCALINGS), default=d["action_scaling"],
                   help="minmax: train on each action dimension mapped from the dataset's range onto [-1, 1]")
    p.add_argument("--eval-episodes", type=int, default=20)
    p.add_argument("--goals", type=int, default=4, help="step goals in the controller check")
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", action="store_true", help="end with one JSON object (the experiment's shape)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if args.goals < 1:
        raise SystemExit("ohio demo: --goals must be >= 1")
    try:
        cfg = mismatch.MismatchConfig(task=args.task, episodes=args.episodes, algo=args.algo, steps=args.steps,
                                      eval_episodes=args.eval_episodes, seed=args.seed, configs=(args.config,),
                                      methods=main_job.DEMO_METHODS, workers=args.workers, bags=True,
                                      action_scaling=args.action_scaling)
    except ValueError as exc:
        raise SystemExit(f"ohio demo: {exc}") from None
    res = main_job.run(args.out, cfg, goals=args.goals)
    rows = [[name, r["pos_err_mm_final_max"], r["settle_s_max"], r["max_torque_ratio"]]
            for name, r in res["summary"]["tracking"].items()]
    print("\nController check, step goals from home (2 s at 50 Hz):")
    print(table(rows, ["controller", "final pos err max (mm)", "settle time max (s)", "max |tau|/limit"]))
    rows, header = mismatch.table_rows(res["result"])
    print(f"\nNormalized score under the changed controller {args.config!r}, mean +- s.e. over "
          f"{cfg.eval_episodes} episodes (success rate); task {cfg.task}, data from the original OSC:")
    print(table(rows, header))
    print(f"\nwritten to {args.out}/: " + ", ".join(res["files"]) + f" ({res['result']['seconds']['total']:.0f} s)")
    if args.json:
        emit_json(mismatch.summary_json(res["result"]))
    return 0

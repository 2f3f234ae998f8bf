"""``ohio collect``: run a behavior policy in the simulator and record a rosbag2 bag."""

from __future__ import annotations

import argparse
from pathlib import Path

from controllers.config import ConfigError
from controllers.robot import ArmModel
from ohio_core.cli.output import emit_json, table
from ohio_core.cli.robot import add_robot_argument, robot_of
from ohio_core.data.bags import BagError
from ohio_core.data.collect import collect_bag
from ohio_core.data.topics import TopicMap, TopicMapError
from ohio_core.envs.arm.tasks import TASKS
from ohio_core.policies.behavior import POLICY_NAMES, noise_of


def add_parser(sub) -> None:
    p = sub.add_parser("collect", help="run behavior policies in the simulator and write a rosbag2 bag",
                       description="Run a behavior policy on an arm task and record what a robot would "
                                   "log (joint states, effort commands, task state, goals) into one "
                                   "rosbag2 bag (the folder --out).")
    p.add_argument("--task", choices=list(TASKS), required=True)
    p.add_argument("--policy", required=True, metavar="NAME",
                   help=f"behavior policy: {', '.join(POLICY_NAMES)} (or noisy<std>)")
    p.add_argument("--controller", type=Path, default=None, metavar="CONFIG.yaml",
                   help="controller config (type osc or qp; default: the OSC defaults)")
    add_robot_argument(p)
    p.add_argument("--episodes", type=int, required=True)
    p.add_argument("--out", type=Path, required=True, help="bag folder to create (must not exist, or be empty)")
    p.add_argument("--storage", choices=["mcap", "sqlite3"], default="mcap")
    p.add_argument("--compress", choices=["auto", "zstd", "none"], default="auto",
                   help="zstd compression (auto: MCAP chunks compressed, sqlite3 not)")
    p.add_argument("--topics", type=Path, default=None, metavar="TOPICS.yaml",
                   help="topic map to write with (default: this stack's, config/topics/ohio.yaml)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--torque-noise", type=float, default=0.0, metavar="F",
                   help="stochastic low level: torque noise std as a fraction F of the torque limits, per control "
                        "period (goal-level policies; the bag logs the applied noisy torque)")
    p.add_argument("--k", type=int, default=5, help="control periods per high-level goal")
    p.add_argument("--horizon", type=int, default=None, help="control steps per episode (default: the task's)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--json", action="store_true", help="end with one JSON object")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if args.episodes < 1:
        raise SystemExit("ohio collect: --episodes must be >= 1")
    if args.k < 1 or (args.horizon is not None and args.horizon < args.k):
        raise SystemExit("ohio collect: --k must be >= 1 and --horizon at least --k")
    try:
        noise_of(args.policy)
    except ValueError as exc:
        raise SystemExit(f"ohio collect: --policy: {exc}") from None
    robot = robot_of(args, "ohio collect")
    try:
        topic_map = TopicMap.load(args.topics) if args.topics else None
        model = ArmModel(robot)
        compress = {"auto": None, "zstd": True, "none": False}[args.compress]
        summary = collect_bag(args.out, args.task, args.policy, args.controller, args.episodes, args.seed,
                              args.k, args.horizon, args.storage, topic_map, progress=not args.no_progress,
                              compress=compress, torque_noise=args.torque_noise, model=model)
    except (BagError, ConfigError, TopicMapError, ValueError) as exc:
        raise SystemExit(f"ohio collect: {exc}") from None
    rows = [["episodes", summary["episodes"]], ["control steps", summary["control_steps"]],
            ["success rate", summary["success_rate"]], ["mean return", summary["return_mean"]],
            ["bag size (bytes)", summary["bytes"]]]
    print(table(rows, ["", "value"]))
    print()
    print(table([[t, n] for t, n in summary["messages"].items()], ["topic", "messages"]))
    if len(summary["policies"]) > 1 or args.policy == "mix":
        print("episodes per policy: " + ", ".join(f"{k} {v}" for k, v in sorted(summary["policies"].items())))
    print(f"\nwrote {summary['bag']} ({summary['storage']}; robot {robot.name}, task {args.task}, policy {args.policy}, "
          f"controller {summary['controller']}, seed {args.seed}, k {summary['k']}, horizon {summary['horizon']})")
    if args.json:
        emit_json(summary)
    return 0

"""``ohio relabel BAGS... --controller CONFIG.yaml --k 5 --method M --out DATASET``."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from controllers.base import controller_config
from controllers.description import DEFAULT_ROBOT, load_robot
from ohio_core.cli.output import emit_json, print_report
from ohio_core.cli.robot import add_robot_argument, robot_of
from ohio_core.data.bag_common import BagError
from ohio_core.data.rows_common import ReadOptions
from ohio_core.data.topics import PRESETS, TopicMap, TopicMapError
from ohio_core.envs.arm.tasks import TASKS
from ohio_core.inverse import METHODS
from ohio_core.pipeline.bag_relabel import RelabelConfig, RelabelError, expand_bags, relabel_bags
from ohio_core.pipeline.dataset import save_dataset
from ohio_core.pipeline.parallel import ParallelError


def add_relabel_arguments(p: argparse.ArgumentParser) -> None:
    """The options ``ohio relabel`` and ``ohio pipeline`` share."""
    p.add_argument("bags", nargs="+", type=Path,
                   help="rosbag2 bags (folders, .mcap or .db3 files), ROS 1 .bag files, or folders to search for bags")
    p.add_argument("--controller", type=Path, default=None,
                   help="DEPLOYMENT controller config (YAML, osc or qp); default: the OSC defaults")
    add_robot_argument(p)
    p.add_argument("--k", type=int, default=5,
                   help="control periods per high-level step (a bag that records its k, as those of `ohio collect` "
                        "do, is refused for another)")
    p.add_argument("--force-k", action="store_true", help="relabel with --k even where a bag records another k")
    p.add_argument("--method", default="auto", choices=list(METHODS),
                   help="inverse method (auto: closed form, numerical where that is ill-posed; state matching "
                        "for bags without torques; ml: maximum likelihood under --torque-sigma)")
    p.add_argument("--torque-sigma", type=float, nargs="+", default=None, metavar="S",
                   help="--method ml: the logged torques' noise standard deviation (N m), one value or one per "
                        "joint")
    p.add_argument("--topics", default=None,
                   help=f"topic map: a YAML file or one of {sorted(PRESETS)} (as in config/topics/; default: ohio, "
                        "this stack's topics)")
    p.add_argument("--max-residual", type=float, default=float("inf"), metavar="N_M",
                   help="drop segments whose residual is above this: the RMS over the k periods and n joints of the "
                        "deployment controller's torque for the recovered goal minus the logged torque (N m); "
                        "default: keep every solved segment (for another controller than the one that recorded "
                        "the bag, the residual measures how far apart the two are)")
    p.add_argument("--max-gap", type=float, default=None,
                   help="logs without task state: a longer gap (s) between joint states ends a piece (default 0.1)")
    p.add_argument("--out-of-range", choices=["clip", "drop"], default="clip",
                   help="goals outside the deployment controller's range: clip to it (counted) or drop the segment")
    p.add_argument("--joint-limit-margin", type=float, default=0.05,
                   help="drop segments whose joints are beyond the URDF limits by more than this (rad)")
    p.add_argument("--task", choices=list(TASKS), default=None,
                   help="the task the bags record (default: read from bags written by `ohio collect`)")
    p.add_argument("--workers", type=int, default=None, help="processes, one bag each (default: one per CPU)")
    p.add_argument("--ray", metavar="ADDRESS", default=None,
                   help="run the per-bag jobs on an existing Ray cluster (e.g. 10.0.0.5:6379) instead of "
                        "local processes")
    p.add_argument("--skip-bad", action="store_true",
                   help="report and skip bags that cannot be read instead of stopping at the first")


def add_parser(sub) -> None:
    p = sub.add_parser("relabel", help="recover high-level goals from bags and write a d3rlpy dataset",
                       description="Recover the goals the deployment controller would have needed from recorded "
                                   "bags (one streaming job per bag, in parallel) and write a d3rlpy dataset with "
                                   "a JSON sidecar holding the account of the run.")
    add_relabel_arguments(p)
    p.add_argument("--out", type=Path, required=True, help="dataset path (writes OUT.h5 and OUT.json)")
    p.add_argument("--json", action="store_true", help="end with one JSON object")
    p.set_defaults(func=run)


def relabel_config(args: argparse.Namespace, prog: str):
    """``RelabelConfig`` from the shared options; bad values exit with a message naming them."""
    robot = robot_of(args, prog)
    try:
        config = controller_config(args.controller)
        if args.topics is None:
            topic_map = TopicMap.preset("ohio").for_robot(robot)
        elif args.topics in PRESETS:
            topic_map = TopicMap.preset(args.topics)
        else:
            topic_map = TopicMap.load(args.topics)
        read = ReadOptions(control_period=config.control_period,
                           **({"max_gap": args.max_gap} if args.max_gap is not None else {}))
        return RelabelConfig(controller=config, k=args.k, method=args.method, max_residual=args.max_residual,
                             out_of_range=args.out_of_range, joint_limit_margin=args.joint_limit_margin,
                             topic_map=topic_map, read=read, task=args.task,
                             torque_sigma=None if args.torque_sigma is None else tuple(args.torque_sigma),
                             force_k=args.force_k, robot=args.robot, recorded_gravity=args.topics is None)
    except (TopicMapError, ValueError, FileNotFoundError) as exc:
        raise SystemExit(f"{prog}: {exc}") from None


def relabel_run(args: argparse.Namespace, prog: str):
    """Relabel the bags of ``args``; prints the account; exits with a message on errors."""
    config = relabel_config(args, prog)
    if args.workers is not None and args.workers < 1:
        raise SystemExit(f"{prog}: --workers must be >= 1")
    try:
        bags = expand_bags(args.bags)
        run = relabel_bags(bags, config, workers=args.workers, ray_address=args.ray, skip_bad=args.skip_bad)
    except (BagError, RelabelError, ParallelError) as exc:
        raise SystemExit(f"{prog}: {exc}") from None
    print_report(run.account.report())
    if run.data is None:
        raise SystemExit(f"{prog}: no transitions to write: every segment was dropped or every bag skipped "
                         f"(see the account above)")
    if run.task is None:
        raise SystemExit(f"{prog}: the bags do not say which task they record; pass --task")
    return run, config, bags


def run(args: argparse.Namespace) -> int:
    t0 = time.perf_counter()
    result, config, bags = relabel_run(args, "ohio relabel")
    h5, js = save_dataset(result.data, args.out, {
        "task": result.task, "level": "goal", "controller": config.controller.to_dict(), "k": config.k,
        "robot": load_robot(config.robot).name,
        "method": result.account.method, "source_bags": [str(b) for b in bags],
        "command": "ohio relabel " + " ".join(str(b) for b in args.bags) + f" --k {args.k} --method {args.method}"
        + (" --force-k" if args.force_k else "") + (f" --topics {args.topics}" if args.topics else "")
        + (f" --robot {args.robot}" if args.robot != DEFAULT_ROBOT else "")
        + f" --out {args.out}"})
    print(f"wrote {h5} and {js} in {time.perf_counter() - t0:.1f} s")
    if args.json:
        emit_json({"dataset": str(h5), "sidecar": str(js),
                   **{k: v for k, v in result.account.to_dict().items() if k != "per_bag"}})
    return 0

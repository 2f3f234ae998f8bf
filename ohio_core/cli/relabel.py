"""``ohio relabel BAGS... --controller CONFIG.yaml --k 5 --method M --out DATASET``."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from ohio_core.cli.output import emit_json, table


def add_parser(sub) -> None:
    p = sub.add_parser("relabel", help="recover high-level goals from bags and write a d3rlpy dataset")
    p.add_argument("bags", nargs="+", type=Path, help="rosbag2 folders (or .mcap/.db3 files)")
    p.add_argument("--controller", type=Path, default=None,
                   help="DEPLOYMENT controller config (YAML, osc or qp); default: the OSC defaults")
    p.add_argument("--k", type=int, default=5, help="control periods per high-level step")
    p.add_argument("--method", default="auto",
                   choices=["auto", "analytical", "numerical", "cem", "qp", "naive", "state_matching"],
                   help="inverse method (auto: closed form, numerical where that is ill-posed)")
    p.add_argument("--topics", type=Path, default=None, help="topic map (YAML); default: this stack's topics")
    p.add_argument("--max-residual", type=float, default=1.0, help="drop segments above this RMS torque residual (N m)")
    p.add_argument("--workers", type=int, default=1, help="processes for the inverse")
    p.add_argument("--task", choices=["reach", "lift"], default=None,
                   help="the task the bags record (default: read from bags written by `ohio collect`)")
    p.add_argument("--out", type=Path, required=True, help="dataset path (writes OUT.h5 and OUT.json)")
    p.add_argument("--json", action="store_true", help="end with one JSON object")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ohio_core.data.bags import BagError, read_bag
    from ohio_core.data.collect import controller_config, make_controller
    from ohio_core.data.topics import TopicMap
    from ohio_core.data.trajectory import Trajectories
    from ohio_core.pipeline.dataset import save_dataset
    from ohio_core.pipeline.relabel import relabel

    t0 = time.perf_counter()
    config = controller_config(args.controller)
    controller = make_controller(config)
    topic_map = TopicMap.load(args.topics) if args.topics else None
    parts, per_bag, tasks = [], {}, set()
    offset = 0
    for bag in args.bags:
        try:
            traj = read_bag(bag, topic_map)
        except BagError as exc:
            raise SystemExit(f"ohio relabel: {exc}") from None
        traj.episode = traj.episode + offset        # episode ids unique across bags
        offset = int(traj.episode.max()) + 1 if len(traj) else offset
        per_bag[str(bag)] = traj.meta.get("account", {})
        tasks.add(args.task or _recorded_task(traj, bag))
        parts.append(traj)
    if len(tasks) != 1:
        raise SystemExit(f"ohio relabel: the bags record different tasks {sorted(tasks)}; relabel them separately")
    traj = Trajectories.concatenate(parts)
    data = relabel(traj, controller, args.k, args.method, max_residual=args.max_residual, workers=args.workers)
    h5, js = save_dataset(data, args.out, {
        "task": tasks.pop(), "level": "goal", "controller": config.to_dict(), "k": args.k, "method": args.method, "source_bags": [str(b) for b in args.bags],
        "bag_accounts": per_bag, "command": "ohio relabel " + " ".join(str(b) for b in args.bags)
        + f" --k {args.k} --method {args.method} --out {args.out}"})
    acc = data.account
    print(table([[k, v] for k, v in (
        ("bags", len(args.bags)), ("control steps read", acc["control_steps_in"]), ("episodes", acc["episodes_in"]),
        ("segments built", acc["segments_built"]), ("segments written", acc["segments_written"]),
        ("actions clipped to [-1, 1]", acc["actions_clipped"]), ("episode pieces ended by a drop", acc["pieces_ended_by_drop"]),
    )] + [[f"dropped: {r}", n] for r, n in {**acc["segments_dropped"], **acc["rows_not_in_segments"]}.items()],
        ["account", "count"]))
    r = acc["residual_n_m"]
    if r.get("count"):
        print(f"residual (N m): median {r['median']:.3g}, p95 {r['p95']:.3g}, max {r['max']:.3g}")
    print(f"wrote {h5} and {js} in {time.perf_counter() - t0:.1f} s")
    if args.json:
        emit_json({"dataset": str(h5), "sidecar": str(js), **acc})
    return 0


def _recorded_task(traj, bag: Path) -> str:
    """The task named by ``ohio collect`` in the bag's metadata."""
    import json

    info = traj.meta.get("custom_data", {}).get("ohio.collect")
    if not info:
        raise SystemExit(f"ohio relabel: {bag} does not say which task it records; pass --task")
    return json.loads(info)["task"]

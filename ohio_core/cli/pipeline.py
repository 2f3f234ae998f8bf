"""``ohio pipeline BAGS... --out MODEL``: relabel the bags, then train a policy on the result."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from controllers.description import DEFAULT_ROBOT, load_robot
from ohio_core.cli.output import emit_json, table
from ohio_core.cli.relabel import add_relabel_arguments, relabel_run
from ohio_core.learning.algos import ALGOS, TrainConfig
from ohio_core.learning.train import train
from ohio_core.pipeline.dataset import load_dataset, save_dataset


def add_parser(sub) -> None:
    p = sub.add_parser("pipeline", help="bags -> relabeled dataset -> trained high-level policy, in one run",
                       description="Relabel bags for the deployment controller (as `ohio relabel`) and train a "
                                   "policy on the dataset (as `ohio train`). Writes DATASET.h5/.json and "
                                   "MODEL.d3/.json/.png.")
    add_relabel_arguments(p)
    p.add_argument("--out", type=Path, required=True, help="model path (writes OUT.d3, OUT.json, OUT.png)")
    p.add_argument("--dataset", type=Path, default=None, help="dataset path (default: OUT_dataset)")
    p.add_argument("--algo", choices=ALGOS, default="iql")
    p.add_argument("--steps", type=int, default=None,
                   help="gradient updates (default: per task, reach 10k, lift 20k, others 10k)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", action="store_true", help="end with one JSON object")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    t0 = time.perf_counter()
    try:
        train_config = TrainConfig.for_task(args.task, algo=args.algo, steps=args.steps, seed=args.seed)
    except ValueError as exc:
        raise SystemExit(f"ohio pipeline: {exc}") from None
    result, config, bags = relabel_run(args, "ohio pipeline")
    dataset = args.dataset or args.out.with_name(args.out.name + "_dataset")
    command = ("ohio pipeline " + " ".join(str(b) for b in args.bags) + f" --k {args.k} --method {args.method}"
               + (" --force-k" if args.force_k else "") + (f" --topics {args.topics}" if args.topics else "")
               + (f" --robot {args.robot}" if args.robot != DEFAULT_ROBOT else "")
               + f" --algo {args.algo} --out {args.out}")
    h5, _ = save_dataset(result.data, dataset, {
        "task": result.task, "level": "goal", "controller": config.controller.to_dict(), "k": config.k,
        "robot": load_robot(config.robot).name, "method": result.account.method, "source_bags": [str(b) for b in bags], "command": command})
    relabel_s = time.perf_counter() - t0
    if args.task is None:
        train_config = TrainConfig.for_task(result.task, algo=args.algo, steps=args.steps, seed=args.seed)
    buffer, meta = load_dataset(dataset)
    res = train(buffer, meta, train_config, args.out, extra_meta={"dataset": str(dataset), "command": command})
    print(table([["task", result.task], ["bags", len(bags)], ["transitions", res.transitions],
                 ["relabel seconds", round(relabel_s, 1)], ["algorithm", train_config.algo],
                 ["updates", train_config.steps], ["train seconds", round(res.seconds, 1)]], ["", "value"]))
    print(f"wrote {h5}, {res.model}, {res.sidecar}" + (f" and {res.plot}" if res.plot else ""))
    if args.json:
        emit_json({"dataset": str(h5), "model": str(res.model), "transitions": res.transitions,
                   "relabel_seconds": relabel_s, "train_seconds": res.seconds,
                   "account": {k: v for k, v in result.account.to_dict().items() if k != "per_bag"}})
    return 0

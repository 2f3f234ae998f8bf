"""``ohio train DATASET --algo ALGO --steps N --seed S --out MODEL``."""

from __future__ import annotations

import argparse
from pathlib import Path

from controllers.description import DEFAULT_ROBOT
from ohio_core.cli.output import emit_json, table
from ohio_core.learning.algos import ACTION_SCALINGS, ALGOS, NETWORKS, TrainConfig
from ohio_core.learning.train import train
from ohio_core.pipeline.dataset import load_dataset


def add_parser(sub) -> None:
    p = sub.add_parser("train", help="train a policy with d3rlpy on a dataset written by `ohio relabel`",
                       description="Train a high-level (or flat) policy offline with d3rlpy. The model "
                                   "(MODEL.d3 + MODEL.json) records the task, k, the controller config and the "
                                   "observation layout; MODEL.png shows the loss curves.")
    p.add_argument("dataset", type=Path, help="dataset (DATASET.h5 + DATASET.json)")
    p.add_argument("--algo", choices=ALGOS, default="iql")
    p.add_argument("--steps", type=int, default=None, help="gradient updates (default: per task, reach 10k, lift 20k)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--batch-size", type=int, default=None)
    p.add_argument("--hidden", type=int, nargs="+", default=None, help="hidden layer widths (default 128 128)")
    p.add_argument("--temperature", type=float, default=None,
                   help="IQL's advantage temperature: policy weights exp(T * advantage) (default 3)")
    p.add_argument("--network", choices=NETWORKS, default="mlp",
                   help="mlp, or region: one network shared by every region (routing goals; width --hidden's first)")
    p.add_argument("--action-scaling", choices=ACTION_SCALINGS, default="none",
                   help="minmax: train on each action dimension mapped from the dataset's range onto [-1, 1] "
                        "(inverted when the policy acts)")
    p.add_argument("--ignore-observations", nargs="+", default=(), metavar="PART",
                   help="observation parts the networks are blind to, e.g. q (the joint positions)")
    p.add_argument("--out", type=Path, required=True, help="model path (writes OUT.d3, OUT.json, OUT.png)")
    p.add_argument("--json", action="store_true", help="end with one JSON object")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    try:
        buffer, meta = load_dataset(args.dataset)
        config = TrainConfig.for_task(meta.get("task"), algo=args.algo, steps=args.steps, seed=args.seed,
                                      batch_size=args.batch_size,
                                      hidden=tuple(args.hidden) if args.hidden else None, network=args.network,
                                      temperature=args.temperature, action_scaling=args.action_scaling,
                                      ignore_observations=tuple(args.ignore_observations))
    except (FileNotFoundError, ValueError) as exc:
        raise SystemExit(f"ohio train: {exc}") from None
    command = (f"ohio train {args.dataset} --algo {config.algo} --steps {config.steps} --seed {config.seed} "
               f"--temperature {config.temperature} --network {config.network} "
               f"--hidden {' '.join(map(str, config.hidden))} --action-scaling {config.action_scaling} "
               + (f"--ignore-observations {' '.join(config.ignore_observations)} " if config.ignore_observations else "")
               + f"--out {args.out}")
    try:
        res = train(buffer, meta, config, args.out, extra_meta={"dataset": str(args.dataset), "command": command})
    except ValueError as exc:
        raise SystemExit(f"ohio train: {exc}") from None
    final = {name: values[-1][1] for name, values in res.curves.items()}
    print(table([["robot", meta.get("robot", DEFAULT_ROBOT)], ["task", meta["task"]], ["level", meta["level"]],
                 ["transitions", res.transitions],
                 ["algorithm", config.algo], ["updates", config.steps], ["seconds", round(res.seconds, 1)]]
                + [[f"final {name}", v] for name, v in sorted(final.items())], ["", "value"]))
    print(f"wrote {res.model}, {res.sidecar}" + (f" and {res.plot}" if res.plot else ""))
    if args.json:
        emit_json({"model": str(res.model), "sidecar": str(res.sidecar), "plot": str(res.plot) if res.plot else None,
                   "robot": meta.get("robot", DEFAULT_ROBOT),
                   "transitions": res.transitions, "seconds": res.seconds, "final_losses": final,
                   "train": config.to_dict()})
    return 0

"""``ohio finetune MODEL --task T --steps N [--algo iql|calql] [--eval-every M] [--eval-episodes E] [--seed S]
--out DIR [--json]``."""

from __future__ import annotations

import argparse
from pathlib import Path

from ohio_core.cli.output import emit_json, table
from ohio_core.learning.finetune import ONLINE_ALGOS, FinetuneConfig, finetune
from ohio_core.learning.policy import PolicyMismatchError, load_policy


def add_parser(sub) -> None:
    p = sub.add_parser("finetune", help="continue training a model online in the simulator, count violations",
                       description="Fine-tune an offline model (IQL or Cal-QL) online in the simulator it was "
                                   "trained for, mini-batches half offline dataset, half online transitions. Every "
                                   "--eval-every steps: the normalized score on fixed seeds and the constraint "
                                   "violations of the exploration since the last point (arm: joint position, "
                                   "joint velocity, torque limits; routing: flows above the idle vehicles, "
                                   "negative flows). Writes DIR/model.d3 (+ .json), DIR/curve.png, DIR/result.json.")
    p.add_argument("model", type=Path, help="model (MODEL.d3 + MODEL.json) trained with iql or calql")
    p.add_argument("--task", required=True, help="the model's task (reach, lift, routing)")
    p.add_argument("--steps", type=int, required=True, help="online env steps (one update each)")
    p.add_argument("--algo", choices=ONLINE_ALGOS, default=None, help="must be the model's own (default: it)")
    p.add_argument("--eval-every", type=int, default=FinetuneConfig.eval_every)
    p.add_argument("--eval-episodes", type=int, default=FinetuneConfig.eval_episodes)
    p.add_argument("--online-ratio", type=float, default=FinetuneConfig.online_ratio,
                   help="share of each mini-batch drawn from the online transitions (the rest: offline data)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--horizon", type=int, default=None, help="arm episode length in control periods (default: task's)")
    p.add_argument("--dataset", type=Path, default=None,
                   help="offline dataset to mix in (default: the one recorded in the model's sidecar)")
    p.add_argument("--out", type=Path, required=True, help="output folder")
    p.add_argument("--json", action="store_true", help="end with one JSON object")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    try:
        config = FinetuneConfig(steps=args.steps, algo=args.algo, eval_every=args.eval_every,
                                eval_episodes=args.eval_episodes, seed=args.seed, horizon=args.horizon,
                                online_ratio=args.online_ratio)
        task = load_policy(args.model).task
        if task != args.task:
            raise ValueError(f"model {args.model} was trained for task {task!r}, not {args.task!r}")
        res = finetune(args.model, config, args.out)
    except (FileNotFoundError, ValueError, PolicyMismatchError) as exc:
        raise SystemExit(f"ohio finetune: {exc}") from None
    rows = [[p["step"], f"{p['score']['mean']:.1f} +- {p['score']['se']:.1f}", p["violations"]["any"], p["periods"]]
            for p in res.curve]
    print(table(rows, ["online step", "normalized score", "violations since last", "steps since last"]))
    print("violations by kind: " + ", ".join(f"{k} {v}" for k, v in res.totals["violations"].items()))
    print(f"wrote {res.model}, {res.plot} and {args.out / 'result.json'} ({res.totals['seconds']:.0f} s)")
    if args.json:
        emit_json({"model": str(res.model), "plot": str(res.plot), "totals": res.totals,
                   "curve": [{"step": p["step"], "score": p["score"]["mean"], "se": p["score"]["se"],
                              "violations": p["violations"]["any"], "periods": p["periods"]} for p in res.curve]})
    return 0

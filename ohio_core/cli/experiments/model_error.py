"""``ohio experiment model-error``."""

from __future__ import annotations

import argparse

from ohio_core.cli.experiments.common import arm_args, build, out_dir, report
from ohio_core.experiments import model_error
from ohio_core.experiments.model_error import CONDITIONS, METHODS, ModelErrorConfig


def add_parser(ex) -> None:
    p = ex.add_parser("model-error", help="inverse methods under model error: goal recovery and scores",
                      description="Data from the original OSC (nominal model) in MuJoCo; each inverse method "
                                  "runs on a model whose link masses and inertias are scaled by 1 +- level "
                                  "(condition 'model'), or on data from a simulator with added joint damping and "
                                  "friction (condition 'plant'). Reports goal errors against the logged goals and "
                                  "the normalized score of BC trained on each relabeled dataset.")
    arm_args(p, ModelErrorConfig, "model-error")
    p.add_argument("--levels", type=float, nargs="+", default=list(ModelErrorConfig.levels),
                   help="error levels as fractions (default 0 0.05 0.15 0.3)")
    p.add_argument("--conditions", nargs="+", choices=CONDITIONS, default=list(ModelErrorConfig.conditions))
    p.add_argument("--methods", nargs="+", choices=METHODS, default=list(METHODS))
    p.add_argument("--damping-per-level", type=float, default=ModelErrorConfig.damping_per_level,
                   help="N m s/rad of simulator joint damping per unit level")
    p.add_argument("--friction-per-level", type=float, default=ModelErrorConfig.friction_per_level,
                   help="N m of simulator joint dry friction per unit level")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    cfg = build("model-error", model_error.ModelErrorConfig,
                task=args.task, levels=tuple(args.levels), conditions=tuple(args.conditions),
                methods=tuple(args.methods), episodes=args.episodes, damping_per_level=args.damping_per_level,
                friction_per_level=args.friction_per_level, algo=args.algo, steps=args.steps,
                eval_episodes=args.eval_episodes, seed=args.seed, workers=args.workers)
    out = out_dir(args, "model-error")
    result = model_error.run(cfg, out)
    title = (f"\nGoal errors against the logged goals ({result['cells'][0]['recovery'][cfg.methods[0]]['segments']} "
             f"segments; recovered: within 1 mm and 0.01 rad) and normalized score, mean +- s.e. over "
             f"{cfg.eval_episodes} episodes (success rate); task {cfg.task}, {cfg.algo}:")
    return report([(title, model_error.table_rows(result))],
                  f"\nwrote {out}/result.json and {out}/model_error.png ({result['seconds']['total']:.0f} s)",
                  model_error.summary_json(result), args.json)

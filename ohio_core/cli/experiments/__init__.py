"""``ohio experiment mismatch --task {reach,lift} [--json [OUT]]``, ``ohio experiment routing [--regions N]``,
``ohio experiment finetune [--domain arm|routing|both]``, ``ohio experiment noise``, ``ohio experiment mixed``,
``ohio experiment model-error``, ``ohio experiment learned-dynamics``: one module per experiment (its
parser and run function), the shared options and output in ``common``."""

from __future__ import annotations

from ohio_core.cli.experiments import finetune, learned_dynamics, mismatch, mixed, model_error, noise, routing

EXPERIMENTS = (mismatch, routing, finetune, noise, mixed, model_error, learned_dynamics)


def add_parser(sub) -> None:
    p = sub.add_parser("experiment", help="experiments that measure OHIO against baselines")
    ex = p.add_subparsers(dest="experiment", required=True, metavar="EXPERIMENT")
    for experiment in EXPERIMENTS:
        experiment.add_parser(ex)

"""What every ``ohio experiment`` command shares: the arm options, ``--out`` and ``--json``, building the
config (a refused setting ends the command with its message) and the report (tables, files, JSON line)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from ohio_core.cli.output import emit_json, table
from ohio_core.envs.arm.tasks import TASKS as ARM_TASKS
from ohio_core.experiments.configs import ArmExperimentConfig
from ohio_core.learning.algos import ALGOS

TASKS = list(ARM_TASKS)
ARM = ArmExperimentConfig      # a config class: its attributes are the fields' defaults


def task_arg(p, **kwargs) -> None:
    """``--task``; ``required=True`` or a ``default`` in ``kwargs``."""
    p.add_argument("--task", choices=TASKS, **kwargs)


def training_args(p, algo_help: str | None = None, defaults=ARM) -> None:
    """``--algo --steps --eval-episodes --seed``; defaults from ``defaults`` (an experiment's config or
    config class)."""
    p.add_argument("--algo", choices=ALGOS, default=defaults.algo, help=algo_help)
    p.add_argument("--steps", type=int, default=defaults.steps, help="updates per policy (default: per task)")
    p.add_argument("--eval-episodes", type=int, default=defaults.eval_episodes)
    p.add_argument("--seed", type=int, default=defaults.seed)


def workers_arg(p, help: str | None = None, defaults=ARM) -> None:
    p.add_argument("--workers", type=int, default=defaults.workers, help=help)


def out_arg(p, name: str) -> None:
    p.add_argument("--out", type=Path, default=None, help=f"output folder (default out/experiments/{name})")


def json_arg(p) -> None:
    p.add_argument("--json", nargs="?", type=Path, const=Path("-"), default=None, metavar="OUT",
                   help="end with the result as one JSON line; with OUT, also write it there")


def arm_args(p, defaults, name: str) -> None:
    """The options of an arm experiment with no others between them: task, behavior episodes per plant
    (``defaults.episodes``), training, workers, ``--out`` and ``--json``."""
    task_arg(p, default=defaults.task)
    p.add_argument("--episodes", type=int, default=defaults.episodes,
                   help="behavior episodes per plant (expert, noisy0.1, noisy0.3 in equal shares)")
    training_args(p, defaults=defaults)
    workers_arg(p, "processes", defaults)
    out_arg(p, name)
    json_arg(p)


def out_dir(args: argparse.Namespace, name: str) -> Path:
    """``--out``, or ``out/experiments/NAME``."""
    return args.out or Path("out/experiments") / name


def build(name: str, factory, **kwargs):
    """``factory(**kwargs)``; a ``ValueError`` ends ``ohio experiment NAME`` with its message."""
    try:
        return factory(**kwargs)
    except ValueError as exc:
        raise SystemExit(f"ohio experiment {name}: {exc}") from None


def report(tables: list[tuple[str | None, tuple[list, list]]], wrote: str, summary: dict,
           json_out: Path | None) -> int:
    """Print each ``(title, (rows, header))`` table (a title of None prints none), then ``wrote``; end
    with the summary as JSON when asked."""
    for title, (rows, header) in tables:
        if title is not None:
            print(title)
        print(table(rows, header))
    print(wrote)
    return emit(summary, json_out)


def emit(summary: dict, json_out: Path | None) -> int:
    """``--json [OUT]``: write the summary to OUT (unless "-") and end with it as one JSON line."""
    if json_out is not None and str(json_out) != "-":
        json_out.parent.mkdir(parents=True, exist_ok=True)
        json_out.write_text(json.dumps(summary, indent=1))
    if json_out is not None:
        emit_json(summary)
    return 0

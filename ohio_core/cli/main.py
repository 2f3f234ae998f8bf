"""The ``ohio`` command: one subcommand per job.

    ohio demo               simulate both controllers on the arm tasks and report tracking
    ohio collect            run behavior policies in the simulator, record rosbag2 files
    ohio relabel            recover the high-level goals from bags, write a d3rlpy dataset
    ohio pipeline           bags -> relabeled dataset -> trained policy, in one run
    ohio train              train a policy offline with d3rlpy
    ohio eval               run a trained policy in the simulator and score it
    ohio finetune           continue training a model online, with its score and constraint violations
    ohio experiment mismatch   OHIO vs baselines under changed controllers
    ohio experiment finetune   online fine-tuning of OHIO and the flat policy: scores and violations
    ohio experiment model-error       inverse methods under model error (masses, simulator friction)
    ohio experiment learned-dynamics  state matching with a learned vs the known dynamics model
    ohio bench controllers  controller step time and simulator real-time factor
    ohio bench inverse      speed and recovery rate of every inverse method
    ohio bench relabel      relabel one hour of 50 Hz bags: seconds, messages/s, peak memory
    ohio bench ros          ROS 2 closed loop over DDS: period jitter and latency
"""

from __future__ import annotations

import argparse
import os
import sys

# MuJoCo picks its OpenGL backend at import: headless EGL unless the user chose one.
os.environ.setdefault("MUJOCO_GL", "egl")

from ohio_core.cli import bag_info  # noqa: E402
from ohio_core.cli import bench, collect, demo, evaluate, experiments, finetune, pipeline, relabel, train  # noqa: E402


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ohio", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    demo.add_parser(sub)
    bench.add_parser(sub)
    collect.add_parser(sub)
    relabel.add_parser(sub)
    bag_info.add_parser(sub)
    pipeline.add_parser(sub)
    train.add_parser(sub)
    evaluate.add_parser(sub)
    finetune.add_parser(sub)
    experiments.add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())

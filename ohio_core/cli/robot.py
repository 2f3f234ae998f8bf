"""The ``--robot`` option every command that builds an arm takes."""

from __future__ import annotations

import argparse

from controllers.description import DEFAULT_ROBOT, RobotConfigError, RobotDescription, available_robots, load_robot


def add_robot_argument(p: argparse.ArgumentParser) -> None:
    p.add_argument("--robot", default=DEFAULT_ROBOT, metavar="NAME|FILE",
                   help=f"the arm: a robot of config/robots ({', '.join(available_robots())}) or a robot YAML file "
                        f"(docs/robots.md); default {DEFAULT_ROBOT}")


def robot_of(args: argparse.Namespace, prog: str) -> RobotDescription:
    """The robot ``--robot`` names; a bad one exits with one line naming the file and the problem."""
    try:
        return load_robot(args.robot)
    except RobotConfigError as exc:
        raise SystemExit(f"{prog}: {exc}") from None

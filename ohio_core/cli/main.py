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

A failed command exits non-zero with one line on stderr (``ohio CMD: FILE: problem`` for a damaged or
foreign input file); with ``--json`` its last line of stdout is ``{"error": "..."}``. SIGTERM stops a
command as Ctrl-C does (workers stopped, nothing half-written left at the output paths), exit 143.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading

# MuJoCo picks its OpenGL backend at import: headless EGL unless the user chose one.
os.environ.setdefault("MUJOCO_GL", "egl")

from ohio_core.cli import bag_info  # noqa: E402
from ohio_core.cli import bench, collect, demo, evaluate, experiments, finetune, pipeline, relabel, train  # noqa: E402
from ohio_core.cli.output import emit_error  # noqa: E402
from ohio_core.pipeline.sidecar import InputError  # noqa: E402


class UsageError(SystemExit):
    """A command line the parser refused (exit status 2); ``message`` is the line it printed."""

    def __init__(self, message: str):
        super().__init__(2)
        self.message = message


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised in the main thread so that it stops a command the way Ctrl-C does."""


class Parser(argparse.ArgumentParser):
    """argparse that records the running command's prog (``args.command_prog``: a subcommand's default
    overrides its parent's) and keeps a usage error's message for ``--json``."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.set_defaults(command_prog=self.prog)

    def error(self, message: str):
        self.print_usage(sys.stderr)
        line = f"{self.prog}: error: {message}"
        print(line, file=sys.stderr)
        raise UsageError(line)


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(prog="ohio", description=__doc__.split("\n\n")[0])
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


def _terminate(signum, frame):
    raise Terminated()


def _run(args: argparse.Namespace) -> int:
    try:
        return int(args.func(args) or 0)
    except InputError as exc:
        raise SystemExit(f"{args.command_prog}: {exc}") from None


def main(argv: list[str] | None = None) -> int:
    """Run one command; exit status 0, 1 (a message on stderr), 2 (usage), 130 (SIGINT) or 143 (SIGTERM)."""
    argv = sys.argv[1:] if argv is None else list(argv)
    as_json = any(a == "--json" or a.startswith("--json=") for a in argv)
    previous = signal.getsignal(signal.SIGTERM)
    handle_term = threading.current_thread() is threading.main_thread() and previous is not None
    if handle_term:   # (None: a handler not installed from Python, e.g. rclpy's, stays in charge)
        signal.signal(signal.SIGTERM, _terminate)
    prog = "ohio"
    try:
        args = build_parser().parse_args(argv)
        as_json, prog = bool(getattr(args, "json", None)), args.command_prog
        return _run(args)
    except SystemExit as exc:
        if as_json and exc.code not in (0, None):
            emit_error(exc.message if isinstance(exc, UsageError) else
                       exc.code if isinstance(exc.code, str) else f"exit status {exc.code}")
        raise
    except KeyboardInterrupt as exc:
        message, status = ("terminated", 143) if isinstance(exc, Terminated) else ("interrupted", 130)
        print(message, file=sys.stderr)
        if as_json:
            emit_error(message)
        return status
    except BaseException as exc:   # a defect: the traceback follows on stderr
        if as_json:
            emit_error(f"{prog}: {type(exc).__name__}: {exc}")
        raise
    finally:
        if handle_term:
            signal.signal(signal.SIGTERM, previous)


if __name__ == "__main__":
    sys.exit(main())

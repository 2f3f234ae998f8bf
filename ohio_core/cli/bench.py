"""``ohio bench ...``: performance targets, measured (never asserted by tests)."""

from __future__ import annotations

import argparse

from ohio_core.cli.output import check_targets, emit_json, table


def add_parser(sub) -> None:
    p = sub.add_parser("bench", help="benchmarks against the performance targets")
    bsub = p.add_subparsers(dest="bench", required=True, metavar="BENCH")
    c = bsub.add_parser("controllers", help="OSC/QP step time and simulation real-time factor")
    c.add_argument("--states", type=int, default=2000, help="states to time each controller on")
    c.add_argument("--sim-seconds", type=float, default=20.0, help="simulated seconds for the real-time factor")
    c.add_argument("--seed", type=int, default=0)
    c.add_argument("--json", action="store_true", help="end with one JSON object")
    c.set_defaults(func=run_controllers)


def run_controllers(args: argparse.Namespace) -> int:
    from ohio_core.bench import controllers

    if args.states < 1 or args.sim_seconds <= 0:
        raise SystemExit("ohio bench controllers: --states must be >= 1 and --sim-seconds > 0")
    result = controllers.run(args.states, args.sim_seconds, args.seed)
    print(table(check_targets(result, controllers.TARGETS), ["metric", "value", "target", "met"]))
    print(f"osc p99 {result['osc_step_us_p99']:.1f} us, qp p99 {result['qp_step_us_p99']:.1f} us, "
          f"qp fallbacks {result['qp_fallbacks']}, real-time factor with QP {result['sim_realtime_factor_qp']:.1f}x "
          f"({result['states']} states, command: ohio bench controllers --states {args.states} "
          f"--sim-seconds {args.sim_seconds:g} --seed {args.seed})")
    if args.json:
        emit_json(result)
    return 0

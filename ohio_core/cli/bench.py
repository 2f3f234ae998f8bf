"""``ohio bench ...``: performance targets, measured (never asserted by tests)."""

from __future__ import annotations

import argparse
from pathlib import Path

from ohio_core.bench import controllers, inverse, relabel, ros
from ohio_core.cli.output import check_targets, emit_json, table
from ohio_core.cli.robot import add_robot_argument, robot_of
from ohio_core.routing import bench as routing_bench
from ohio_core.routing.city import CitySpec, check_formulation
from ohio_core.routing.policies import POLICIES
from ohio_core.routing.scenario import ScenarioError


def add_parser(sub) -> None:
    p = sub.add_parser("bench", help="benchmarks against the performance targets")
    bsub = p.add_subparsers(dest="bench", required=True, metavar="BENCH")
    c = bsub.add_parser("controllers", help="OSC/QP step time and simulation real-time factor")
    c.add_argument("--states", type=int, default=2000, help="states to time each controller on")
    c.add_argument("--sim-seconds", type=float, default=20.0, help="simulated seconds for the real-time factor")
    add_robot_argument(c)
    c.add_argument("--seed", type=int, default=0)
    c.add_argument("--json", action="store_true", help="end with one JSON object")
    c.set_defaults(func=run_controllers)
    i = bsub.add_parser("inverse", help="segments/s and recovery rate of every inverse method")
    i.add_argument("--segments", type=int, default=100_000, help="simulated OSC segments (cached in --cache)")
    i.add_argument("--k", type=int, default=5, help="control steps per segment")
    i.add_argument("--velocity-std", type=float, default=1.0, help="joint speed spread of the start states (rad/s)")
    i.add_argument("--cem-segments", type=int, default=2_000, help="segments for CEM (slow)")
    i.add_argument("--qp-segments", type=int, default=5_000, help="simulated QP segments for the KKT inverse")
    i.add_argument("--state-matching-segments", type=int, default=2_000,
                   help="segments for state matching (slow: closed-loop rollouts)")
    i.add_argument("--workers", type=int, default=2, help="processes")
    i.add_argument("--cache", type=Path, default=Path("out/bench"), help="folder for the simulated segments")
    i.add_argument("--seed", type=int, default=0)
    i.add_argument("--json", action="store_true", help="end with one JSON object")
    i.set_defaults(func=run_inverse)
    rl = bsub.add_parser("relabel", help="relabel one hour of 50 Hz bags: seconds, messages/s, peak memory")
    rl.add_argument("--hours", type=float, default=1.0, help="hours of 50 Hz data (simulated once, cached in --cache)")
    rl.add_argument("--bags", type=int, default=4, help="bags the data is split into")
    rl.add_argument("--workers", type=int, default=2, help="processes (one bag each at a time)")
    rl.add_argument("--cache", type=Path, default=Path("out/bench"), help="folder for the simulated bags")
    rl.add_argument("--seed", type=int, default=0)
    rl.add_argument("--json", action="store_true", help="end with one JSON object")
    rl.set_defaults(func=run_relabel)
    rt = bsub.add_parser("routing", help="routing low level and its inverse (closed form, certificate, LPs) by city size")
    rt.add_argument("--regions", type=int, nargs="+", default=None,
                    help="region counts of synthetic grid cities (default 10 50 100 200; none with --scenario)")
    rt.add_argument("--scenario", type=Path, nargs="+", default=[], metavar="FILE",
                    help="time these cities (public AMoD scenario JSON) instead of synthetic ones")
    rt.add_argument("--demand-scale", type=float, default=1.0, metavar="X",
                    help="multiply the scenario files' trip requests by X (default 1)")
    rt.add_argument("--vehicles", type=int, default=None, metavar="N",
                    help="fleet size of the scenario files' cities (default: the file's totalAcc, else Little's law)")
    rt.add_argument("--behaviors", nargs="+", default=["greedy_dispatcher", "demand_proportional"],
                    help="behavior policies whose flows are inverted")
    rt.add_argument("--episodes", type=int, default=2,
                    help="episodes (60 steps each in synthetic cities) per city and behavior")
    rt.add_argument("--repeats", type=int, default=3, help="timed runs of each part (best is kept)")
    rt.add_argument("--formulation", choices=["edges", "transport"], default="edges",
                    help="the rebalancing LP's formulation (RebalancingConfig.formulation)")
    rt.add_argument("--seed", type=int, default=0)
    rt.add_argument("--json", action="store_true", help="end with one JSON object")
    rt.set_defaults(func=run_routing)
    r = bsub.add_parser("ros", help="ROS 2 closed loop over DDS: controller period jitter and latency")
    r.add_argument("--seconds", type=float, default=20.0, help="measured seconds of closed loop")
    r.add_argument("--warmup", type=float, default=2.0, help="seconds after the first command left out")
    r.add_argument("--controller", choices=["osc", "qp"], default="osc")
    add_robot_argument(r)
    r.add_argument("--publish-rate", type=float, default=500.0, help="joint states per second (Hz)")
    r.add_argument("--realtime-priority", type=int, default=0,
                   help="SCHED_FIFO priority of the simulator and controller processes (0: default scheduling)")
    r.add_argument("--executor", choices=list(ros.EXECUTORS), default="auto",
                   help="the controller node's rclpy executor (its executor parameter; auto: events)")
    r.add_argument("--tick-on", choices=["joint_state", "timer"], default="joint_state",
                   help="the controller node's tick_on: on the joint state due in each period, or its own timer")
    r.add_argument("--seed", type=int, default=0)
    r.add_argument("--keep", type=Path, default=None, help="folder to keep the node logs and timing log in")
    r.add_argument("--json", action="store_true", help="end with one JSON object")
    r.set_defaults(func=run_ros)


def run_controllers(args: argparse.Namespace) -> int:
    if args.states < 1 or args.sim_seconds <= 0:
        raise SystemExit("ohio bench controllers: --states must be >= 1 and --sim-seconds > 0")
    robot = robot_of(args, "ohio bench controllers")
    result = controllers.run(args.states, args.sim_seconds, args.seed, robot)
    print(table(check_targets(result, controllers.TARGETS), ["metric", "value", "target", "met"]))
    rows = []
    for name in ("osc", "qp"):
        t = result[f"tracking_{name}"]
        inv = result["inverse_analytical_osc" if name == "osc" else "inverse_kkt_qp"]
        rows.append([name, f"{1e3 * t['pos_err_m_median']:.2f} / {1e3 * t['pos_err_m_max']:.2f}",
                     f"{t['ori_err_rad_median']:.4f} / {t['ori_err_rad_max']:.4f}",
                     f"{inv['pos_err_m_max']:.1e} / {inv['ori_err_rad_max']:.1e} ({inv['segments']} seg.)",
                     result[f"reach_expert_success_{name}"]])
    print(table(rows, ["controller", "step goal: pos err mm (med / max)", "ori err rad (med / max)",
                       "inverse round trip: max m / rad", "reach expert success"]))
    print(f"robot {result['robot']} ({result['joints']} joints): "
          f"osc p99 {result['osc_step_us_p99']:.1f} us (median without the joint-limit filter "
          f"{result['osc_no_limit_filter_step_us_median']:.1f} us, steps filtered {result['osc_limit_filtered']}), "
          f"qp p99 {result['qp_step_us_p99']:.1f} us, "
          f"qp fallbacks {result['qp_fallbacks']}, real-time factor with QP {result['sim_realtime_factor_qp']:.1f}x "
          f"({result['states']} states, command: ohio bench controllers --robot {args.robot} --states {args.states} "
          f"--sim-seconds {args.sim_seconds:g} --seed {args.seed})")
    if args.json:
        emit_json(result)
    return 0


def run_inverse(args: argparse.Namespace) -> int:
    if min(args.segments, args.k, args.cem_segments, args.qp_segments, args.state_matching_segments,
           args.workers) < 1:
        raise SystemExit("ohio bench inverse: counts must be >= 1")
    result = inverse.run(args.segments, args.k, args.seed, args.velocity_std, args.cem_segments,
                         args.qp_segments, args.workers, args.cache, args.state_matching_segments)
    rows = []
    for name, m in result["methods"].items():
        target = inverse.TARGETS.get(name)
        met = "" if target is None else ("yes" if m["segments_per_s"] >= target else "NO")
        rows.append([name, m["segments"], m["segments_per_s"], m["recovery_rate"],
                     "-" if m["recovery_rate_saturated"] is None else m["recovery_rate_saturated"],
                     "-" if target is None else f">= {target:g}", met])
    print(table(rows, ["method", "segments", "segments/s", "recovery rate", "recovery | saturated",
                       "target segments/s", "met"]))
    print(f"k = {result['k']}, {result['saturated_entries']:.1%} of torque entries saturated, "
          f"{result['segments_with_saturation']:.1%} of segments with saturation; recovery = within 1 mm and "
          f"0.01 rad (command: ohio bench inverse --segments {args.segments} --k {args.k} "
          f"--cem-segments {args.cem_segments} --qp-segments {args.qp_segments} "
          f"--state-matching-segments {args.state_matching_segments} "
          f"--velocity-std {args.velocity_std:g} --workers {args.workers} --seed {args.seed})")
    if args.json:
        emit_json(result)
    return 0


def run_relabel(args: argparse.Namespace) -> int:
    if args.hours <= 0 or args.bags < 1 or args.workers < 1:
        raise SystemExit("ohio bench relabel: --hours must be > 0, --bags and --workers >= 1")
    try:
        result = relabel.run(args.hours, args.bags, args.workers, args.seed, args.cache)
    except RuntimeError as exc:
        raise SystemExit(f"ohio bench relabel: {exc}") from None
    print(table(check_targets(result, relabel.TARGETS), ["metric", "value", "target", "met"]))
    print(f"{result['hours_of_data']:.2f} h of 50 Hz data ({result['control_steps']} control steps, "
          f"{result['messages']} messages in {result['bags']} bags): {result['seconds']:.1f} s, "
          f"{result['messages_per_s']:.0f} messages/s, peak memory {result['peak_rss_mb']:.0f} MB "
          f"(main {result['peak_rss_mb_main']:.0f} MB, largest worker {result['peak_rss_mb_worker']:.0f} MB), "
          f"{result['segments_written']} transitions (command: ohio bench relabel --hours {args.hours:g} "
          f"--bags {args.bags} --workers {args.workers} --seed {args.seed})")
    if args.json:
        emit_json(result)
    return 0


def _routing_cities(args: argparse.Namespace) -> list:
    """The scenario files' cities, each read and checked against the LP formulation (one line if not)."""
    if args.scenario and args.regions:
        raise SystemExit("ohio bench routing: --scenario takes its cities from the files; drop --regions")
    if not args.scenario and (args.demand_scale != 1.0 or args.vehicles is not None):
        raise SystemExit("ohio bench routing: --demand-scale and --vehicles set the --scenario files' cities")
    cities = []
    for f in args.scenario:
        try:
            scenario = CitySpec(file=str(f), demand_scale=args.demand_scale, vehicles=args.vehicles).build()
            check_formulation(scenario, args.formulation, str(f))
        except ScenarioError as exc:
            raise SystemExit(f"ohio bench routing: {exc}") from None
        cities.append(scenario)
    return cities


def run_routing(args: argparse.Namespace) -> int:
    regions = args.regions if args.regions or args.scenario else list(routing_bench.DEFAULT_REGIONS)
    if (regions and min(regions) < 2) or args.episodes < 1 or args.repeats < 1:
        raise SystemExit("ohio bench routing: --regions must be >= 2, --episodes and --repeats >= 1")
    unknown = sorted(set(args.behaviors) - set(POLICIES))
    if unknown:
        raise SystemExit(f"ohio bench routing: unknown behavior {', '.join(unknown)}; available: {sorted(POLICIES)}")
    cities = _routing_cities(args)

    def progress(row):
        print(f"[bench routing] {row['scenario']} ({row['regions']} regions), {row['behavior']}: inverse "
              f"{row['inverse_s']:.2f} s, with residual LPs {row['inverse_with_residuals_s']:.2f} s", flush=True)

    result = routing_bench.run(regions or (), args.behaviors, args.episodes, args.seed, args.repeats, progress,
                               args.formulation, cities)
    print(table([[r["scenario"], r["regions"], r["vehicles"], r["behavior"], r["transitions"], r["step_ms"],
                  r["closed_form_us_per_transition"],
                  r["certificate_ms_per_transition"], r["not_lp_optimal"], r["inverse_s"],
                  "-" if r["residual_lp_ms_per_solve"] is None else r["residual_lp_ms_per_solve"],
                  r["inverse_with_residuals_s"]] for r in result["rows"]],
                ["city", "regions", "vehicles", "behavior", "transitions", "env step ms", "closed form us/tr",
                 "certificate ms/tr",
                 "not LP-optimal", "inverse s", "residual LP ms/solve", "with residual LPs s"]))
    if args.scenario:
        cities_arg = f"--scenario {' '.join(map(str, args.scenario))} --demand-scale {args.demand_scale:g}" + (
            f" --vehicles {args.vehicles}" if args.vehicles is not None else "")
    else:
        cities_arg = f"--regions {' '.join(map(str, regions))}"
    print(f"env step: one simulator step with the behavior's low level (the rebalancing LP, formulation "
          f"{args.formulation}, for goal-level behaviors); inverse: closed form and certificate "
          f"(command: ohio bench routing --formulation {args.formulation} {cities_arg} "
          f"--behaviors {' '.join(args.behaviors)} --episodes {args.episodes} "
          f"--repeats {args.repeats} --seed {args.seed})")
    if args.json:
        emit_json(result)
    return 0


def run_ros(args: argparse.Namespace) -> int:
    if args.seconds <= 0 or args.warmup < 0 or args.publish_rate <= 0 or not 0 <= args.realtime_priority <= 98:
        raise SystemExit("ohio bench ros: --seconds and --publish-rate must be > 0, --warmup >= 0, "
                         "--realtime-priority in 0..98")
    robot_of(args, "ohio bench ros")          # a bad robot ends the command before any node starts
    try:
        result = ros.run(args.seconds, args.warmup, args.controller, args.publish_rate, args.seed, args.keep,
                         realtime_priority=args.realtime_priority, executor=args.executor,
                         robot=args.robot, tick_on=args.tick_on)
    except (RuntimeError, FileNotFoundError) as exc:
        raise SystemExit(f"ohio bench ros: {exc}") from None
    print(table(check_targets(result, ros.TARGETS), ["metric", "value", "target", "met"]))
    b50, b99 = result["compute_breakdown_us_p50"], result["compute_breakdown_us_p99"]
    print(table([[name, b50[name], b99[name]] for name in (*ros.STAGES, "compute")], ["tick part", "p50 us", "p99 us"]))
    print(f"period error p50 {result['period_error_ms_p50']:.3f} ms, latency p50 {result['latency_ms_p50']:.3f} ms "
          f"(transport p50/p99 {result['latency_transport_ms_p50']:.3f}/{result['latency_transport_ms_p99']:.3f} ms, "
          f"in node {result['latency_in_node_ms_p50']:.3f}/{result['latency_in_node_ms_p99']:.3f} ms), "
          f"compute p50/p99 {result['compute_ms_p50']:.3f}/{result['compute_ms_p99']:.3f} ms, "
          f"controller CPU {result['controller_cpu_percent']:.1f}%, "
          f"{result['ticks']} ticks at 50 Hz, goal reached: {'yes' if result['goal_reached'] else 'NO'} "
          f"({result['episodes_succeeded']}/{result['episodes']} episodes), load average {result['load_average_1min']:.2f} "
          f"on {result['cpus']} CPUs (command: ohio bench ros --robot {args.robot} --seconds {args.seconds:g} --controller "
          f"{args.controller} --publish-rate {args.publish_rate:g} --realtime-priority {args.realtime_priority} "
          f"--executor {args.executor} --tick-on {args.tick_on}; executor {result['executor']})")
    if args.json:
        emit_json(result)
    return 0

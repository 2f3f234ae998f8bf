"""``ohio experiment routing [--regions N | --scenario FILE [FILE ...] [--demand-scale X]] [--vehicles N]``."""

from __future__ import annotations

import argparse
from pathlib import Path

from ohio_core.cli.experiments.common import build, json_arg, out_dir, report
from ohio_core.learning.algos import ACTION_SCALINGS, ALGOS, NETWORKS
from ohio_core.routing import experiment
from ohio_core.routing.scenario import ScenarioError


def add_parser(ex) -> None:
    r = ex.add_parser("routing", help="fleet rebalancing: OHIO vs the flat policy and the behavior heuristics",
                      description="Per behavior dataset (demand-proportional, random distributions, greedy "
                                  "dispatcher): relabel with OHIO, train OHIO and the flat per-edge-flow policy, "
                                  "evaluate against the heuristics; then the same on the three datasets pooled "
                                  "('mixed'). 0 = random distribution policy, 100 = the best behavior heuristic. "
                                  "--scaling adds both methods on larger cities, trained on one behavior's data.")
    r.add_argument("--regions", type=int, default=None, help="regions of the synthetic city (default 16)")
    r.add_argument("--layout", choices=["grid", "geometric"], default=None, help="synthetic city layout (default grid)")
    r.add_argument("--scenario", type=Path, nargs="+", default=None, metavar="FILE",
                   help="run the comparison on each of these cities (public AMoD scenario JSON) instead of a "
                        "synthetic one; each city's results go to OUT/NAME (NAME: the file name without .json)")
    r.add_argument("--demand-scale", type=float, default=1.0, metavar="X",
                   help="multiply the scenario files' trip requests by X (default 1)")
    r.add_argument("--vehicles", type=int, default=None, metavar="N",
                   help="fleet size (default: the scenario file's totalAcc, else Little's law on the demand)")
    r.add_argument("--episodes", type=int, default=100, help="behavior episodes per dataset")
    r.add_argument("--behaviors", nargs="+", default=list(experiment.BEHAVIORS), metavar="NAME",
                   help=f"behavior heuristics, one dataset each (default: {' '.join(experiment.BEHAVIORS)})")
    r.add_argument("--algo", choices=ALGOS, default="iql")
    r.add_argument("--steps", type=int, default=10000, help="updates per policy")
    r.add_argument("--eval-episodes", type=int, default=10)
    r.add_argument("--scaling", type=int, nargs="*", default=[], metavar="N",
                   help="region counts of the scaling study, e.g. 10 50 100 200")
    r.add_argument("--scaling-episodes", type=int, default=100, help="behavior episodes per city of the scaling study")
    r.add_argument("--network", choices=NETWORKS, default="region",
                   help="OHIO's networks: one network shared by every region (default) or MLPs on the whole "
                        "observation; the flat policy is always an MLP")
    r.add_argument("--temperature", type=float, default=10.0,
                   help="IQL's advantage temperature: policy weights exp(T * advantage) (default 10)")
    r.add_argument("--action-scaling", choices=ACTION_SCALINGS, default="none",
                   help="minmax: train every policy on its actions mapped from the dataset's own range onto [-1, 1] "
                        "(the goals of a large fleet's heuristics use a small part of it)")
    r.add_argument("--scaling-steps", type=int, default=2000, help="updates per city of the scaling study")
    r.add_argument("--scaling-only", action="store_true", help="run the scaling study only (needs --scaling)")
    r.add_argument("--scaling-behavior", default="greedy_dispatcher", metavar="NAME",
                   help="the behavior whose data the scaling study trains on: a routing policy name (default: "
                        "greedy_dispatcher) or mixed (every behavior's data pooled)")
    r.add_argument("--flat-max-regions", type=int, default=100,
                   help="train the flat policy (n^2 actions) on cities of at most this many regions (default 100)")
    r.add_argument("--lp-formulation", choices=["edges", "transport"], default="edges",
                   help="the rebalancing LP's formulation: transport is faster in large cities (metric travel times)")
    r.add_argument("--no-mixed", action="store_true", help="skip the dataset that pools every behavior dataset")
    r.add_argument("--seed", type=int, default=0)
    r.add_argument("--out", type=Path, default=None,
                   help="output folder (default out/experiments/routing-N, with --scenario routing-cities)")
    json_arg(r)
    r.set_defaults(func=run)


def _configs(args: argparse.Namespace) -> list:
    """One config per city: the synthetic one, or one per scenario file (each file read here, so that a
    damaged one ends the command before any city runs)."""
    common = dict(episodes=args.episodes, behaviors=tuple(args.behaviors), algo=args.algo, steps=args.steps,
                  eval_episodes=args.eval_episodes, seed=args.seed, scaling=tuple(args.scaling), scaling_episodes=args.scaling_episodes,
                  mixed=not args.no_mixed, network=args.network, temperature=args.temperature,
                  action_scaling=args.action_scaling,
                  scaling_steps=args.scaling_steps, datasets=not args.scaling_only,
                  scaling_behavior=args.scaling_behavior, flat_max_regions=args.flat_max_regions,
                  lp_formulation=args.lp_formulation, vehicles=args.vehicles, demand_scale=args.demand_scale)
    if args.scenario is None:
        if args.demand_scale != 1.0:
            raise SystemExit("ohio experiment routing: --demand-scale scales the --scenario files' requests")
        return [build("routing", experiment.RoutingExperimentConfig, regions=args.regions or 16,
                      layout=args.layout or "grid", **common)]
    given = [o for o, v in (("--regions", args.regions), ("--layout", args.layout), ("--scaling", args.scaling),
                            ("--scaling-only", args.scaling_only)) if v]
    if given:
        raise SystemExit(f"ohio experiment routing: --scenario takes its cities from the files; {', '.join(given)} "
                         "build synthetic ones: drop them")
    configs = [build("routing", experiment.RoutingExperimentConfig, scenario=str(f), **common) for f in args.scenario]
    for cfg in configs:
        try:
            experiment.check_city(cfg)
        except ScenarioError as exc:
            raise SystemExit(f"ohio experiment routing: {exc}") from None
    return configs


def _folders(files: list[Path]) -> list[str]:
    """Each scenario file's results folder: its name without extension, numbered where names repeat."""
    names = []
    for f in files:
        stem, k = f.stem, 2
        name = stem
        while name in names:
            name, k = f"{stem}-{k}", k + 1
        names.append(name)
    return names


def run(args: argparse.Namespace) -> int:
    configs = _configs(args)
    if args.scenario is None:
        outs = [out_dir(args, f"routing-{configs[0].regions}")]
    else:
        root = out_dir(args, "routing-cities")
        outs = [root / name for name in _folders(args.scenario)]
    tables, summaries, seconds = [], {}, 0.0
    for cfg, out in zip(configs, outs):
        try:
            result = experiment.run(cfg, out)
        except experiment.NoScoreScale as exc:
            raise SystemExit(f"ohio experiment routing: {exc}") from None
        tables += _tables(cfg, result)
        summaries[out.name] = {**experiment.summary_json(result), "scenario": result["scenario"]}
        seconds += result["seconds"]
    if args.scenario is None:
        summary = experiment.summary_json(result)
    else:
        summary = {"cities": summaries}
    files = [f"{out}/{name}" for out in outs for name in ("result.json", "scores.png", "scaling.png")
             if (out / name).is_file()]
    return report(tables, f"\nwrote {', '.join(files)} ({seconds:.0f} s)", summary, args.json)


def _tables(cfg, result: dict) -> list:
    tables = []
    if result["datasets"]:
        city = result["scenario"]
        scale = f", demand x{city['demand_scale']:g}" if city["demand_scale"] != 1.0 else ""
        tables.append((f"\nNormalized score, mean +- s.e. over {cfg.eval_episodes} episodes; city {city['name']}: "
                       f"{city['regions']} regions, {city['vehicles']} vehicles{scale}; {cfg.algo}, OHIO on "
                       f"{cfg.network} networks; 0 = random distribution, 100 = best heuristic:",
                       experiment.table_rows(result)))
        tables.append(("\nHow each policy ran the fleet, per step on the evaluation episodes: revenue and costs per "
                       "vehicle of the fleet, vehicles moved to rebalance, share of requests served:",
                       experiment.operations_rows(result)))
    if result["scaling"]:
        behaviors = list(cfg.behaviors)
        tables.append((f"\nScaling on {cfg.scaling_behavior} data, {cfg.scaling_steps} updates per policy; "
                       f"0 = random distribution, 100 = best heuristic in each city:",
                       ([[s["regions"], s["vehicles"], s["transitions"], f"{s['inverse_s']:.3f}",
                          f"{s['inverse_per_transition_us']:.0f}", f"{s['train_s']:.1f}", f"{s['ohio_score']:.1f}",
                          "-" if s["flat_score"] is None else f"{s['flat_score']:.1f}",
                          " / ".join(f"{s['behavior_scores'][b]:.1f}" for b in behaviors)]
                         for s in result["scaling"]],
                        ["regions", "vehicles", "transitions", "inverse s", "us/transition",
                         f"train s ({cfg.scaling_steps} updates)", "OHIO score", "flat score",
                         " / ".join(behaviors)])))
    return tables

"""``ohio experiment routing [--regions N]``."""

from __future__ import annotations

import argparse
from pathlib import Path

from ohio_core.cli.experiments.common import build, json_arg, out_dir, report
from ohio_core.learning.algos import ALGOS, NETWORKS
from ohio_core.routing import experiment


def add_parser(ex) -> None:
    r = ex.add_parser("routing", help="fleet rebalancing: OHIO vs the flat policy and the behavior heuristics",
                      description="Per behavior dataset (demand-proportional, random distributions, greedy "
                                  "dispatcher): relabel with OHIO, train OHIO and the flat per-edge-flow policy, "
                                  "evaluate against the heuristics; then the same on the three datasets pooled "
                                  "('mixed'). 0 = random distribution policy, 100 = the best behavior heuristic. "
                                  "--scaling adds both methods on larger cities, trained on one behavior's data.")
    r.add_argument("--regions", type=int, default=16)
    r.add_argument("--layout", choices=["grid", "geometric"], default="grid")
    r.add_argument("--episodes", type=int, default=100, help="behavior episodes per dataset")
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
    r.add_argument("--out", type=Path, default=None, help="output folder (default out/experiments/routing-N)")
    json_arg(r)
    r.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    cfg = build("routing", experiment.RoutingExperimentConfig,
                regions=args.regions, layout=args.layout, episodes=args.episodes, algo=args.algo, steps=args.steps,
                eval_episodes=args.eval_episodes, seed=args.seed, scaling=tuple(args.scaling),
                scaling_episodes=args.scaling_episodes, mixed=not args.no_mixed,
                network=args.network, temperature=args.temperature, scaling_steps=args.scaling_steps,
                datasets=not args.scaling_only, scaling_behavior=args.scaling_behavior,
                flat_max_regions=args.flat_max_regions, lp_formulation=args.lp_formulation)
    out = out_dir(args, f"routing-{args.regions}")
    result = experiment.run(cfg, out)
    tables = []
    if result["datasets"]:
        tables.append((f"\nNormalized score, mean +- s.e. over {cfg.eval_episodes} episodes; {cfg.regions} regions, "
                       f"{result['scenario']['vehicles']} vehicles, {cfg.algo}, OHIO on {cfg.network} networks; "
                       f"0 = random distribution, 100 = best heuristic:", experiment.table_rows(result)))
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
    plots = [f"{out}/{name}.png" for name, key in (("scores", "datasets"), ("scaling", "scaling")) if result[key]]
    plot = f" and {' and '.join(plots)}" if plots else ""
    return report(tables, f"\nwrote {out}/result.json{plot} ({result['seconds']:.0f} s)",
                  experiment.summary_json(result), args.json)

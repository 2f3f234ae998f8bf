"""``ohio experiment mismatch --task {reach,lift} [--json [OUT]]``, ``ohio experiment routing [--regions N]``,
``ohio experiment finetune [--domain arm|routing|both]``, ``ohio experiment noise``, ``ohio experiment mixed``,
``ohio experiment model-error``, ``ohio experiment learned-dynamics``."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from ohio_core.cli.output import emit_json, table
from ohio_core.experiments.mismatch import MismatchConfig
from ohio_core.learning.algos import ALGOS


def add_parser(sub) -> None:
    p = sub.add_parser("experiment", help="experiments that measure OHIO against baselines")
    ex = p.add_subparsers(dest="experiment", required=True, metavar="EXPERIMENT")
    m = ex.add_parser("mismatch", help="deploy under changed controllers: OHIO vs standard, flat, naive",
                      description="Collect data with the original OSC (kp 150, damping ratio 1, 0.05 m / 0.5 rad), "
                                  "train every method with the same offline RL algorithm and evaluate each under "
                                  "every changed controller config (ori_scale, kp_ori50, damping3, qp).")
    m.add_argument("--task", choices=["reach", "lift"], required=True)
    m.add_argument("--out", type=Path, default=None, help="output folder (default out/experiments/mismatch-TASK)")
    m.add_argument("--episodes", type=int, default=MismatchConfig.episodes,
                   help="behavior episodes (expert, noisy0.1, noisy0.3 in equal shares)")
    m.add_argument("--algo", choices=ALGOS, default=MismatchConfig.algo,
                   help="the offline algorithm every method is trained with (default bc: the fastest on a CPU)")
    m.add_argument("--steps", type=int, default=None, help="updates per policy (default: per task)")
    m.add_argument("--eval-episodes", type=int, default=20)
    m.add_argument("--seed", type=int, default=0)
    m.add_argument("--configs", nargs="+", default=None,
                   help="deployment configs (default: ori_scale kp_ori50 damping3 qp; 'original' also known)")
    m.add_argument("--methods", nargs="+", default=None,
                   help="methods (default: ohio_analytical ohio_numerical standard flat naive)")
    m.add_argument("--workers", type=int, default=2, help="processes for relabeling, training and evaluation")
    m.add_argument("--bags", action="store_true", help="go through rosbag2 bags (collect -> bag -> read)")
    m.add_argument("--json", nargs="?", type=Path, const=Path("-"), default=None, metavar="OUT",
                   help="end with the result as one JSON line; with OUT, also write it there")
    m.set_defaults(func=run_mismatch)
    r = ex.add_parser("routing", help="fleet rebalancing: OHIO vs the flat policy and the behavior heuristics",
                      description="Per behavior dataset (demand-proportional, random distributions, greedy "
                                  "dispatcher): relabel with OHIO, train OHIO and the flat per-edge-flow policy, "
                                  "evaluate against the heuristics; then the same on the three datasets pooled ('mixed'). "
                                  "0 = random distribution policy, 100 = the best behavior heuristic. --scaling adds "
                                  "OHIO on larger cities.")
    r.add_argument("--regions", type=int, default=16)
    r.add_argument("--layout", choices=["grid", "geometric"], default="grid")
    r.add_argument("--episodes", type=int, default=100, help="behavior episodes per dataset")
    r.add_argument("--algo", choices=ALGOS, default="iql")
    r.add_argument("--steps", type=int, default=10000, help="updates per policy")
    r.add_argument("--eval-episodes", type=int, default=10)
    r.add_argument("--scaling", type=int, nargs="*", default=[], metavar="N",
                   help="region counts of the scaling study, e.g. 10 50 100 200")
    r.add_argument("--scaling-episodes", type=int, default=100, help="behavior episodes per city of the scaling study")
    r.add_argument("--no-mixed", action="store_true", help="skip the dataset that pools every behavior dataset")
    r.add_argument("--seed", type=int, default=0)
    r.add_argument("--out", type=Path, default=None, help="output folder (default out/experiments/routing-N)")
    r.add_argument("--json", nargs="?", type=Path, const=Path("-"), default=None, metavar="OUT",
                   help="end with the result as one JSON line; with OUT, also write it there")
    r.set_defaults(func=run_routing)
    add_finetune_parser(ex)
    _add_noise_parser(ex)
    _add_mixed_parser(ex)
    add_model_error_parser(ex)
    add_learned_dynamics_parser(ex)


def add_finetune_parser(ex) -> None:
    from ohio_core.experiments.finetune import FinetuneExperimentConfig as C

    f = ex.add_parser("finetune", help="online fine-tuning of OHIO and the flat policy: scores and violations",
                      description="Train (or reuse) offline OHIO and flat models on a small behavior dataset, "
                                  "fine-tune each online with the same budget, and report the start, minimum and "
                                  "final normalized score and the constraint violations of the exploration "
                                  "(arm: joint position, joint velocity, torque limits; routing: flows above the "
                                  "idle vehicles, negative flows).")
    f.add_argument("--domain", choices=["arm", "routing", "both"], default=C.domain)
    f.add_argument("--algo", choices=["iql", "calql"], default=C.algo)
    f.add_argument("--steps", type=int, default=C.steps, help="online steps per method")
    f.add_argument("--eval-every", type=int, default=C.eval_every)
    f.add_argument("--eval-episodes", type=int, default=C.eval_episodes)
    f.add_argument("--online-ratio", type=float, default=C.online_ratio,
                   help="share of each mini-batch drawn from the online transitions (the rest: offline data)")
    f.add_argument("--seed", type=int, default=0)
    f.add_argument("--task", choices=["reach", "lift"], default=C.task, help="arm task")
    f.add_argument("--controllers", nargs="+", default=list(C.arm_controllers),
                   help="OHIO's arm controllers (default: qp original)")
    f.add_argument("--episodes", type=int, default=C.arm_episodes, help="arm behavior episodes")
    f.add_argument("--offline-steps", type=int, default=C.arm_offline_steps, help="arm offline updates")
    f.add_argument("--horizon", type=int, default=None, help="arm episode length in control periods")
    f.add_argument("--regions", type=int, default=C.regions)
    f.add_argument("--routing-episodes", type=int, default=C.routing_episodes)
    f.add_argument("--routing-offline-steps", type=int, default=C.routing_offline_steps)
    f.add_argument("--out", type=Path, default=Path("out/experiments/finetune"), help="output folder")
    f.add_argument("--json", nargs="?", type=Path, const=Path("-"), default=None, metavar="OUT",
                   help="end with the result as one JSON line; with OUT, also write it there")
    f.set_defaults(func=run_finetune)


def _common(p, episodes: int, name: str) -> None:
    p.add_argument("--task", choices=["reach", "lift"], default="reach")
    p.add_argument("--episodes", type=int, default=episodes,
                   help="behavior episodes per plant (expert, noisy0.1, noisy0.3 in equal shares)")
    p.add_argument("--algo", choices=ALGOS, default="bc")
    p.add_argument("--steps", type=int, default=None, help="updates per policy (default: per task)")
    p.add_argument("--eval-episodes", type=int, default=20)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--workers", type=int, default=2, help="processes")
    p.add_argument("--out", type=Path, default=None, help=f"output folder (default out/experiments/{name})")
    p.add_argument("--json", nargs="?", type=Path, const=Path("-"), default=None, metavar="OUT",
                   help="end with the result as one JSON line; with OUT, also write it there")


def add_model_error_parser(ex) -> None:
    from ohio_core.experiments.model_error import CONDITIONS, METHODS, ModelErrorConfig

    p = ex.add_parser("model-error", help="inverse methods under model error: goal recovery and scores",
                      description="Data from the original OSC (nominal model) in MuJoCo; each inverse method "
                                  "runs on a model whose link masses and inertias are scaled by 1 +- level "
                                  "(condition 'model'), or on data from a simulator with added joint damping and "
                                  "friction (condition 'plant'). Reports goal errors against the logged goals and "
                                  "the normalized score of BC trained on each relabeled dataset.")
    _common(p, ModelErrorConfig.episodes, "model-error")
    p.add_argument("--levels", type=float, nargs="+", default=list(ModelErrorConfig.levels),
                   help="error levels as fractions (default 0 0.05 0.15 0.3)")
    p.add_argument("--conditions", nargs="+", choices=CONDITIONS, default=list(ModelErrorConfig.conditions))
    p.add_argument("--methods", nargs="+", choices=METHODS, default=list(METHODS))
    p.add_argument("--damping-per-level", type=float, default=ModelErrorConfig.damping_per_level,
                   help="N m s/rad of simulator joint damping per unit level")
    p.add_argument("--friction-per-level", type=float, default=ModelErrorConfig.friction_per_level,
                   help="N m of simulator joint dry friction per unit level")
    p.set_defaults(func=run_model_error)


def add_learned_dynamics_parser(ex) -> None:
    from ohio_core.experiments.learned_dynamics import PLANTS, LearnedDynamicsConfig

    p = ex.add_parser("learned-dynamics", help="state matching with a learned vs the known dynamics model",
                      description="Per simulated plant (nominal; friction: joint damping and friction the "
                                  "Pinocchio model lacks), learn the one-period dynamics from the data (validation "
                                  "on held-out episodes), relabel by state matching with the known and the learned "
                                  "model, compare the goals with the logged ones and score BC on each.")
    _common(p, LearnedDynamicsConfig.episodes, "learned-dynamics")
    p.add_argument("--plants", nargs="+", choices=PLANTS, default=list(PLANTS))
    p.add_argument("--dynamics-kind", choices=["mlp", "affine"], default=LearnedDynamicsConfig.dynamics_kind)
    p.add_argument("--dynamics-epochs", type=int, default=LearnedDynamicsConfig.dynamics_epochs)
    p.set_defaults(func=run_learned_dynamics)


def run_mismatch(args: argparse.Namespace) -> int:
    from ohio_core.experiments import mismatch

    try:
        cfg = mismatch.MismatchConfig(
            task=args.task, episodes=args.episodes, algo=args.algo, steps=args.steps,
            eval_episodes=args.eval_episodes, seed=args.seed, workers=args.workers, bags=args.bags,
            configs=tuple(args.configs) if args.configs else None,
            methods=tuple(args.methods) if args.methods else mismatch.METHODS)
    except ValueError as exc:
        raise SystemExit(f"ohio experiment mismatch: {exc}") from None
    out = args.out or Path("out/experiments") / f"mismatch-{args.task}"
    result = mismatch.run(cfg, out)
    rows, header = mismatch.table_rows(result)
    print(f"\nNormalized score, mean +- s.e. over {cfg.eval_episodes} episodes (success rate); task {cfg.task}, "
          f"{cfg.algo}, data from the original controller:")
    print(table(rows, header))
    print(f"\nwrote {out}/result.json and {out}/scores.png ({result['seconds']['total']:.0f} s)")
    return _emit(mismatch.summary_json(result), args.json)


def run_routing(args: argparse.Namespace) -> int:
    from ohio_core.experiments import routing

    try:
        cfg = routing.RoutingExperimentConfig(
            regions=args.regions, layout=args.layout, episodes=args.episodes, algo=args.algo, steps=args.steps,
            eval_episodes=args.eval_episodes, seed=args.seed, scaling=tuple(args.scaling),
            scaling_episodes=args.scaling_episodes, mixed=not args.no_mixed)
    except ValueError as exc:
        raise SystemExit(f"ohio experiment routing: {exc}") from None
    out = args.out or Path("out/experiments") / f"routing-{args.regions}"
    result = routing.run(cfg, out)
    rows, header = routing.table_rows(result)
    print(f"\nNormalized score, mean +- s.e. over {cfg.eval_episodes} episodes; {cfg.regions} regions, "
          f"{result['scenario']['vehicles']} vehicles, {cfg.algo}; 0 = random distribution, 100 = best heuristic:")
    print(table(rows, header))
    if result["scaling"]:
        print(table([[s["regions"], s["vehicles"], s["transitions"], f"{s['inverse_s']:.3f}",
                      f"{s['inverse_per_transition_us']:.0f}", f"{s['train_s']:.1f}", f"{s['ohio_score']:.1f}"]
                     for s in result["scaling"]],
                    ["regions", "vehicles", "transitions", "inverse s", "us/transition", "train s", "OHIO score"]))
    print(f"\nwrote {out}/result.json and {out}/scores.png ({result['seconds']:.0f} s)")
    return _emit(routing.summary_json(result), args.json)


def run_finetune(args: argparse.Namespace) -> int:
    from ohio_core.experiments import finetune

    try:
        cfg = finetune.FinetuneExperimentConfig(
            domain=args.domain, algo=args.algo, steps=args.steps, eval_every=args.eval_every,
            eval_episodes=args.eval_episodes, online_ratio=args.online_ratio, seed=args.seed, task=args.task,
            arm_controllers=tuple(args.controllers),
            arm_episodes=args.episodes, arm_offline_steps=args.offline_steps, horizon=args.horizon,
            regions=args.regions, routing_episodes=args.routing_episodes,
            routing_offline_steps=args.routing_offline_steps)
    except ValueError as exc:
        raise SystemExit(f"ohio experiment finetune: {exc}") from None
    result = finetune.run(cfg, args.out)
    rows, header = finetune.table_rows(result)
    print(f"\nOnline fine-tuning, {cfg.steps} steps per method ({cfg.algo}); normalized score (mean +- s.e. over "
          f"{cfg.eval_episodes} episodes) every {cfg.eval_every} steps; violations: exploration control periods "
          f"(arm) or steps (routing) with a violated constraint:")
    print(table(rows, header))
    plots = ", ".join(f"{args.out}/{d}.png" for d in result["domains"])
    print(f"\nwrote {args.out}/result.json and {plots} ({result['seconds']:.0f} s)")
    return _emit(finetune.summary_json(result), args.json)


def _json_arg(p) -> None:
    p.add_argument("--json", nargs="?", type=Path, const=Path("-"), default=None, metavar="OUT",
                   help="end with the result as one JSON line; with OUT, also write it there")


def _add_noise_parser(ex) -> None:
    from ohio_core.experiments.noise import NoiseConfig

    d = NoiseConfig()
    n = ex.add_parser("noise", help="stochastic low level: goal recovery and policies vs torque noise",
                      description="Torque noise eps ~ N(0, (f tau_max)^2) per control period on the original OSC. "
                                  "Recovery of known goals by the analytical, numerical and maximum-likelihood (ml) "
                                  "inverses per noise level f, then policies trained on data relabeled at the "
                                  "--bc-levels, evaluated under the deployment controller without noise.")
    n.add_argument("--task", choices=["reach", "lift"], default=d.task)
    n.add_argument("--levels", type=float, nargs="+", default=list(d.levels), help="recovery noise fractions f")
    n.add_argument("--segments", type=int, default=d.segments, help="recovery segments per level")
    n.add_argument("--action-scale", type=float, default=d.action_scale,
                   help="recovery goals: uniform normalized actions times this")
    n.add_argument("--velocity-std", type=float, default=d.velocity_std,
                   help="recovery start states: joint velocity std, rad/s (2.5 saturates many torques)")
    n.add_argument("--bc-levels", type=float, nargs="*", default=list(d.bc_levels),
                   help="noise fractions with trained policies (none: recovery only)")
    n.add_argument("--episodes", type=int, default=d.episodes, help="behavior episodes per policy level")
    n.add_argument("--deploy", default=d.deploy, help="deployment config (original, damping3, ...)")
    n.add_argument("--censored", choices=["hinge", "exclude"], default=d.censored,
                   help="ml: saturated entries as a one-sided residual (hinge) or left out")
    n.add_argument("--algo", choices=ALGOS, default=d.algo)
    n.add_argument("--steps", type=int, default=None, help="updates per policy (default: per task)")
    n.add_argument("--eval-episodes", type=int, default=d.eval_episodes)
    n.add_argument("--seed", type=int, default=d.seed)
    n.add_argument("--workers", type=int, default=d.workers)
    n.add_argument("--out", type=Path, default=None, help="output folder (default out/experiments/noise)")
    _json_arg(n)
    n.set_defaults(func=run_noise)


def run_noise(args: argparse.Namespace) -> int:
    from ohio_core.experiments import noise

    try:
        cfg = noise.NoiseConfig(task=args.task, levels=tuple(args.levels), segments=args.segments,
                                action_scale=args.action_scale, velocity_std=args.velocity_std,
                                bc_levels=tuple(args.bc_levels), episodes=args.episodes, deploy=args.deploy,
                                censored=args.censored, algo=args.algo, steps=args.steps,
                                eval_episodes=args.eval_episodes, seed=args.seed, workers=args.workers)
    except ValueError as exc:
        raise SystemExit(f"ohio experiment noise: {exc}") from None
    out = args.out or Path("out/experiments/noise")
    result = noise.run(cfg, out)
    print(f"\nGoal recovery against the true goals, {cfg.segments} segments per level (k = {cfg.k}); "
          f"noise std = f * torque limit per joint:")
    print(table(*noise.table_rows(result)))
    if result["scores"]:
        print(f"\nNormalized score, mean +- s.e. over {cfg.eval_episodes} episodes (success rate); task {cfg.task}, "
              f"{cfg.algo}, data from the noisy original OSC, deployed under {cfg.deploy} without noise:")
        print(table(*noise.score_rows(result)))
    print(f"\nwrote {out}/result.json, recovery.png and scores.png ({result['seconds']['total']:.0f} s)")
    return _emit(noise.summary_json(result), args.json)


def _add_mixed_parser(ex) -> None:
    from ohio_core.experiments.mixed import RELABELINGS, MixedConfig

    d = MixedConfig()
    m = ex.add_parser("mixed", help="data mixing OSC, QP and flat-policy parts: per-part vs deployment relabeling",
                      description="Collect parts with the original OSC (kp 150), the QP controller and the flat torque "
                                  "policy; relabel per part with its source controller's inverse where known "
                                  "(source) or everything with the deployment config's inverse (deployment); train "
                                  "and evaluate with the standard and flat baselines under each deployment config.")
    m.add_argument("--task", choices=["reach", "lift"], default=d.task)
    m.add_argument("--episodes", type=int, default=d.episodes, help="behavior episodes over all parts")
    m.add_argument("--shares", type=float, nargs=3, default=list(d.shares), metavar=("OSC", "QP", "FLAT"),
                   help="shares of the episodes per part")
    m.add_argument("--deploy", nargs="+", default=list(d.deploy), help="deployment configs (damping3, qp, ...)")
    m.add_argument("--relabelings", nargs="+", default=list(RELABELINGS), choices=RELABELINGS)
    m.add_argument("--algo", choices=ALGOS, default=d.algo)
    m.add_argument("--steps", type=int, default=None, help="updates per policy (default: per task)")
    m.add_argument("--eval-episodes", type=int, default=d.eval_episodes)
    m.add_argument("--seed", type=int, default=d.seed)
    m.add_argument("--workers", type=int, default=d.workers)
    m.add_argument("--out", type=Path, default=None, help="output folder (default out/experiments/mixed)")
    _json_arg(m)
    m.set_defaults(func=run_mixed)


def run_mixed(args: argparse.Namespace) -> int:
    from ohio_core.experiments import mixed

    try:
        cfg = mixed.MixedConfig(task=args.task, episodes=args.episodes, shares=tuple(args.shares),
                                deploy=tuple(args.deploy), relabelings=tuple(args.relabelings), algo=args.algo,
                                steps=args.steps, eval_episodes=args.eval_episodes, seed=args.seed,
                                workers=args.workers)
    except ValueError as exc:
        raise SystemExit(f"ohio experiment mixed: {exc}") from None
    out = args.out or Path("out/experiments/mixed")
    result = mixed.run(cfg, out)
    parts = ", ".join(f"{p} {v['episodes']}" for p, v in result["parts"].items())
    print(f"\nNormalized score, mean +- s.e. over {cfg.eval_episodes} episodes (success rate); task {cfg.task}, "
          f"{cfg.algo}, mixed data ({parts} episodes):")
    print(table(*mixed.table_rows(result)))
    print(f"\nwrote {out}/result.json and {out}/scores.png ({result['seconds']['total']:.0f} s)")
    return _emit(mixed.summary_json(result), args.json)


def run_model_error(args: argparse.Namespace) -> int:
    from ohio_core.experiments import model_error

    try:
        cfg = model_error.ModelErrorConfig(
            task=args.task, levels=tuple(args.levels), conditions=tuple(args.conditions), methods=tuple(args.methods),
            episodes=args.episodes, damping_per_level=args.damping_per_level,
            friction_per_level=args.friction_per_level, algo=args.algo, steps=args.steps,
            eval_episodes=args.eval_episodes, seed=args.seed, workers=args.workers)
    except ValueError as exc:
        raise SystemExit(f"ohio experiment model-error: {exc}") from None
    out = args.out or Path("out/experiments/model-error")
    result = model_error.run(cfg, out)
    rows, header = model_error.table_rows(result)
    print(f"\nGoal errors against the logged goals ({result['cells'][0]['recovery'][cfg.methods[0]]['segments']} "
          f"segments; recovered: within 1 mm and 0.01 rad) and normalized score, mean +- s.e. over "
          f"{cfg.eval_episodes} episodes (success rate); task {cfg.task}, {cfg.algo}:")
    print(table(rows, header))
    print(f"\nwrote {out}/result.json and {out}/model_error.png ({result['seconds']['total']:.0f} s)")
    return _emit(model_error.summary_json(result), args.json)


def run_learned_dynamics(args: argparse.Namespace) -> int:
    from ohio_core.experiments import learned_dynamics

    try:
        cfg = learned_dynamics.LearnedDynamicsConfig(
            task=args.task, plants=tuple(args.plants), episodes=args.episodes, dynamics_kind=args.dynamics_kind,
            dynamics_epochs=args.dynamics_epochs, algo=args.algo, steps=args.steps,
            eval_episodes=args.eval_episodes, seed=args.seed, workers=args.workers)
    except ValueError as exc:
        raise SystemExit(f"ohio experiment learned-dynamics: {exc}") from None
    out = args.out or Path("out/experiments/learned-dynamics")
    result = learned_dynamics.run(cfg, out)
    rows, header = learned_dynamics.dynamics_rows(result)
    print("\nOne-period prediction error on held-out episodes, learned and known (Pinocchio) model:")
    print(table(rows, header))
    rows, header = learned_dynamics.table_rows(result)
    print(f"\nState matching, goal errors against the logged goals (recovered: within 1 mm and 0.01 rad) and "
          f"normalized score, mean +- s.e. over {cfg.eval_episodes} episodes (success rate); task {cfg.task}, "
          f"{cfg.algo}:")
    print(table(rows, header))
    print(f"\nwrote {out}/result.json, {out}/dynamics.png and {out}/learned_dynamics.png "
          f"({result['seconds']['total']:.0f} s)")
    return _emit(learned_dynamics.summary_json(result), args.json)


def _emit(summary: dict, json_out: Path | None) -> int:
    """``--json [OUT]``: write the summary to OUT (unless "-") and end with it as one JSON line."""
    if json_out is not None and str(json_out) != "-":
        json_out.parent.mkdir(parents=True, exist_ok=True)
        json_out.write_text(json.dumps(summary, indent=1))
    if json_out is not None:
        emit_json(summary)
    return 0

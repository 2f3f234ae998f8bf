"""Controller tracking demo: step goals and scripted experts through the OSC and the QP."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from tqdm import tqdm

from controllers.description import Q_HOME
from controllers.goals import PoseGoal, so3_exp, so3_log
from controllers.osc import OSC
from controllers.qp import QP
from controllers.robot import ArmModel
from ohio_core import plotting
from ohio_core.envs.arm.env import GoalArmEnv, run_episode
from ohio_core.envs.arm.sim import ArmSim
from ohio_core.policies.scripted import EXPERTS

POS_TOL, ORI_TOL = 0.01, 0.05


def step_response(controller, sim: ArmSim, goal: PoseGoal, seconds: float = 2.0) -> dict:
    """Track a static goal from home; errors per control step and the largest torque ratio."""
    sim.reset(Q_HOME)
    n = int(round(seconds / sim.control_period))
    pos_err, ori_err, ratio = np.empty(n), np.empty(n), 0.0
    for i in range(n):
        tau = controller.act(sim.q, sim.qd, goal)
        ratio = max(ratio, float(np.max(np.abs(tau) / sim.tau_max)))
        sim.control_step(tau)
        p, R = sim.tcp_pose()
        pos_err[i] = np.linalg.norm(goal.p - p)
        ori_err[i] = np.linalg.norm(so3_log(goal.R @ R.T))
    inside = (pos_err < POS_TOL) & (ori_err < ORI_TOL)
    outside = np.flatnonzero(~inside)
    settle = (outside[-1] + 1 if outside.size else 0) * sim.control_period if inside[-1] else np.inf
    return {"pos_err": pos_err, "ori_err": ori_err, "settle_s": settle, "max_torque_ratio": ratio}


def random_goals(sim: ArmSim, n: int, rng: np.random.Generator) -> list[PoseGoal]:
    sim.reset(Q_HOME)
    p0, R0 = sim.tcp_pose()
    goals = []
    for _ in range(n):
        dp = rng.uniform(-1, 1, 3)
        dw = rng.uniform(-1, 1, 3)
        goals.append(PoseGoal(p0 + 0.15 * dp / np.linalg.norm(dp) * rng.uniform(0.3, 1.0),
                              so3_exp(0.5 * dw / np.linalg.norm(dw) * rng.uniform(0.3, 1.0)) @ R0))
    return goals


def expert_episodes(controller, task: str, n: int, seed: int) -> dict:
    env, expert = GoalArmEnv(controller, task), EXPERTS[task]()
    returns, successes = zip(*(run_episode(env, expert, seed + ep) for ep in range(n)))
    return {"success_rate": float(np.mean(successes)), "return_mean": float(np.mean(returns)),
            "return_se": float(np.std(returns, ddof=1) / np.sqrt(n)) if n > 1 else 0.0}


def _plot(path: Path, curves: dict, period: float) -> None:
    plt = plotting.pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6), sharex=True)
    colors = {"osc": "tab:blue", "qp": "tab:orange"}
    for name, runs in curves.items():
        for j, r in enumerate(runs):
            t = period * np.arange(1, len(r["pos_err"]) + 1)
            label = name.upper() if j == 0 else None
            axes[0].semilogy(t, np.maximum(r["pos_err"], 1e-6) * 1e3, color=colors[name], alpha=0.6, label=label)
            axes[1].semilogy(t, np.maximum(r["ori_err"], 1e-6), color=colors[name], alpha=0.6, label=label)
    axes[0].axhline(POS_TOL * 1e3, ls="--", c="k", lw=0.8)
    axes[1].axhline(ORI_TOL, ls="--", c="k", lw=0.8)
    axes[0].set(xlabel="time (s)", ylabel="position error (mm)", title="Step goals, 50 Hz")
    axes[1].set(xlabel="time (s)", ylabel="orientation error (rad)")
    axes[0].legend()
    plotting.save(fig, path, dpi=120)


def _picture(path: Path, sim: ArmSim) -> bool:
    """A frame from MuJoCo's offscreen renderer; False where no OpenGL backend works."""
    try:
        plotting.pyplot().imsave(path, sim.render(640, 480))
        return True
    except Exception as exc:  # no GL context on this machine: the demo goes on without a picture
        print(f"no picture: MuJoCo offscreen rendering unavailable ({type(exc).__name__}: {exc})")
        return False


def run(out: Path, n_goals: int = 8, n_episodes: int = 5, seed: int = 0) -> dict:
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    model = ArmModel()
    sim = ArmSim()
    controllers = {"osc": OSC(model), "qp": QP(model)}
    goals = random_goals(sim, n_goals, np.random.default_rng(seed))
    curves, tracking = {}, {}
    with tqdm(total=2 * n_goals, desc="step goals", unit="goal") as bar:
        for name, ctl in controllers.items():
            runs = []
            for g in goals:
                runs.append(step_response(ctl, sim, g))
                bar.update()
            curves[name] = runs
            tracking[name] = {
                "pos_err_mm_final_max": float(max(r["pos_err"][-1] for r in runs) * 1e3),
                "ori_err_rad_final_max": float(max(r["ori_err"][-1] for r in runs)),
                "settle_s_max": float(max(r["settle_s"] for r in runs)),
                "max_torque_ratio": float(max(r["max_torque_ratio"] for r in runs)),
            }
    experts = {}
    with tqdm(total=2 * 2, desc="expert episodes", unit="set") as bar:
        for task in EXPERTS:
            experts[task] = {}
            for name, ctl in controllers.items():
                experts[task][name] = expert_episodes(ctl, task, n_episodes, seed)
                bar.update()
    files = ["tracking.png", "summary.json"]
    _plot(out / "tracking.png", curves, sim.control_period)
    sim.reset(Q_HOME, target=goals[0].p)
    if _picture(out / "arm.png", sim):
        files.append("arm.png")
    result = {"tracking": tracking, "experts": experts, "qp_fallbacks": controllers["qp"].fallbacks,
              "files": files, "seed": seed, "goals": n_goals, "episodes": n_episodes}
    (out / "summary.json").write_text(json.dumps(result, indent=2))
    return result

"""Evaluate policies in the simulator with one protocol for every method.

- Episode i of an evaluation with seed S starts from ``env.reset(seed=seeds(S, n)[i])``: every
  method, and the two references, meet the same initial states.
- A goal-level policy acts every k control periods through the deployment controller
  (``GoalArmEnv``); a torque-level policy acts every period (``TorqueArmEnv``).
- Normalized score of an episode: 100 (R - R_random) / (R_expert - R_random), with R_random the
  mean return of uniform-random high-level actions and R_expert that of the scripted expert, both
  under the controller the expert was written for (``EXPERT_CONTROLLER``, the reference work's OSC)
  on the same seeds. Reported: mean and standard error over episodes.
"""

from __future__ import annotations

import functools
from dataclasses import asdict, dataclass

import numpy as np
from tqdm import tqdm

from controllers.base import make_controller
from controllers.config import OSCConfig
from controllers.description import DEFAULT_ROBOT
from controllers.robot import ArmModel
from ohio_core.envs.arm.env import GoalArmEnv, TorqueArmEnv, run_episode
from ohio_core.envs.arm.scene import SceneConfig
from ohio_core.envs.arm.tasks import OBS_LAYOUT, TaskConfig
from ohio_core.learning.policy import LEVEL_GOAL, Policy
from ohio_core.policies.scripted import EXPERTS, PACE
from ohio_core.video import real_time_fps, rollout_frames


#: the controller the scripted experts were written for, the 100 of the score: the reference work's OSC
#: (the OSC defaults without the joint-limit filter, which that law does not have)
EXPERT_CONTROLLER = OSCConfig(joint_limits=False, singularity_damping=0.0)


def seeds(seed: int, episodes: int) -> list[int]:
    if episodes < 1:
        raise ValueError(f"episodes must be >= 1, got {episodes}")
    return [int(s) for s in np.random.SeedSequence(seed).generate_state(episodes)]


def _se(x: np.ndarray) -> float:
    return float(np.std(x, ddof=1) / np.sqrt(len(x))) if len(x) > 1 else 0.0


@dataclass
class EvalResult:
    returns: list
    successes: list
    normalized: list
    reference: dict

    @property
    def summary(self) -> dict:
        n = np.asarray(self.normalized)
        return {"mean": float(n.mean()), "se": _se(n), "success_rate": float(np.mean(self.successes)),
                "return_mean": float(np.mean(self.returns)), "return_se": _se(np.asarray(self.returns)),
                "episodes": len(self.returns)}

    def to_dict(self) -> dict:
        return {**self.summary, **asdict(self)}


class RandomPolicy:
    """Uniform-random normalized actions, seeded per episode from its seed."""

    def __init__(self, dim: int, seed: int = 0):
        self.dim, self.rng = dim, np.random.default_rng(seed)

    def __call__(self, obs):
        return self.rng.uniform(-1.0, 1.0, self.dim)


def _rollouts(env, make_policy, episode_seeds, desc: str | None) -> tuple[list, list]:
    returns, successes = [], []
    for s in tqdm(episode_seeds, desc=desc, unit="ep", disable=desc is None, dynamic_ncols=True, leave=False):
        r, ok = run_episode(env, make_policy(s), seed=s)
        returns.append(r)
        successes.append(ok)
    return returns, successes


@functools.lru_cache(maxsize=16)
def reference(task: str, episodes: int, seed: int, k: int = 5, horizon: int | None = None,
              scene: SceneConfig = SceneConfig(), robot: str = DEFAULT_ROBOT) -> dict:
    """Mean returns of the random and the expert high-level policy (the 0 and 100 of the score),
    in the simulated plant ``scene`` with the arm ``robot``."""
    tc = TaskConfig(name=task, k=k, horizon=horizon)
    ss = seeds(seed, episodes)
    env = GoalArmEnv(make_controller(EXPERT_CONTROLLER, ArmModel(robot)), tc, scene)
    dim = env.action_space.shape[0]
    r_rand, _ = _rollouts(env, lambda s: RandomPolicy(dim, s), ss, None)
    r_exp, s_exp = _rollouts(env, lambda s: EXPERTS[task](), ss, None)
    return {"random_return": float(np.mean(r_rand)), "expert_return": float(np.mean(r_exp)),
            "expert_success_rate": float(np.mean(s_exp)), "episodes": episodes, "seed": seed}


def normalize(returns, ref: dict) -> list:
    span = ref["expert_return"] - ref["random_return"]
    if span <= 0:
        raise ValueError(f"expert return {ref['expert_return']:.3g} is not above random {ref['random_return']:.3g}")
    return [100.0 * (r - ref["random_return"]) / span for r in returns]


def policy_env(policy: Policy, controller_config=None, horizon: int | None = None,
               allow_controller_change: bool = False, scene: SceneConfig = SceneConfig()):
    """The env ``policy`` acts in: goal policies through a controller built from ``controller_config``
    (default: the one recorded in the model), torque policies directly; checks that they fit."""
    config = controller_config if controller_config is not None else policy.controller_config()
    policy.check(policy.task, OBS_LAYOUT, policy.k, config if policy.level == LEVEL_GOAL else None,
                 allow_controller_change)
    if policy.level == LEVEL_GOAL:
        tc = TaskConfig(name=policy.task, k=policy.k, horizon=horizon, control_period=config.control_period)
        return GoalArmEnv(make_controller(config, ArmModel(policy.robot)), tc, scene)
    return TorqueArmEnv(TaskConfig(name=policy.task, k=1, horizon=horizon), scene, robot=policy.robot)


def record(policy: Policy, controller_config=None, episodes: int = 1, seed: int = 0, horizon: int | None = None,
           allow_controller_change: bool = False, scene: SceneConfig = SceneConfig()) -> tuple[list, list, float]:
    """(frames, successes, real-time fps) of the first ``episodes`` episodes ``evaluate`` runs with the
    same seed, one after the other (``ohio_core.video``): a frame per goal, or every 5 torque steps."""
    env = policy_env(policy, controller_config, horizon, allow_controller_change, scene)
    every = 1 if policy.level == LEVEL_GOAL else 5
    frames, successes = [], []
    for s in seeds(seed, episodes):
        run, ok = rollout_frames(env, policy, s, every)
        frames += run
        successes.append(ok)
    return frames, successes, real_time_fps(env, every)


def evaluate(policy: Policy, controller_config=None, episodes: int = 20, seed: int = 0,
             horizon: int | None = None, allow_controller_change: bool = False, progress: bool = False,
             scene: SceneConfig = SceneConfig()) -> EvalResult:
    """Roll ``policy`` out for ``episodes`` episodes; goal policies go through a controller built
    from ``controller_config`` (default: the one recorded in the model). ``scene``: the simulated
    plant, for the policy and for the references of the normalized score alike."""
    env = policy_env(policy, controller_config, horizon, allow_controller_change, scene)
    ref = reference(policy.task, episodes, seed, policy.k if policy.level == LEVEL_GOAL else 5, horizon, scene,
                    policy.robot)
    desc = f"eval {policy.task}/{policy.meta.get('method') or policy.level}" if progress else None
    returns, successes = _rollouts(env, lambda s: policy, seeds(seed, episodes), desc)
    return EvalResult(returns, [bool(s) for s in successes], normalize(returns, ref), ref)


def evaluate_expert(task: str, controller_config, episodes: int = 20, seed: int = 0, pace: float = PACE,
                    k: int = 5, horizon: int | None = None, scene: SceneConfig = SceneConfig()) -> EvalResult:
    """The scripted expert's own closed loop through a controller, scored as ``evaluate`` scores: the
    expert knows that controller (its actions are normalized by the controller's ``output_max``) and
    moves at ``pace`` (``policies.scripted``; the behavior data's pace is ``PACE``, 1 is full speed).
    What a high-level policy can reach under that controller, at most, as far as the expert shows."""
    tc = TaskConfig(name=task, k=k, horizon=horizon, control_period=controller_config.control_period)
    env = GoalArmEnv(make_controller(controller_config), tc, scene)
    ref = reference(task, episodes, seed, k, horizon, scene)
    returns, successes = _rollouts(env, lambda s: EXPERTS[task](output_max=controller_config.output_max, pace=pace),
                                   seeds(seed, episodes), None)
    return EvalResult(returns, [bool(s) for s in successes], normalize(returns, ref), ref)

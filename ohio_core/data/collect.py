"""Run behavior policies in the simulator and log what a robot would log.

``collect`` returns the data in memory (a ``Trajectories``); ``collect_bag`` writes the same data
into a rosbag2 bag (``data.bags``: topics, timing convention, how episodes and rewards are
recovered). Behavior policies: ``policies.behavior``.

Seeding: episode e draws everything (initial state, action noise, the ``mix`` choice) from
``SeedSequence(seed).spawn(...)[e]``, so an episode's data depend only on (seed, e, settings),
not on how many episodes are collected.

``torque_noise`` (a fraction f of the torque limits) makes the goal-level low level stochastic,
tau = clip(pi_LL(s, g) + eps), eps ~ N(0, diag((f tau_max)^2)) per control period
(``envs.arm.noise``); the logged torque is the applied noisy one. The noise draws from a child of
the episode's seed sequence, so the rest of an episode's randomness does not change with f.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
from tqdm import tqdm

from controllers.base import controller_config, make_controller
from controllers.goals import matrix_to_quat
from controllers.robot import ArmModel
from ohio_core.data.bags import BagError, BagWriter, EpisodeLog, bag_size, logs_to_trajectories
from ohio_core.data.topics import TopicMap
from ohio_core.data.trajectory import Trajectories
from ohio_core.envs.arm.env import GoalArmEnv, TorqueArmEnv
from ohio_core.envs.arm.noise import NoisyController, torque_sigma
from ohio_core.envs.arm.scene import SceneConfig
from ohio_core.envs.arm.tasks import TaskConfig, obs_slices
from ohio_core.policies.behavior import LEVEL_GOAL, MixPolicy, make_policy

_FINGER = obs_slices()["finger_opening"]


class _Recorder:
    """Controller proxy for ``GoalArmEnv``: records, at every control step, the commanded torque
    and the finger joints (the env's trace holds the applied torque and no finger joints)."""

    def __init__(self, controller, sim):
        self.controller, self.sim, self.config = controller, sim, controller.config
        m = sim.model
        self._fdof = np.array([m.jnt_dofadr[m.joint(j).id] for j in sim.robot.gripper_joints], dtype=int)
        self.clear()

    def clear(self) -> None:
        self.tau, self.finger_q, self.finger_qd = [], [], []

    def fingers(self) -> tuple[np.ndarray, np.ndarray]:
        d = self.sim.data
        return d.qpos[self.sim.qpos_fingers].copy(), d.qvel[self._fdof].copy()

    def snapshot(self) -> None:
        fq, fqd = self.fingers()
        self.finger_q.append(fq)
        self.finger_qd.append(fqd)

    def goal_from_action(self, action, q):
        return self.controller.goal_from_action(action, q)

    def act(self, q, qd, goal):
        tau = self.controller.act(q, qd, goal)
        self.snapshot()
        self.tau.append(np.array(tau, float))
        return tau


def _episode_log(env, rec: _Recorder, traces: list[dict], episode: int, policy: str, terminated: bool,
                 truncated: bool, goals: list | None, goal_new: list | None, grip_every_step: bool) -> EpisodeLog:
    tr = {k: np.concatenate([x[k] for x in traces]) for k in traces[0]}
    sim = env.sim
    obj_p, obj_R = env.task.object_pose()
    fq, fqd = rec.fingers()
    T = len(tr["t"])
    uses_gripper = env.task.uses_gripper
    gripper = tr["gripper"].astype(float) if uses_gripper else None
    return EpisodeLog(
        episode=episode, t=np.r_[tr["t"], sim.time], q=np.vstack([tr["q"], sim.q]), qd=np.vstack([tr["qd"], sim.qd]),
        effort=np.vstack([np.zeros((1, sim.n)), tr["tau"]]), tau=np.array(rec.tau), reward=tr["reward"].astype(float),
        success=tr["success"].astype(bool), object_pos=np.vstack([tr["object_pos"], obj_p]),
        object_quat=np.vstack([tr["object_quat"], matrix_to_quat(obj_R)]),
        target=np.vstack([tr["target"], env.task.target()]), angles=np.vstack([tr["angles"], env.task.angles()]),
        finger_opening=np.r_[tr["obs"][:, _FINGER][:, 0], sim.finger_opening],
        timeout=bool(truncated), terminal=bool(terminated and not truncated),
        finger_q=np.vstack(rec.finger_q + [fq]), finger_qd=np.vstack(rec.finger_qd + [fqd]),
        goal=np.array(goals) if goals is not None else None,
        goal_new=np.array(goal_new, bool) if goal_new is not None else None,
        gripper=gripper,
        gripper_new=(np.ones(T, bool) if grip_every_step else np.array(goal_new, bool)) if uses_gripper else None,
        policy=policy, env_obs=tr["obs"])


def _rollout_goal(env: GoalArmEnv, policy, rng: np.random.Generator, env_seed: int, episode: int) -> EpisodeLog:
    rec = env.controller
    rec.clear()
    obs, _ = env.reset(seed=env_seed)
    policy.reset(rng)
    traces, goals, goal_new = [], [], []
    terminated = truncated = False
    while not (terminated or truncated):
        obs, _, terminated, truncated, info = env.step(policy(obs))
        tr = info["trace"]
        n = len(tr["t"])
        traces.append(tr)
        g = info["goal"]
        goals += [np.r_[g.p, matrix_to_quat(g.R)]] * n
        goal_new += [True] + [False] * (n - 1)
    return _episode_log(env, rec, traces, episode, policy.name, terminated, truncated, goals, goal_new, False)


def _rollout_torque(env: TorqueArmEnv, rec: _Recorder, policy, rng: np.random.Generator, env_seed: int,
                    episode: int) -> EpisodeLog:
    rec.clear()
    obs, _ = env.reset(seed=env_seed)
    policy.reset(rng)
    traces = []
    terminated = truncated = False
    sim = env.sim
    while not (terminated or truncated):
        a = policy(obs, sim.q, sim.qd)
        rec.snapshot()
        rec.tau.append(np.clip(a[:sim.n], -1.0, 1.0) * sim.tau_max)     # what TorqueArmEnv commands
        obs, _, terminated, truncated, info = env.step(a)
        traces.append(info["trace"])
    return _episode_log(env, rec, traces, episode, policy.name, terminated, truncated, None, None, True)


class _Collector:
    def __init__(self, task: str, policy: str, config, k: int, horizon: int | None, model=None,
                 torque_noise: float = 0.0, scene: SceneConfig = SceneConfig()):
        self.config = controller_config(config)
        self.task_config = TaskConfig(name=task, horizon=horizon, k=k, control_period=self.config.control_period)
        self.scene = scene
        self.controller = make_controller(self.config, model)
        self.torque_noise = float(torque_noise)
        sigma = torque_sigma(self.torque_noise, self.controller.tau_max)
        self.noisy = NoisyController(self.controller, sigma) if self.torque_noise > 0 else None
        low_level = self.noisy or self.controller
        self.goal_env = GoalArmEnv(low_level, self.task_config, scene, robot=self.controller.model.robot)
        self.goal_env.controller = _Recorder(low_level, self.goal_env.sim)
        self._torque_env = None
        self.policy = make_policy(policy, task, self.controller, self.goal_env.sim.tau_max, k)

    @property
    def torque_env(self) -> tuple[TorqueArmEnv, _Recorder]:
        if self._torque_env is None:
            env = TorqueArmEnv(self.task_config, self.scene, robot=self.controller.model.robot)
            self._torque_env = (env, _Recorder(self.controller, env.sim))
        return self._torque_env

    def episode(self, ss: np.random.SeedSequence, episode: int) -> EpisodeLog:
        rng = np.random.default_rng(ss)
        env_seed = int(rng.integers(2**31))
        pol = self.policy.choose(rng) if isinstance(self.policy, MixPolicy) else self.policy
        if self.noisy is not None:
            self.noisy.reset(np.random.default_rng(ss.spawn(1)[0]))
        if pol.level == LEVEL_GOAL:
            return _rollout_goal(self.goal_env, pol, rng, env_seed, episode)
        env, rec = self.torque_env
        return _rollout_torque(env, rec, pol, rng, env_seed, episode)

    def meta(self, policy: str, seed: int, episodes: int) -> dict:
        meta = {"task": self.task_config.name, "policy": policy, "controller": self.config.to_dict(),
                "k": self.task_config.k, "horizon": self.task_config.steps, "seed": seed, "episodes": episodes,
                "control_period": self.task_config.control_period, "robot": self.controller.model.robot.name}
        return {**meta, "torque_noise": self.torque_noise} if self.torque_noise > 0 else meta


def iter_episodes(task: str, policy: str, controller_config=None, episodes: int = 1, seed: int = 0, k: int = 5,
                  horizon: int | None = None, first_episode: int = 0, progress: bool = False,
                  model: ArmModel | None = None, torque_noise: float = 0.0) -> Iterator[EpisodeLog]:
    """Roll out ``episodes`` episodes of ``policy`` on ``task``; yields one ``EpisodeLog`` each."""
    if episodes < 1:
        raise ValueError(f"episodes must be >= 1, got {episodes}")
    col = _Collector(task, policy, controller_config, k, horizon, model, torque_noise)
    yield from _episodes(col, policy, episodes, seed, first_episode, progress)


def _episodes(col: _Collector, policy: str, episodes: int, seed: int, first_episode: int, progress: bool):
    seqs = np.random.SeedSequence(seed).spawn(first_episode + episodes)[first_episode:]
    successes = 0
    with tqdm(total=episodes, desc=f"collect {col.task_config.name}/{policy}", unit="ep",
              disable=not progress, dynamic_ncols=True) as bar:
        for i, ss in enumerate(seqs):
            log = col.episode(ss, first_episode + i)
            successes += log.any_success
            bar.set_postfix(success=f"{successes}/{i + 1}", refresh=False)
            bar.update()
            yield log


def collect(task: str, policy: str, controller_config=None, episodes: int = 1, seed: int = 0, k: int = 5,
            horizon: int | None = None, first_episode: int = 0, progress: bool = False,
            model: ArmModel | None = None, torque_noise: float = 0.0,
            scene: SceneConfig = SceneConfig()) -> Trajectories:
    """Collect in memory: the rows ``read_bag`` would return for the bag ``collect_bag`` writes
    with the same arguments. ``meta`` records the settings and each episode's behavior policy.
    ``scene``: the simulated plant (e.g. with joint friction the controller's model lacks)."""
    col = _Collector(task, policy, controller_config, k, horizon, model, torque_noise, scene)
    logs = list(_episodes(col, policy, episodes, seed, first_episode, progress))
    meta = col.meta(policy, seed, episodes)
    meta["episode_policy"] = [lg.policy for lg in logs]
    return logs_to_trajectories(logs, col.controller.model, meta)


def collect_bag(out: str | Path, task: str, policy: str, controller_config=None, episodes: int = 1, seed: int = 0,
                k: int = 5, horizon: int | None = None, storage: str = "mcap", topic_map: TopicMap | None = None,
                progress: bool = True, model: ArmModel | None = None, compress: bool | None = None,
                torque_noise: float = 0.0) -> dict:
    """Collect into a new rosbag2 folder ``out`` (an empty existing folder is reused; a non-empty
    one is refused). ``compress``: see ``BagWriter``. Returns a summary: episodes, control steps,
    success rate, mean return, messages per topic, bag size."""
    out = Path(out)
    if episodes < 1:
        raise ValueError(f"episodes must be >= 1, got {episodes}")
    if out.exists():
        if not out.is_dir() or any(out.iterdir()):
            raise BagError(f"{out}: exists and is not an empty folder; refusing to overwrite (choose a new --out)")
    col = _Collector(task, policy, controller_config, k, horizon, model, torque_noise)
    meta = col.meta(policy, seed, episodes)
    robot = col.controller.model.robot
    if topic_map is None and robot.joints != TopicMap().arm_joints:
        topic_map = TopicMap().for_robot(robot)
    if out.exists():
        out.rmdir()             # rosbags creates the folder itself
    steps, successes, returns, used = 0, 0, [], {}
    writer = BagWriter(out, topic_map, storage, custom_data={"ohio.collect": json.dumps(meta)}, compress=compress)
    with writer:
        for log in _episodes(col, policy, episodes, seed, 0, progress):
            writer.write_episode(log)
            steps += log.periods
            successes += log.any_success
            returns.append(log.episode_return)
            used[log.policy] = used.get(log.policy, 0) + 1
        writer.custom_data["ohio.episode_policy"] = json.dumps(used)
    return {"bag": str(out), "storage": storage, "task": meta["task"], "policy": policy,
            "controller": col.config.kind, "episodes": len(returns), "control_steps": steps,
            "success_rate": successes / len(returns), "return_mean": float(np.mean(returns)),
            "messages": dict(writer.counts), "bytes": bag_size(out), "seed": seed, "k": meta["k"],
            "horizon": meta["horizon"], "policies": used}

"""gymnasium environments on the arm tasks, with two action interfaces.

- ``GoalArmEnv`` (high level): action = normalized end-effector goal in [-1, 1]^6 (+ gripper in
  [-1, 1] for lift: grasp where >= 0, else open; the hand's command is binary,
  ``controllers.goals.gripper_command``), held for ``k`` control steps while a low-level controller
  turns it into torques at 50 Hz. The controller is passed in (anything with
  ``goal_from_action(action, q)`` and ``act(q, qd, goal)``, e.g. ``controllers.OSC``/``QP``).
- ``TorqueArmEnv`` (low level): action = joint torques normalized by the limits, [-1, 1]^n (n arm joints)
  (+ gripper), one control step per env step: the interface of flat end-to-end baselines.

Both expose per control step what a robot would log, in ``info["trace"]`` (arrays with a leading
axis of length k, or 1). Row i is control period i: the state at its start (t, q, qd, obs, tcp_pos,
tcp_quat (x, y, z, w), object_pos, object_quat, target, angles: ``envs.arm.tasks``), the torque applied
over it (tau, after the actuator limits) and the gripper command, and what the task reported at its
end (reward, success).
The env reward is the sum of the trace's rewards.
Episodes end by truncation after ``horizon`` control steps; ``info["is_success"]`` says whether
the task succeeded at any control step so far.
"""

from __future__ import annotations

from pathlib import Path

import gymnasium as gym
import mujoco
import numpy as np

from controllers.description import RobotDescription
from controllers.goals import gripper_command
from ohio_core.envs.arm.scene import SceneConfig
from ohio_core.envs.arm.tasks import OBS_DIM, TASKS, TaskConfig

TRACE_FIELDS = ("t", "q", "qd", "obs", "tcp_pos", "tcp_quat", "object_pos", "object_quat", "target", "angles",
                "tau", "gripper", "reward", "success")


def _quat_xyzw(R: np.ndarray) -> np.ndarray:
    q = np.zeros(4)
    mujoco.mju_mat2Quat(q, np.ascontiguousarray(R).reshape(-1))
    return np.array([q[1], q[2], q[3], q[0]])


class ArmEnv(gym.Env):
    metadata = {"render_modes": ["rgb_array"], "render_fps": 50}

    def __init__(self, task: str | TaskConfig = "reach", scene: SceneConfig = SceneConfig(),
                 render_mode: str | None = None, robot: str | Path | RobotDescription | None = None):
        self.config = task if isinstance(task, TaskConfig) else TaskConfig(name=task)
        self.task = TASKS[self.config.name](scene, self.config.control_period, self.config.home_noise, robot=robot)
        self.sim = self.task.sim
        self.render_mode = render_mode
        self.observation_space = gym.spaces.Box(-np.inf, np.inf, (OBS_DIM,), np.float64)
        self._steps = 0
        self._any_success = False

    @property
    def horizon(self) -> int:
        return self.config.steps

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        self.task.reset(self.np_random)
        self._steps, self._any_success = 0, False
        return self.task.observation(), {"is_success": False}

    def _gripper_command(self, action: np.ndarray) -> float:
        return gripper_command(action[-1]) if self.task.uses_gripper else 0.0

    def _control_step(self, tau: np.ndarray, gripper: float, trace: dict) -> None:
        sim = self.sim
        p, R = sim.tcp_pose()
        op, oR = self.task.object_pose()
        before = (("t", sim.time), ("q", sim.q), ("qd", sim.qd), ("obs", self.task.observation()),
                  ("tcp_pos", p), ("tcp_quat", _quat_xyzw(R)), ("object_pos", op), ("object_quat", _quat_xyzw(oR)),
                  ("target", self.task.target()), ("angles", self.task.angles()))
        sim.control_step(tau, gripper)
        self._steps += 1
        reward, success = self.task.reward_success()
        self._any_success |= success
        for key, value in before + (("tau", sim.tau), ("gripper", gripper), ("reward", reward),
                                    ("success", success)):
            trace[key].append(value)

    def _finish(self, trace: dict):
        trace = {k: np.asarray(v) for k, v in trace.items()}
        info = {"trace": trace, "is_success": self._any_success, "success": bool(trace["success"][-1])}
        truncated = self._steps >= self.horizon
        return self.task.observation(), float(trace["reward"].sum()), False, truncated, info

    def _check_action(self, action) -> np.ndarray:
        a = np.asarray(action, dtype=float)
        if a.shape != self.action_space.shape:
            raise ValueError(f"action must have shape {self.action_space.shape}, got {a.shape}")
        if not np.isfinite(a).all():
            raise ValueError(f"action is not finite: {a}")
        if self._steps >= self.horizon:
            raise RuntimeError("episode is over (horizon reached): call reset()")
        return a

    def render(self):
        return self.sim.render() if self.render_mode == "rgb_array" else None


class GoalArmEnv(ArmEnv):
    """High-level interface: a goal every k control steps, the controller in the loop."""

    def __init__(self, controller, task: str | TaskConfig = "reach", scene: SceneConfig = SceneConfig(),
                 render_mode: str | None = None, robot: str | Path | RobotDescription | None = None):
        model = getattr(controller, "model", None)
        if robot is None and model is not None:
            robot = model.robot
        super().__init__(task, scene, render_mode, robot)
        if model is not None and model.joint_names != self.sim.robot.joints:
            raise ValueError(f"the controller is made for robot {model.robot.name} ({model.nq} joints), "
                             f"the simulated arm is {self.sim.robot.name}")
        mode = getattr(getattr(controller, "config", None), "gravity_compensation", "controller")
        if mode != self.sim.gravity_compensation:
            twice = "twice" if mode == "controller" else "by neither"
            raise ValueError(f"controller gravity_compensation {mode!r} does not match the simulated arm's "
                             f"{self.sim.gravity_compensation!r} (g(q) would be added {twice}); "
                             f"use gravity_compensation: {self.sim.gravity_compensation} here")
        self.controller = controller
        n = 6 + int(self.task.uses_gripper)
        self.action_space = gym.spaces.Box(-1.0, 1.0, (n,), np.float64)

    def step(self, action):
        a = self._check_action(action)
        goal = self.controller.goal_from_action(a[:6], self.sim.q)
        gripper = self._gripper_command(a)
        trace = {k: [] for k in TRACE_FIELDS}
        for _ in range(min(self.config.k, self.horizon - self._steps)):
            self._control_step(self.controller.act(self.sim.q, self.sim.qd, goal), gripper, trace)
        obs, reward, terminated, truncated, info = self._finish(trace)
        info["goal"] = goal
        return obs, reward, terminated, truncated, info


class TorqueArmEnv(ArmEnv):
    """Low-level interface: normalized joint torques every control step."""

    def __init__(self, task: str | TaskConfig = "reach", scene: SceneConfig = SceneConfig(),
                 render_mode: str | None = None, robot: str | Path | RobotDescription | None = None):
        super().__init__(task, scene, render_mode, robot)
        n = self.sim.n + int(self.task.uses_gripper)
        self.action_space = gym.spaces.Box(-1.0, 1.0, (n,), np.float64)

    def step(self, action):
        a = self._check_action(action)
        tau = np.clip(a[:self.sim.n], -1.0, 1.0) * self.sim.tau_max
        trace = {k: [] for k in TRACE_FIELDS}
        self._control_step(tau, self._gripper_command(a), trace)
        return self._finish(trace)


def run_episode(env: ArmEnv, policy, seed: int | None = None) -> tuple[float, bool]:
    """Roll ``policy`` (obs -> action; its ``reset()`` is called first if it has one) through one
    episode of ``env``: (return, whether the task succeeded at any control step)."""
    obs, _ = env.reset(seed=seed)
    if hasattr(policy, "reset"):
        policy.reset()
    total, done, info = 0.0, False, {"is_success": False}
    while not done:
        obs, reward, terminated, truncated, info = env.step(policy(obs))
        total += reward
        done = terminated or truncated
    return total, bool(info["is_success"])

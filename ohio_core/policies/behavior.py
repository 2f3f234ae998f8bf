"""Behavior policies that generate the logged data, by name.

=============  ======  ===================================================================================
name           level   what it does
=============  ======  ===================================================================================
``expert``     goal    the task's scripted expert (``policies.scripted``) on the task observation; its
                       normalized action becomes a TCP goal through the controller (``GoalArmEnv``),
                       held for k control periods
``noisyS``     goal    the expert's action + N(0, S^2) on every normalized component (gripper too),
                       clipped to [-1, 1]; S in ``NOISE_LEVELS`` (``noisy0.1``, ``noisy0.3``, ``noisy0.5``)
``flat``       torque  end-to-end torques: every control period, the torque the controller commands for
                       the expert's current goal (re-planned every k periods, never published) + N(0,
                       (``FLAT_TORQUE_NOISE`` tau_max)^2) per joint, clipped to the limits; stepped one
                       period at a time (``TorqueArmEnv``). Its bags have no ``ee_goal``.
``mix``        per     each episode one of the above, drawn uniformly with the episode's generator
               episode
=============  ======  ===================================================================================

Every policy draws its randomness from the ``numpy.random.Generator`` given to ``reset``.
"""

from __future__ import annotations

import numpy as np

from ohio_core.envs.arm.tasks import TASKS
from ohio_core.policies.scripted import EXPERTS

NOISE_LEVELS = (0.1, 0.3, 0.5)
FLAT_TORQUE_NOISE = 0.05
LEVEL_GOAL, LEVEL_TORQUE = "goal", "torque"
BASE_POLICIES = ("expert",) + tuple(f"noisy{s:g}" for s in NOISE_LEVELS) + ("flat",)
POLICY_NAMES = BASE_POLICIES + ("mix",)


def _expert(task: str, output_max):
    return EXPERTS[task](output_max)


class GoalPolicy:
    """The scripted expert, optionally with Gaussian noise on its normalized action."""

    level = LEVEL_GOAL

    def __init__(self, task: str, output_max, noise_std: float = 0.0, name: str | None = None):
        if noise_std < 0:
            raise ValueError(f"noise_std must be >= 0, got {noise_std}")
        self.expert = _expert(task, output_max)
        self.noise_std = float(noise_std)
        self.name = name or ("expert" if noise_std == 0 else f"noisy{noise_std:g}")
        self.rng = np.random.default_rng(0)

    def reset(self, rng: np.random.Generator) -> None:
        self.rng = rng
        self.expert.reset()

    def __call__(self, obs: np.ndarray) -> np.ndarray:
        a = self.expert(obs)
        if self.noise_std > 0:
            a = np.clip(a + self.rng.normal(0.0, self.noise_std, a.shape), -1.0, 1.0)
        return a


class FlatPolicy:
    """Torque level: the controller's torque for the expert's goal, plus torque noise.

    ``controller`` is anything with ``goal_from_action(action, q)`` and ``act(q, qd, goal)``;
    ``tau_max`` the actuator limits the normalized action refers to.
    """

    level = LEVEL_TORQUE

    def __init__(self, task: str, controller, tau_max, k: int = 5, torque_noise: float = FLAT_TORQUE_NOISE,
                 name: str = "flat"):
        if k < 1 or torque_noise < 0:
            raise ValueError(f"k must be >= 1 and torque_noise >= 0, got {k}, {torque_noise}")
        self.expert = _expert(task, controller.config.output_max)
        self.controller, self.k, self.name = controller, int(k), name
        self.tau_max = np.asarray(tau_max, float)
        self.torque_noise = float(torque_noise)
        self.uses_gripper = TASKS[task].uses_gripper
        self.rng = np.random.default_rng(0)
        self.goal, self.grip, self._count = None, -1.0, 0

    def reset(self, rng: np.random.Generator) -> None:
        self.rng = rng
        self.expert.reset()
        self.goal, self.grip, self._count = None, -1.0, 0

    def __call__(self, obs: np.ndarray, q: np.ndarray, qd: np.ndarray) -> np.ndarray:
        """Normalized torques in [-1, 1]^7 (+ the gripper action for tasks with a gripper)."""
        if self._count % self.k == 0:
            a = self.expert(obs)
            self.goal = self.controller.goal_from_action(a[:6], q)
            if self.uses_gripper:
                self.grip = float(a[6])
        self._count += 1
        tau = self.controller.act(q, qd, self.goal)
        tau = tau + self.rng.normal(0.0, 1.0, len(tau)) * self.torque_noise * self.tau_max
        a = np.clip(tau / self.tau_max, -1.0, 1.0)
        return np.r_[a, self.grip] if self.uses_gripper else a


class MixPolicy:
    """One member policy per episode, drawn uniformly with the episode's generator."""

    level = "mix"
    name = "mix"

    def __init__(self, members: dict):
        if not members:
            raise ValueError("MixPolicy needs at least one member")
        self.members = dict(members)

    def choose(self, rng: np.random.Generator):
        names = sorted(self.members)
        return self.members[names[int(rng.integers(len(names)))]]


def noise_of(name: str) -> float | None:
    """The action-noise std of a policy name: 0 for ``expert``, S for ``noisyS``, None otherwise.
    Raises ValueError for names that are not behavior policies."""
    if name in ("flat", "mix"):
        return None
    if name == "expert":
        return 0.0
    if name.startswith("noisy"):
        try:
            std = float(name[len("noisy"):])
        except ValueError:
            std = -1.0
        if not 0 < std < float("inf"):
            raise ValueError(f"unknown policy {name!r}: noisy<std> needs a positive std, e.g. noisy0.3")
        return std
    raise ValueError(f"unknown policy {name!r}; expected one of {list(POLICY_NAMES)} (or noisy<std>)")


def make_policy(name: str, task: str, controller, tau_max, k: int = 5):
    """A behavior policy by name (``POLICY_NAMES``) for ``task``, acting through ``controller``."""
    std = noise_of(name)
    if std is not None:
        return GoalPolicy(task, controller.config.output_max, std, name)
    if name == "flat":
        return FlatPolicy(task, controller, tau_max, k)
    return MixPolicy({n: make_policy(n, task, controller, tau_max, k) for n in BASE_POLICIES})

"""Reach, lift and door: what the robot is asked to do, how it is rewarded, what it observes.

A task owns an ``ArmSim`` and defines, per control step (50 Hz): the observation vector, a dense
shaped reward in [0, 1] and a success flag. The gymnasium environments in ``envs.arm.env`` put an
action interface on top.

Observation layout (``OBS_LAYOUT``; rotations as the first two columns of the matrix, which is
continuous, unlike a quaternion)::

    q(7) qd(7) tcp_pos(3) tcp_rot6(6) finger_opening(1) object_pos(3) object_rot6(6) target_pos(3)
    door_angle(1) handle_angle(1)

q and qd are ``JOINT_SLOTS`` wide whatever the arm: an arm of n < 7 joints fills the first n slots
and leaves the rest zero, so one layout (and the pipeline that reads it) serves every robot.

The object is what the task is about: the cube (reach: out of the way; lift: to be lifted) or the
door handle's grasp point (door); the target is the reach target, the point the cube is lifted to,
or the door hinge's axis at the handle's height; the angles are the door's (0 without a door).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from pathlib import Path

from controllers.description import RobotDescription
from ohio_core.envs.arm.door import DoorConfig
from ohio_core.envs.arm.scene import SceneConfig
from ohio_core.envs.arm.sim import ArmSim

#: joint slots of q and qd in the observation: the most arm joints a task observes
JOINT_SLOTS = 7
OBS_LAYOUT: tuple[tuple[str, int], ...] = (
    ("q", 7), ("qd", 7), ("tcp_pos", 3), ("tcp_rot6", 6), ("finger_opening", 1),
    ("object_pos", 3), ("object_rot6", 6), ("target_pos", 3), ("door_angle", 1), ("handle_angle", 1),
)
OBS_DIM = sum(n for _, n in OBS_LAYOUT)


def obs_slices() -> dict[str, slice]:
    out, i = {}, 0
    for name, n in OBS_LAYOUT:
        out[name] = slice(i, i + n)
        i += n
    return out


def rot6(R: np.ndarray) -> np.ndarray:
    return np.asarray(R)[..., :, :2].swapaxes(-1, -2).reshape(np.shape(R)[:-2] + (6,))


def rot6_matrix(r6: np.ndarray) -> np.ndarray:
    """The rotation matrix of ``rot6`` (its first two columns; the third is their cross product)."""
    r6 = np.asarray(r6, float)
    a, b = r6[..., :3], r6[..., 3:]
    return np.stack([a, b, np.cross(a, b)], axis=-1)


@dataclass(frozen=True)
class TaskConfig:
    """``horizon`` counts control steps (50 Hz); ``k`` control steps per high-level step."""

    name: str = "reach"
    horizon: int | None = None       # None: the task's default
    k: int = 5
    control_period: float = 0.02
    home_noise: float = 0.05         # rad, uniform noise on the initial joint configuration

    def __post_init__(self):
        if self.name not in TASKS:
            raise ValueError(f"unknown task {self.name!r}; expected one of {sorted(TASKS)}")
        if self.k < 1:
            raise ValueError(f"k must be >= 1, got {self.k}")
        if self.horizon is not None and self.horizon < self.k:
            raise ValueError(f"horizon ({self.horizon}) must be at least k ({self.k}) control steps")

    @property
    def steps(self) -> int:
        return self.horizon if self.horizon is not None else TASKS[self.name].default_horizon


class ArmTask:
    """Base: owns the simulator, samples initial states, computes observation/reward/success."""

    name = "base"
    default_horizon = 250
    uses_gripper = False
    camera = "front"        # the scene camera its videos are recorded with

    def __init__(self, scene: SceneConfig = SceneConfig(), control_period: float = 0.02,
                 home_noise: float = 0.05, robot: str | Path | RobotDescription | None = None):
        self.sim = ArmSim(scene, control_period, robot=robot)
        self.home_noise = home_noise
        if self.sim.n > JOINT_SLOTS:
            raise ValueError(f"robot {self.sim.robot.name} has {self.sim.n} arm joints; the task observation "
                             f"holds at most {JOINT_SLOTS}")
        if self.uses_gripper and self.sim.robot.gripper is None:
            raise ValueError(f"the {self.name} task needs a gripper; robot {self.sim.robot.name} has none "
                             f"(reach needs none)")
        self._pad = np.zeros(JOINT_SLOTS - self.sim.n)

    def reset(self, rng: np.random.Generator) -> None:
        q0 = self.sim.home + rng.uniform(-self.home_noise, self.home_noise, self.sim.n)
        self.sim.reset(q0, **self.sample_scene(rng))

    def sample_scene(self, rng: np.random.Generator) -> dict:
        raise NotImplementedError

    def object_pose(self) -> tuple[np.ndarray, np.ndarray]:
        """Position and orientation matrix of the task's object (the cube unless a task says otherwise)."""
        return self.sim.cube_pose()

    def target(self) -> np.ndarray:
        return self.sim.target

    def angles(self) -> np.ndarray:
        """Door and handle angles (rad): 0 without a door."""
        return np.zeros(2)

    def observation(self) -> np.ndarray:
        s = self.sim
        p, R = s.tcp_pose()
        op, oR = self.object_pose()
        return np.concatenate([s.q, self._pad, s.qd, self._pad, p, rot6(R), [s.finger_opening], op, rot6(oR),
                               self.target(), self.angles()])

    def reward_success(self) -> tuple[float, bool]:
        raise NotImplementedError


class Reach(ArmTask):
    """Move the TCP to a random target. r = 1 - tanh(10 d); success when d < 2 cm."""

    name = "reach"
    default_horizon = 250   # 5 s
    target_low = np.array([0.35, -0.25, 0.10])
    target_high = np.array([0.65, 0.25, 0.45])
    success_radius = 0.02

    def sample_scene(self, rng):
        cube_xy = np.array(self.sim.scene.table_center) + np.array([0.0, 0.3])   # out of the way
        return {"target": rng.uniform(self.target_low, self.target_high),
                "cube_pos": (*cube_xy, self.sim.scene.cube_half_size)}

    def reward_success(self):
        d = float(np.linalg.norm(self.sim.tcp_pose()[0] - self.sim.target))
        return 1.0 - np.tanh(10.0 * d), d < self.success_radius


class Lift(ArmTask):
    """Grasp the cube and raise it 10 cm.

    r = 0.25 (1 - tanh(10 d_tcp,cube)) + 0.25 [both fingers touch the cube] + 0.5 min(1, dz / 0.1);
    success (and r = 1) once the cube is 10 cm above its start.
    """

    name = "lift"
    default_horizon = 500   # 10 s
    uses_gripper = True
    lift_height = 0.10

    def sample_scene(self, rng):
        cx, cy = self.sim.scene.table_center
        h = self.sim.scene.cube_half_size
        xy = np.array([cx - 0.05, cy]) + rng.uniform(-0.05, 0.05, 2)
        yaw = rng.uniform(-np.pi / 4, np.pi / 4)
        target = np.array([xy[0], xy[1], h + self.lift_height])
        self.cube_z0 = h
        return {"cube_pos": (xy[0], xy[1], h), "cube_quat": (np.cos(yaw / 2), 0, 0, np.sin(yaw / 2)),
                "target": target}

    def reward_success(self):
        s = self.sim
        cp = s.cube_pose()[0]
        dz = cp[2] - self.cube_z0
        if dz >= self.lift_height:
            return 1.0, True
        d = float(np.linalg.norm(s.tcp_pose()[0] - cp))
        r = 0.25 * (1.0 - np.tanh(10.0 * d)) + 0.25 * s.cube_grasped() + 0.5 * min(1.0, max(dz, 0.0) / self.lift_height)
        return float(r), False


class Door(ArmTask):
    """Turn the latch handle and pull the door open, as in robosuite's Door (``envs.arm.door``).

    r = 0.25 (1 - tanh(10 d_tcp,handle)) + 0.25 min(1, handle angle / (pi/2)); success (and r = 1)
    once the door is open by more than 0.3 rad. The door frame's pose is drawn per episode.
    """

    name = "door"
    default_horizon = 500   # 10 s
    uses_gripper = True
    camera = "side"
    open_angle = 0.3

    def __init__(self, scene: SceneConfig = SceneConfig(), control_period: float = 0.02, home_noise: float = 0.05,
                 robot: str | Path | RobotDescription | None = None):
        scene = scene if scene.door is not None else dataclasses.replace(scene, door=DoorConfig())
        super().__init__(scene, control_period, home_noise, robot)
        self.door = self.sim.door

    def sample_scene(self, rng):
        cube_xy = np.array(self.sim.scene.table_center) + np.array([-0.1, 0.35])   # out of the way
        return {"door_pose": self.door.config.sample_pose(rng),
                "cube_pos": (*cube_xy, self.sim.scene.cube_half_size),
                "target": (*cube_xy, -0.5)}          # the target marker out of sight: the door has none

    def object_pose(self):
        return self.door.grasp_pose()

    def target(self):
        return self.door.hinge_point()

    def angles(self):
        return np.array([self.door.door_angle, self.door.handle_angle])

    def reward_success(self):
        if self.door.door_angle > self.open_angle:
            return 1.0, True
        d = float(np.linalg.norm(self.sim.tcp_pose()[0] - self.door.grasp_pose()[0]))
        r = 0.25 * (1.0 - np.tanh(10.0 * d)) + 0.25 * min(1.0, abs(self.door.handle_angle) / (np.pi / 2))
        return float(r), False


TASKS: dict[str, type[ArmTask]] = {Reach.name: Reach, Lift.name: Lift, Door.name: Door}

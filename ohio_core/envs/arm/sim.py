"""Thin wrapper over MuJoCo for the arm scene: state in, torque out, zero-order hold.

One ``control_step`` holds the commanded torque for ``control_period`` (several physics steps),
as a 50 Hz controller on a real robot does.

``gravity_compensation`` says who adds g(q): ``controller`` (the command holds it; the motors
apply the command alone) or ``driver``: as libfranka does for a Franka, the simulator adds the
arm's gravity torque to the command at every physics step (MuJoCo's body gravity compensation on
every body of the arm, hand and fingers included, as Pinocchio's model fuses them; ``qfrc_gravcomp``),
outside the motors, whose limits bound the command alone.
"""

from __future__ import annotations

import mujoco
import numpy as np

import xml.etree.ElementTree as ET
from pathlib import Path

from controllers.description import RobotDescription
from ohio_core.envs.arm.door import DoorState
from ohio_core.envs.arm.scene import (CUBE_BODY, GRIPPER_ACTUATOR, TARGET_BODY, TCP_SITE, SceneConfig, build_spec,
                                      child_link, scene_robot)

FINGER_MAX = 0.04   # m, per finger
#: a gripper command (0 open .. 1 closed) at or above this grasps, below it opens: the hand's
#: command is binary, as the Franka hand's grasp and move actions are
GRASP_THRESHOLD = 0.5


def grasps(gripper: float) -> bool:
    """Whether a gripper command (0 open .. 1 closed) means grasp."""
    return float(gripper) >= GRASP_THRESHOLD
GRAVITY_COMPENSATION = ("controller", "driver")


class ArmSim:
    """A robot's scene (default the Panda's) stepped at the control rate. Arrays returned are copies.

    ``n`` arm joints; without a gripper the finger opening reads 0 and a cube is never grasped.
    """

    def __init__(self, scene: SceneConfig = SceneConfig(), control_period: float = 0.02,
                 gravity_compensation: str = "controller", robot: str | Path | RobotDescription | None = None):
        n = control_period / scene.timestep
        if abs(n - round(n)) > 1e-9 or round(n) < 1:
            raise ValueError(f"control_period {control_period} s is not a multiple of the physics "
                             f"timestep {scene.timestep} s")
        if gravity_compensation not in GRAVITY_COMPENSATION:
            raise ValueError(f"gravity_compensation must be one of {list(GRAVITY_COMPENSATION)}, "
                             f"got {gravity_compensation!r}")
        self.scene, self.control_period, self.n_substeps = scene, control_period, int(round(n))
        self.gravity_compensation = gravity_compensation
        self.robot = robot = scene_robot(robot)
        self.n = robot.n
        self.home = np.array(robot.home, dtype=float)
        spec = build_spec(scene, robot=robot)
        urdf_root = ET.parse(robot.urdf).getroot()
        if gravity_compensation == "driver":
            # the first moving body: it and all below it are the arm (gripper and payload included)
            base = spec.body(child_link(urdf_root, robot.joints[0]))
            for body in [base, *base.find_all(mujoco.mjtObj.mjOBJ_BODY)]:
                body.gravcomp = 1.0
        self.model = spec.compile()
        self.data = mujoco.MjData(self.model)
        m = self.model
        self.qpos_arm = np.array([m.jnt_qposadr[m.joint(j).id] for j in robot.joints])
        self.qvel_arm = np.array([m.jnt_dofadr[m.joint(j).id] for j in robot.joints])
        self.qpos_fingers = np.array([m.jnt_qposadr[m.joint(j).id] for j in robot.gripper_joints], dtype=int)
        self.act_arm = np.array([m.actuator(f"{j}_motor").id for j in robot.joints])
        self.act_gripper = m.actuator(GRIPPER_ACTUATOR).id if robot.gripper is not None else None
        self.tau_max = m.actuator_ctrlrange[self.act_arm, 1].copy()
        self.tcp_site = m.site(TCP_SITE).id
        self.cube_body = m.body(CUBE_BODY).id
        cube_joint = m.body_jntadr[self.cube_body]
        self.qpos_cube = m.jnt_qposadr[cube_joint]
        self.qvel_cube = m.jnt_dofadr[cube_joint]
        self.cube_geom = m.geom("cube_geom").id
        self.finger_bodies = tuple(m.body(child_link(urdf_root, j)).id for j in robot.gripper_joints)
        self.target_mocap = m.body_mocapid[m.body(TARGET_BODY).id]
        self.door = DoorState(m, self.data, scene.door) if scene.door is not None else None
        self._renderer = None

    # -- state -------------------------------------------------------------------------------------
    def reset(self, q: np.ndarray | None = None, gripper: float = 0.0, cube_pos=None, cube_quat=(1, 0, 0, 0),
              target=None, door_pose=None) -> None:
        """Set the arm at rest at ``q`` (default the robot's home); the fingers closed where ``gripper`` grasps (``grasps``), else open;
        cube pose (wxyz) and target; in a scene with a door, the door closed and latched, its frame at
        ``door_pose`` (x, y, yaw) when given."""
        mujoco.mj_resetData(self.model, self.data)
        d = self.data
        d.qpos[self.qpos_arm] = self.home if q is None else q
        d.qpos[self.qpos_fingers] = 0.0 if grasps(gripper) else FINGER_MAX
        if cube_pos is None:
            cube_pos = (*self.scene.table_center, self.scene.cube_half_size)
        d.qpos[self.qpos_cube:self.qpos_cube + 3] = cube_pos
        d.qpos[self.qpos_cube + 3:self.qpos_cube + 7] = cube_quat
        if target is not None:
            d.mocap_pos[self.target_mocap] = target
        if self.door is not None:
            if door_pose is not None:
                self.door.place(*door_pose)
            self.door.close()
        elif door_pose is not None:
            raise ValueError("door_pose given, but the scene has no door (SceneConfig.door)")
        self._command_gripper(gripper)
        mujoco.mj_forward(self.model, d)

    @property
    def time(self) -> float:
        return float(self.data.time)

    @property
    def q(self) -> np.ndarray:
        return self.data.qpos[self.qpos_arm].copy()

    @property
    def qd(self) -> np.ndarray:
        return self.data.qvel[self.qvel_arm].copy()

    @property
    def tau(self) -> np.ndarray:
        """Torque the motors apply now (the last command after MuJoCo's limits; in ``driver`` mode
        the driver's gravity torque ``gravity_torque`` comes on top)."""
        return self.data.actuator_force[self.act_arm].copy()

    @property
    def gravity_torque(self) -> np.ndarray:
        """The gravity compensation the driver adds now (zero in ``controller`` mode)."""
        return self.data.qfrc_gravcomp[self.qvel_arm].copy()

    @property
    def finger_opening(self) -> float:
        """Distance between the fingertips (m), 0 .. 0.08; 0 without a gripper."""
        return float(self.data.qpos[self.qpos_fingers].sum())

    def tcp_pose(self) -> tuple[np.ndarray, np.ndarray]:
        return self.data.site_xpos[self.tcp_site].copy(), self.data.site_xmat[self.tcp_site].reshape(3, 3).copy()

    def cube_pose(self) -> tuple[np.ndarray, np.ndarray]:
        """Cube position and orientation matrix."""
        return self.data.xpos[self.cube_body].copy(), self.data.xmat[self.cube_body].reshape(3, 3).copy()

    @property
    def target(self) -> np.ndarray:
        return self.data.mocap_pos[self.target_mocap].copy()

    def cube_grasped(self) -> bool:
        """Both fingers touch the cube (never without a gripper)."""
        if not self.finger_bodies:
            return False
        touching = set()
        for i in range(self.data.ncon):
            c = self.data.contact[i]
            if self.cube_geom in (c.geom1, c.geom2):
                other = c.geom2 if c.geom1 == self.cube_geom else c.geom1
                touching.add(int(self.model.geom_bodyid[other]))
        return all(b in touching for b in self.finger_bodies)

    # -- stepping ----------------------------------------------------------------------------------
    def _command_gripper(self, gripper: float) -> None:
        """The finger motor's speed command: closing or opening at the scene's finger speed."""
        if self.act_gripper is None:
            return
        speed = self.scene.finger_speed
        self.data.ctrl[self.act_gripper] = -speed if grasps(gripper) else speed

    def control_step(self, tau: np.ndarray, gripper: float = 0.0) -> None:
        """Apply ``tau`` (n) and the gripper command (0 open .. 1 closed; binary: ``grasps``) for one
        control period."""
        tau = np.asarray(tau, dtype=float)
        if tau.shape != (self.n,) or not np.isfinite(tau).all():
            raise ValueError(f"torque command must be {self.n} finite numbers, got {tau}")
        if not np.isfinite(gripper):
            raise ValueError(f"gripper command must be finite, got {gripper}")
        d = self.data
        d.ctrl[self.act_arm] = np.clip(tau, -self.tau_max, self.tau_max)
        self._command_gripper(gripper)
        if self.door is not None:
            self.door.update_latch()
        mujoco.mj_step(self.model, d, nstep=self.n_substeps)
        # mj_step leaves positions one substep ahead of the derived quantities (site and body poses,
        # contacts): recompute them so every reading after a control step describes the same state
        mujoco.mj_forward(self.model, d)

    # -- pictures ----------------------------------------------------------------------------------
    def render(self, width: int = 480, height: int = 360, camera: str = "front") -> np.ndarray:
        """RGB image from the scene camera (needs an OpenGL backend: MUJOCO_GL=egl or osmesa)."""
        if self._renderer is None or (self._renderer.width, self._renderer.height) != (width, height):
            self._renderer = mujoco.Renderer(self.model, height=height, width=width)
        self._renderer.update_scene(self.data, camera=camera)
        return self._renderer.render().copy()

"""The door of the ``door`` task: a hinged door on a frame, with a latch handle, built into the arm
scene with ``mujoco.MjSpec``, and what the simulator reads and sets of it (``DoorState``).

Geometry, in the frame of the door frame (x toward the robot's back, so the door faces the robot;
z up from the table top)::

    hinge:   vertical axis at the panel's +y edge; the door opens toward the robot (axis -z),
             range [0, hinge_max], viscous damping and dry friction
    handle:  a bar sticking out of the panel toward the robot near its free (-y) edge, turning about
             its own axis (the panel's normal) against a spring, range [0, pi/2]; its flat faces
             are vertical, so a hand pointing down grasps it across them and turns it by rolling
    latch:   while the door is closed and the handle is turned less than ``latch_angle``, the hinge
             is locked (its range is set to [0, 0]; ``DoorState.update_latch`` once per control period)

The door frame's pose (x, y, yaw on the table) is set per episode (``DoorState.place``).
"""

from __future__ import annotations

from dataclasses import dataclass

import mujoco
import numpy as np

DOOR_FRAME = "door_frame"
DOOR_BODY = "door"
HANDLE_BODY = "handle"
DOOR_HINGE = "door_hinge"
HANDLE_HINGE = "handle_hinge"
GRASP_SITE = "handle_grasp"
HINGE_SITE = "hinge_axis"
#: the door counts as closed (and the latch can hold it) below this hinge angle (rad)
CLOSED_ANGLE = 0.02


@dataclass(frozen=True)
class DoorConfig:
    """The door's physical constants (SI units) and the ranges its pose is drawn from."""

    panel_half_size: tuple = (0.01, 0.15, 0.20)     # thickness (x), half width (y), half height (z)
    panel_mass: float = 2.0
    hinge_damping: float = 1.0                      # N m s/rad
    hinge_friction: float = 0.1                     # N m
    hinge_max: float = 1.4                          # rad
    handle_half_size: tuple = (0.045, 0.01, 0.02)   # length out of the panel (x), flat faces (y), height (z)
    handle_edge_offset: float = 0.05                # handle axis from the panel's free edge (m)
    handle_height: float = 0.20                     # handle axis above the table (m)
    grasp_offset: float = 0.025                     # grasp point from the handle's centre toward its end (m)
    handle_spring: float = 0.5                      # N m/rad, returns the handle to 0
    handle_damping: float = 0.05                    # N m s/rad
    latch_angle: float = 0.35                       # rad the handle must be turned to unlock a closed door
    x_range: tuple = (0.59, 0.65)                   # door frame position on the table (m) and yaw (rad)
    y_range: tuple = (-0.08, 0.08)
    yaw_range: tuple = (-0.2, 0.2)

    def __post_init__(self):
        for name in ("panel_mass", "hinge_max", "handle_spring", "latch_angle", "handle_height"):
            if not getattr(self, name) > 0:
                raise ValueError(f"DoorConfig.{name} must be > 0, got {getattr(self, name)}")
        if not self.latch_angle < np.pi / 2:
            raise ValueError(f"DoorConfig.latch_angle must be below the handle's range (pi/2), got {self.latch_angle}")
        for name in ("x_range", "y_range", "yaw_range"):
            low, high = getattr(self, name)
            if not low <= high:
                raise ValueError(f"DoorConfig.{name} must be (low, high) with low <= high, got {getattr(self, name)}")

    def sample_pose(self, rng: np.random.Generator) -> tuple[float, float, float]:
        """(x, y, yaw) of the door frame, uniform in the configured ranges."""
        return tuple(float(rng.uniform(*r)) for r in (self.x_range, self.y_range, self.yaw_range))


def _yaw_quat(yaw: float) -> list[float]:
    return [float(np.cos(yaw / 2)), 0.0, 0.0, float(np.sin(yaw / 2))]


def add_door(spec: mujoco.MjSpec, config: DoorConfig) -> None:
    """Add the door frame, the door and its handle to ``spec`` (module docstring); the frame stays
    a body of its own (not fused into the world) so that ``DoorState.place`` can move it."""
    spec.compiler.fusestatic = False
    hx, hy, hz = config.panel_half_size
    wood, dark, metal = [0.7, 0.55, 0.35, 1], [0.4, 0.3, 0.2, 1], [0.8, 0.8, 0.8, 1]
    box = mujoco.mjtGeom.mjGEOM_BOX
    frame = spec.worldbody.add_body(name=DOOR_FRAME, pos=[np.mean(config.x_range), 0.0, 0.0])
    top = 2 * hz + 0.02
    for y in (-hy - 0.02, hy + 0.02):
        frame.add_geom(type=box, size=[0.02, 0.015, top / 2 + 0.01], pos=[0.0, y, top / 2 + 0.01], rgba=dark)
    frame.add_geom(type=box, size=[0.02, hy + 0.035, 0.015], pos=[0.0, 0.0, top + 0.025], rgba=dark)
    door = frame.add_body(name=DOOR_BODY, pos=[0.0, hy, 0.0])
    door.add_joint(name=DOOR_HINGE, type=mujoco.mjtJoint.mjJNT_HINGE, axis=[0, 0, -1], range=[0.0, config.hinge_max],
                   damping=[config.hinge_damping, 0, 0], frictionloss=config.hinge_friction, armature=0.05)
    door.add_geom(name="door_panel", type=box, size=[hx, hy, hz], pos=[0.0, -hy, hz + 0.02], mass=config.panel_mass,
                  rgba=wood)
    door.add_site(name=HINGE_SITE, pos=[0.0, 0.0, config.handle_height], size=[0.005, 0, 0], group=3)
    lx, ly, lz = config.handle_half_size
    handle = door.add_body(name=HANDLE_BODY, pos=[-hx, -2 * hy + config.handle_edge_offset, config.handle_height])
    handle.add_joint(name=HANDLE_HINGE, type=mujoco.mjtJoint.mjJNT_HINGE, axis=[-1, 0, 0], range=[0.0, np.pi / 2],
                     stiffness=[config.handle_spring, 0, 0], damping=[config.handle_damping, 0, 0], armature=0.005)
    handle.add_geom(name="handle_grip", type=box, size=[lx, ly, lz], pos=[-lx, 0.0, 0.0], mass=0.1, rgba=metal,
                    friction=[1.0, 0.005, 0.0001], condim=4)
    handle.add_site(name=GRASP_SITE, pos=[-lx - config.grasp_offset, 0.0, 0.0], size=[0.005, 0, 0], group=3)


class DoorState:
    """The door in a compiled scene: its angles, the handle's grasp point, the latch, its pose."""

    def __init__(self, model: mujoco.MjModel, data: mujoco.MjData, config: DoorConfig):
        self.model, self.data, self.config = model, data, config
        self.frame = model.body(DOOR_FRAME).id
        self.handle_body = model.body(HANDLE_BODY).id
        self.door_joint, handle_joint = model.joint(DOOR_HINGE).id, model.joint(HANDLE_HINGE).id
        self.qpos_door = model.jnt_qposadr[self.door_joint]
        self.qpos_handle = model.jnt_qposadr[handle_joint]
        self.qvel = np.array([model.jnt_dofadr[self.door_joint], model.jnt_dofadr[handle_joint]])
        self.grasp_site = model.site(GRASP_SITE).id
        self.hinge_site = model.site(HINGE_SITE).id

    @property
    def door_angle(self) -> float:
        return float(self.data.qpos[self.qpos_door])

    @property
    def handle_angle(self) -> float:
        return float(self.data.qpos[self.qpos_handle])

    def grasp_pose(self) -> tuple[np.ndarray, np.ndarray]:
        """Position of the handle's grasp point and the handle's orientation (world)."""
        return (self.data.site_xpos[self.grasp_site].copy(),
                self.data.xmat[self.handle_body].reshape(3, 3).copy())

    def hinge_point(self) -> np.ndarray:
        """The point of the hinge axis at the handle's height (world)."""
        return self.data.site_xpos[self.hinge_site].copy()

    def place(self, x: float, y: float, yaw: float) -> None:
        """Put the door frame at (x, y) on the table, turned by ``yaw`` about the vertical (call
        ``mj_forward`` after)."""
        self.model.body_pos[self.frame] = [x, y, 0.0]
        self.model.body_quat[self.frame] = _yaw_quat(yaw)

    def close(self) -> None:
        """Door shut, handle at rest, both still, and the latch engaged."""
        self.data.qpos[[self.qpos_door, self.qpos_handle]] = 0.0
        self.data.qvel[self.qvel] = 0.0
        self.update_latch()

    def update_latch(self) -> None:
        """Lock the hinge while the door is closed and the handle is turned less than the latch angle."""
        locked = self.door_angle < CLOSED_ANGLE and self.handle_angle < self.config.latch_angle
        self.model.jnt_range[self.door_joint] = [0.0, 0.0 if locked else self.config.hinge_max]

    @property
    def locked(self) -> bool:
        return bool(self.model.jnt_range[self.door_joint][1] == 0.0)

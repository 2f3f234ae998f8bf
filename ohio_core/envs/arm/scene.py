"""The MuJoCo scene, compiled from the same URDF Pinocchio loads.

``build_model(config, robot)`` takes the robot's URDF (``controllers.description``; default the
Panda's ``urdf/panda.urdf``) through MuJoCo's URDF compiler and adds, with ``mujoco.MjSpec``: a
TCP site (placed by composing the URDF's fixed joints, since MuJoCo fuses fixed links), torque
motors on the n arm joints with the robot's effort limits, the payload, the gripper where the
robot has one, a table, a cube with a free joint, a target marker, a light and two cameras
(``front``; ``side``, which sees the door task's door from the robot's right). Before compiling,
mesh paths (``package://`` URIs included) become absolute and visual elements are dropped (MuJoCo's
URDF compiler discards them anyway and cannot decode the ``.dae`` meshes some carry).

The gripper behaves as the Franka hand does: one motor drives both fingers (coupled: finger 2
mirrors finger 1 through the joint equality MuJoCo makes of the URDF's mimic tag, and the motor
pulls on a tendon of the mean finger opening), its command is binary (grasp or open), and it moves
the fingers at most at the URDF's finger speed, pressing with at most ``grasp_force`` per finger.
The motor is a DC motor's torque-speed line on the tendon,

    f = k_v (v_cmd - v),   v_cmd = -+ finger_speed (close / open),   k_v = 2 grasp_force / finger_speed,

so the fingers run at ``finger_speed`` in free motion and press with ``grasp_force`` each at stall
(on the cube, or on a limit). ``finger_armature`` (reflected motor inertia) and stiff finger
contacts and limits (``finger_solref``) keep a grasp from sinking into the cube or the fingers from
crossing their limits at the 2 ms physics step: the soft constraints of 15 g fingers alone gave
way by centimetres under the grasp force.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass, replace
from pathlib import Path

import mujoco
import numpy as np

from controllers.description import RobotConfigError, RobotDescription, load_robot, panda, resolve_uri, rpy_matrix
from ohio_core.envs.arm.door import DoorConfig, add_door

TCP_SITE = "tcp"
CUBE_BODY = "cube"
TARGET_BODY = "target"
GRIPPER_ACTUATOR = "gripper"
FINGER_TENDON = "fingers"
CAMERA = "front"
SIDE_CAMERA = "side"     # from the robot's right: sees the door's robot-facing side


@dataclass(frozen=True)
class SceneConfig:
    """Physical constants of the scene (SI units)."""

    timestep: float = 0.002
    cube_half_size: float = 0.02
    cube_mass: float = 0.1
    cube_friction: float = 1.0
    finger_speed: float = 0.2        # m/s per finger (the URDF's finger velocity limit)
    grasp_force: float = 20.0        # N per finger at stall (the Franka hand grasps with up to 70 N)
    finger_armature: float = 0.5     # kg, reflected inertia of the finger drive
    finger_solref: float = 0.004     # s, time constant of finger contacts and limits (2 physics steps)

    table_center: tuple[float, float] = (0.45, 0.0)
    table_half_size: tuple[float, float] = (0.6, 0.6)
    # added to the URDF's values on the 7 arm joints, in the simulator only (the controllers'
    # Pinocchio model does not see them): viscous damping (N m s/rad) and dry friction (N m)
    arm_damping: float = 0.0
    arm_frictionloss: float = 0.0
    door: DoorConfig | None = None   # the door task's door (``envs.arm.door``); None: no door in the scene

    def __post_init__(self):
        if not (self.arm_damping >= 0.0 and self.arm_frictionloss >= 0.0):
            raise ValueError(f"SceneConfig.arm_damping and arm_frictionloss must be >= 0, "
                             f"got {self.arm_damping}, {self.arm_frictionloss}")
        if not 0.0 < self.timestep <= 0.005:
            raise ValueError(f"SceneConfig.timestep must be in (0, 0.005] s, got {self.timestep}")
        for name in ("finger_speed", "grasp_force", "finger_armature", "finger_solref"):
            if not getattr(self, name) > 0:
                raise ValueError(f"SceneConfig.{name} must be > 0, got {getattr(self, name)}")
        if self.finger_solref < 2 * self.timestep:
            raise ValueError(f"SceneConfig.finger_solref ({self.finger_solref} s) must be at least two physics "
                             f"steps ({2 * self.timestep} s)")
        if not 0.005 <= self.cube_half_size <= 0.035:
            raise ValueError(
                f"SceneConfig.cube_half_size must fit the gripper (0.005..0.035 m), got {self.cube_half_size}")


def fixed_chain(urdf: Path, link: str) -> tuple[str, np.ndarray, np.ndarray]:
    """Walk up the fixed joints above ``link``: (first moving ancestor, position, rotation) of
    ``link`` in that ancestor's frame. That ancestor is the body MuJoCo fuses ``link`` into."""
    root = ET.parse(urdf).getroot()
    by_child = {j.find("child").get("link"): j for j in root.findall("joint")}
    pos, rot = np.zeros(3), np.eye(3)
    while link in by_child and by_child[link].get("type") == "fixed":
        joint = by_child[link]
        origin = joint.find("origin")
        xyz = np.fromstring(origin.get("xyz", "0 0 0"), sep=" ") if origin is not None else np.zeros(3)
        rpy = np.fromstring(origin.get("rpy", "0 0 0"), sep=" ") if origin is not None else np.zeros(3)
        r_joint = rpy_matrix(rpy)
        pos, rot = xyz + r_joint @ pos, r_joint @ rot
        link = joint.find("parent").get("link")
    return link, pos, rot


def effort_limits(urdf: Path, joints) -> np.ndarray:
    root = ET.parse(urdf).getroot()
    limits = {j.get("name"): float(j.find("limit").get("effort")) for j in root.findall("joint")
              if j.find("limit") is not None}
    return np.array([limits[name] for name in joints])


def child_link(urdf_root: ET.Element, joint: str) -> str:
    """The link a URDF joint moves: the MuJoCo body that joint belongs to."""
    for j in urdf_root.findall("joint"):
        if j.get("name") == joint:
            return j.find("child").get("link")
    raise RobotConfigError(f"joint {joint!r} not in the description")


def prepared_urdf(robot: RobotDescription) -> tuple[str, ET.Element]:
    """The robot's URDF as MuJoCo compiles it (module docstring): absolute mesh paths, no visuals,
    ``strippath`` off; every joint an arm or gripper joint (the simulator locks none)."""
    try:
        root = ET.parse(robot.urdf).getroot()
    except (ET.ParseError, OSError) as e:
        raise RobotConfigError(f"{robot.urdf}: not a readable URDF ({e})") from None
    for link in root.findall("link"):
        for visual in link.findall("visual"):
            link.remove(visual)
        for mesh in link.iter("mesh"):
            path = resolve_uri(mesh.get("filename", ""), robot.urdf.parent)
            if not path.is_file():
                raise RobotConfigError(f"{robot.urdf}: mesh {mesh.get('filename')} not found ({path})")
            mesh.set("filename", str(path))
    moving = [j.get("name") for j in root.findall("joint") if j.get("type") not in ("fixed", None)]
    extra = sorted(set(moving) - set(robot.joints) - set(robot.gripper_joints))
    if extra:
        raise RobotConfigError(f"{robot.label()}: URDF joints {extra} are neither arm nor gripper joints "
                               f"(the simulator cannot lock them; use a URDF without them)")
    ext = root.find("mujoco")
    if ext is None:
        ext = ET.SubElement(root, "mujoco")
    compiler = ext.find("compiler")
    if compiler is None:
        compiler = ET.SubElement(ext, "compiler")
    compiler.set("strippath", "false")
    return ET.tostring(root, encoding="unicode"), root


def _quat(rot: np.ndarray) -> np.ndarray:
    q = np.zeros(4)
    mujoco.mju_mat2Quat(q, rot.reshape(-1))
    return q


def _look_at(eye, center) -> list[float]:
    """Camera x and y axes (MuJoCo ``xyaxes``) for a camera at ``eye`` looking at ``center``, z up."""
    f = np.asarray(center, float) - np.asarray(eye, float)
    f /= np.linalg.norm(f)
    x = np.cross(f, [0.0, 0.0, 1.0])
    x /= np.linalg.norm(x)
    return [*x, *np.cross(x, f)]


def _add_gripper(spec: mujoco.MjSpec, config: SceneConfig, joints: tuple, fingers: tuple) -> None:
    """The hand's finger drive (module docstring): a tendon of the mean finger opening, a velocity
    servo on it with the motor line's gain, binary command -+ ``finger_speed``."""
    tendon = spec.add_tendon(name=FINGER_TENDON)
    for name in joints:
        joint = spec.joint(name)
        joint.armature = config.finger_armature
        joint.solref_limit = [config.finger_solref, 1.0]
        tendon.wrap_joint(name, 0.5)
    grip = spec.add_actuator(name=GRIPPER_ACTUATOR, target=FINGER_TENDON, trntype=mujoco.mjtTrn.mjTRN_TENDON)
    grip.set_to_velocity(kv=2.0 * config.grasp_force / config.finger_speed)
    grip.ctrlrange = [-config.finger_speed, config.finger_speed]
    grip.ctrllimited = mujoco.mjtLimited.mjLIMITED_TRUE
    spec.add_exclude(bodyname1=fingers[0], bodyname2=fingers[1])
    for finger in fingers:
        for geom in spec.body(finger).geoms:
            geom.friction = [config.cube_friction, 0.005, 0.0001]
            geom.condim = 4
            geom.solref = [config.finger_solref, 1.0]
            geom.solimp = [0.95, 0.99, 0.001, 0.5, 2.0]


def scene_robot(robot: str | Path | RobotDescription | None = None, urdf: Path | None = None) -> RobotDescription:
    """The robot a scene is built for: ``robot`` (default the Panda), its URDF replaced by ``urdf``."""
    out = panda() if robot is None else load_robot(robot)
    if urdf is not None:
        urdf = Path(urdf)
        if not urdf.is_file():
            raise FileNotFoundError(f"robot description not found: {urdf}")
        out = replace(out, urdf=urdf)
    return out


def build_spec(config: SceneConfig = SceneConfig(), urdf: Path | None = None,
               robot: str | Path | RobotDescription | None = None) -> mujoco.MjSpec:
    robot = scene_robot(robot, urdf)
    urdf = robot.urdf
    if not urdf.is_file():
        raise FileNotFoundError(f"robot description not found: {urdf}")
    text, root = prepared_urdf(robot)
    spec = mujoco.MjSpec.from_string(text)
    spec.meshdir = str(urdf.parent)
    spec.modelname = f"ohio_{robot.name}_scene"
    spec.option.timestep = config.timestep
    spec.option.integrator = mujoco.mjtIntegrator.mjINT_IMPLICITFAST
    spec.option.cone = mujoco.mjtCone.mjCONE_ELLIPTIC
    spec.option.impratio = 10.0

    parent, pos, rot = fixed_chain(urdf, robot.tcp_link if robot.tcp_link is not None else robot.tcp_frame)
    if robot.tcp_link is not None:
        offset = rpy_matrix(np.asarray(robot.tcp_rpy))
        pos, rot = pos + rot @ np.asarray(robot.tcp_xyz), rot @ offset
    spec.body(parent).add_site(name=TCP_SITE, pos=pos, quat=_quat(rot), size=[0.01, 0, 0],
                               rgba=[1, 0.5, 0, 0.5], group=3)

    q_min, q_max = robot.limits.get("q_min"), robot.limits.get("q_max")
    for i, name in enumerate(robot.joints):
        joint = spec.joint(name)
        # MuJoCo's joint damping is a polynomial in the joint speed (linear coefficient first): the
        # scene sets and adds to the viscous (linear) term alone
        damping = np.array(joint.damping, dtype=float)
        damping[0] = robot.simulation.get("damping", (damping[0],) * robot.n)[i] + config.arm_damping
        joint.damping = damping
        joint.frictionloss = robot.simulation.get("frictionloss", (joint.frictionloss,) * robot.n)[i] \
            + config.arm_frictionloss
        if q_min is not None or q_max is not None:
            lo, hi = joint.range
            joint.range = [q_min[i] if q_min is not None else lo, q_max[i] if q_max is not None else hi]
            joint.limited = mujoco.mjtLimited.mjLIMITED_TRUE

    limits = robot.limits.get("tau_max", effort_limits(urdf, robot.joints))
    for name, limit in zip(robot.joints, limits):
        act = spec.add_actuator(name=f"{name}_motor", target=name, trntype=mujoco.mjtTrn.mjTRN_JOINT)
        act.set_to_motor()
        act.ctrlrange = [-limit, limit]
        act.ctrllimited = mujoco.mjtLimited.mjLIMITED_TRUE
        act.forcerange = [-limit, limit]
        act.forcelimited = mujoco.mjtLimited.mjLIMITED_TRUE

    if robot.payload is not None:
        last = spec.body(child_link(root, robot.joints[-1]))
        last.add_body(name="payload", pos=list(robot.payload.com), mass=robot.payload.mass, ipos=[0.0, 0.0, 0.0],
                      iquat=[1.0, 0.0, 0.0, 0.0],
                      inertia=[robot.payload.inertia] * 3, explicitinertial=True)

    if robot.gripper is not None:
        _add_gripper(spec, config, robot.gripper.joints, tuple(child_link(root, j) for j in robot.gripper.joints))

    world = spec.worldbody
    world.add_light(pos=[0.5, 0, 2.5], dir=[0, 0, -1], diffuse=[0.8, 0.8, 0.8])
    world.add_geom(name="floor", type=mujoco.mjtGeom.mjGEOM_PLANE, size=[3, 3, 0.1],
                   pos=[0, 0, -0.75], rgba=[0.3, 0.3, 0.35, 1])
    cx, cy = config.table_center
    hx, hy = config.table_half_size
    world.add_geom(name="table", type=mujoco.mjtGeom.mjGEOM_BOX, size=[hx, hy, 0.375],
                   pos=[cx, cy, -0.375], rgba=[0.6, 0.45, 0.3, 1])
    world.add_camera(name=CAMERA, pos=[1.3, 0.9, 0.75], xyaxes=_look_at([1.3, 0.9, 0.75], [0.35, 0.0, 0.2]))
    world.add_camera(name=SIDE_CAMERA, pos=[0.9, -0.9, 0.8], xyaxes=_look_at([0.9, -0.9, 0.8], [0.55, 0.0, 0.2]))

    h = config.cube_half_size
    cube = world.add_body(name=CUBE_BODY, pos=[cx, cy, h])
    cube.add_freejoint(name="cube_joint")
    cube.add_geom(name="cube_geom", type=mujoco.mjtGeom.mjGEOM_BOX, size=[h, h, h], mass=config.cube_mass,
                  rgba=[0.8, 0.1, 0.1, 1], friction=[config.cube_friction, 0.005, 0.0001], condim=4)

    if config.door is not None:
        add_door(spec, config.door)

    target = world.add_body(name=TARGET_BODY, mocap=True, pos=[cx, cy, 0.3])
    # a site, not a geom: the URDF compiler discards contact-free geoms as visual-only
    target.add_site(name="target_marker", type=mujoco.mjtGeom.mjGEOM_SPHERE, size=[0.02, 0, 0],
                    rgba=[0.1, 0.9, 0.1, 0.6])
    return spec


def build_model(config: SceneConfig = SceneConfig(), urdf: Path | None = None,
                robot: str | Path | RobotDescription | None = None) -> mujoco.MjModel:
    return build_spec(config, urdf, robot).compile()

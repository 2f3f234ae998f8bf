"""A robot is a configuration: ``config/robots/NAME.yaml`` names its URDF, arm joints, TCP, home pose,
gripper and payload; Pinocchio (``controllers.robot``) and MuJoCo (``ohio_core.envs.arm.scene``) both
load the URDF it names.

A robot file (``load_robot``)::

    name: ur5
    urdf: package://example-robot-data/robots/ur_description/urdf/ur5_robot.urdf   # or a path
    urdf_sha256: 3f1c...            # optional: the file is refused when its digest differs
    joints: [shoulder_pan_joint, ...]    # the arm joints, in command order (n >= 6)
    tcp: {frame: tool0}             # a frame of the URDF, or {link: L, xyz: [..], rpy: [..]}
    home: [0.0, -1.57, ...]         # rad, the start pose and the controllers' default rest posture
    gripper: {joints: [...], lock: 0.04, command: franka_hand}   # optional
    payload: {mass: 0.5, com: [0, 0, 0.05]}                      # optional, on the last arm link
    limits: {tau_max: [...], qd_max: [...], q_min: [...], q_max: [...]}   # optional overrides
    simulation: {damping: 0.0, frictionloss: 0.0}   # optional: the simulated joints' viscous damping
                                                     # (N m s/rad) and dry friction (N m) instead of the URDF's

A relative ``urdf`` is relative to the robot file; ``package://PKG/rest`` is looked up in
``$OHIO_PACKAGE_PATH`` (folders holding PKG), ``$AMENT_PREFIX_PATH`` (``share/PKG``) and the
``cmeel.prefix/share/PKG`` folders of the Python path (where ``example-robot-data`` installs).
Every joint of the URDF that is neither an arm nor a gripper joint is locked at zero.
"""

from __future__ import annotations

import hashlib
import os
import sys
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import yaml

from controllers import validate

#: the command interfaces of a gripper the simulator knows (``ohio_core.envs.arm.scene``)
GRIPPER_COMMANDS = ("franka_hand",)
#: a 6-D pose task needs at least this many arm joints (the OSC and the QP refuse fewer)
MIN_JOINTS = 6
DEFAULT_ROBOT = "panda"


class RobotConfigError(ValueError):
    """A robot file is malformed, or the URDF it names is missing, damaged or lacks a named part."""


#: m, radius of the solid sphere a payload's rotational inertia is taken from (both simulators)
PAYLOAD_RADIUS = 0.02


@dataclass(frozen=True)
class Payload:
    """A load fixed to the last arm link: ``mass`` (kg) at ``com`` (m, in that link's frame), a solid
    sphere of radius ``PAYLOAD_RADIUS``: I = 2/5 m r^2 about ``com`` on each axis (``inertia``)."""

    mass: float
    com: tuple = (0.0, 0.0, 0.0)

    @property
    def inertia(self) -> float:
        return 0.4 * self.mass * PAYLOAD_RADIUS ** 2


@dataclass(frozen=True)
class Gripper:
    """Gripper joints, the opening (m, per finger) they are locked at in the arm model, and how the
    simulator drives them (``GRIPPER_COMMANDS``)."""

    joints: tuple
    lock: float = 0.0
    command: str = "franka_hand"


@dataclass(frozen=True)
class RobotDescription:
    """One arm, as ``load_robot`` reads it (module docstring). ``tcp_link``/``tcp_xyz``/``tcp_rpy``
    place the TCP where the URDF has no frame for it; otherwise ``tcp_frame`` names the frame."""

    name: str
    urdf: Path
    joints: tuple
    home: tuple
    tcp_frame: str | None = None
    tcp_link: str | None = None
    tcp_xyz: tuple = (0.0, 0.0, 0.0)
    tcp_rpy: tuple = (0.0, 0.0, 0.0)
    gripper: Gripper | None = None
    payload: Payload | None = None
    limits: dict = field(default_factory=dict)
    simulation: dict = field(default_factory=dict)   # "damping", "frictionloss": per-joint tuples for MuJoCo
    source: Path | None = None      # the robot file, for messages

    @property
    def n(self) -> int:
        return len(self.joints)

    @property
    def tcp_name(self) -> str:
        """The TCP frame's name in the arm model (``tcp_frame``, or ``ohio_tcp`` on ``tcp_link``)."""
        return self.tcp_frame if self.tcp_frame is not None else "ohio_tcp"

    @property
    def gripper_joints(self) -> tuple:
        return self.gripper.joints if self.gripper is not None else ()

    def label(self) -> str:
        return str(self.source) if self.source is not None else self.name


def rpy_matrix(rpy) -> np.ndarray:
    """URDF convention: R = Rz(yaw) Ry(pitch) Rx(roll)."""
    r, p, y = rpy
    cr, sr, cp, sp, cy, sy = np.cos(r), np.sin(r), np.cos(p), np.sin(p), np.cos(y), np.sin(y)
    return np.array([
        [cy * cp, cy * sp * sr - sy * cr, cy * sp * cr + sy * sr],
        [sy * cp, sy * sp * sr + cy * cr, sy * sp * cr - cy * sr],
        [-sp, cp * sr, cp * cr],
    ])


def robots_dirs() -> list[Path]:
    """Where robot names are looked up: ``$OHIO_ROBOT_PATH`` (``os.pathsep``-separated), the source
    tree's ``config/robots``, then the installed ``<prefix>/share/ohio/config/robots``."""
    out = [Path(p) for p in os.environ.get("OHIO_ROBOT_PATH", "").split(os.pathsep) if p]
    out.append(Path(__file__).resolve().parents[1] / "config" / "robots")
    out.append(Path(sys.prefix) / "share" / "ohio" / "config" / "robots")
    return out


def available_robots() -> list[str]:
    """Names of the robot files in ``robots_dirs``."""
    return sorted({p.stem for d in robots_dirs() if d.is_dir() for p in d.glob("*.yaml")})


def robot_file(robot: str | Path) -> Path:
    """The robot file of a name (``robots_dirs``) or a path to a YAML file."""
    text = str(robot)
    if text.endswith((".yaml", ".yml")) or os.sep in text:
        path = Path(text)
        if not path.is_file():
            raise RobotConfigError(f"{path}: robot file not found")
        return path
    for d in robots_dirs():
        if (d / f"{text}.yaml").is_file():
            return d / f"{text}.yaml"
    raise RobotConfigError(f"unknown robot {text!r}: expected one of {available_robots()} or a YAML file")


def package_roots(package: str) -> list[Path]:
    """Folders a ``package://PACKAGE/...`` URI may resolve to (module docstring)."""
    out = [Path(p) / package for p in os.environ.get("OHIO_PACKAGE_PATH", "").split(os.pathsep) if p]
    out += [Path(p) / "share" / package for p in os.environ.get("AMENT_PREFIX_PATH", "").split(os.pathsep) if p]
    out += [Path(p) / "cmeel.prefix" / "share" / package for p in sys.path if p]
    return out


def resolve_uri(uri: str, base: Path) -> Path:
    """A file named by ``package://PKG/rest``, ``file://path``, an absolute path, or a path relative
    to ``base``; ``RobotConfigError`` where a package URI resolves to no file."""
    if uri.startswith("package://"):
        package, _, rest = uri[len("package://"):].partition("/")
        for root in package_roots(package):
            if (root / rest).is_file():
                return root / rest
        raise RobotConfigError(f"{uri}: package {package!r} holds no such file (searched $OHIO_PACKAGE_PATH, "
                               f"$AMENT_PREFIX_PATH and cmeel.prefix/share on the Python path)")
    if uri.startswith("file://"):
        uri = uri[len("file://"):]
    path = Path(uri)
    return path if path.is_absolute() else Path(os.path.normpath(base / path))


def _names(label: str, value, allow_empty: bool = False) -> tuple:
    if not isinstance(value, (list, tuple)) or not all(isinstance(v, str) and v for v in value):
        raise RobotConfigError(f"{label} must be a list of names, got {value!r}")
    if not value and not allow_empty:
        raise RobotConfigError(f"{label} must name at least one joint")
    if len(set(value)) != len(value):
        raise RobotConfigError(f"{label} names a joint twice: {list(value)}")
    return tuple(value)


def _section(label: str, value, keys: tuple) -> dict:
    if not isinstance(value, dict):
        raise RobotConfigError(f"{label} must be a mapping, got {value!r}")
    validate.unknown_keys(value, keys, RobotConfigError, owner=label)
    return value


_KEYS = ("name", "urdf", "urdf_sha256", "joints", "tcp", "home", "gripper", "payload", "limits", "simulation")
LIMIT_KEYS = ("q_min", "q_max", "qd_max", "tau_max")


def robot_from_dict(data: dict, base: Path, source: Path | None = None) -> RobotDescription:
    """A ``RobotDescription`` from a robot file's mapping; paths relative to ``base``."""
    where = str(source) if source is not None else "robot"
    if not isinstance(data, dict) or not data:
        raise RobotConfigError(f"{where}: a robot file is a mapping with keys {list(_KEYS)}")
    validate.unknown_keys(data, _KEYS, RobotConfigError, owner=where)
    for key in ("name", "urdf", "joints", "tcp", "home"):
        if key not in data:
            raise RobotConfigError(f"{where}: missing key {key!r}")
    if not isinstance(data["urdf"], str):
        raise RobotConfigError(f"{where}: urdf must be a path or package:// URI, got {data['urdf']!r}")
    urdf = resolve_uri(data["urdf"], base)
    if not urdf.is_file():
        raise RobotConfigError(f"{where}: URDF not found: {urdf}")
    if data.get("urdf_sha256") is not None:
        digest = hashlib.sha256(urdf.read_bytes()).hexdigest()
        if digest != str(data["urdf_sha256"]).lower():
            raise RobotConfigError(f"{urdf}: SHA-256 {digest} differs from the robot file's urdf_sha256 "
                                   f"{data['urdf_sha256']} (damaged or replaced)")
    joints = _names(f"{where}: joints", data["joints"])
    n = len(joints)
    home = validate.vector(f"{where}: home", data["home"], n, RobotConfigError)
    tcp = _section(f"{where}: tcp", data["tcp"], ("frame", "link", "xyz", "rpy"))
    if ("frame" in tcp) == ("link" in tcp):
        raise RobotConfigError(f"{where}: tcp names a URDF frame (frame: F) or a link and an offset "
                               f"(link: L, xyz, rpy), not both or neither")
    gripper = None
    if data.get("gripper") is not None:
        g = _section(f"{where}: gripper", data["gripper"], ("joints", "lock", "command"))
        command = g.get("command", "franka_hand")
        validate.choice(f"{where}: gripper.command", command, GRIPPER_COMMANDS, RobotConfigError)
        gripper = Gripper(_names(f"{where}: gripper.joints", g.get("joints")),
                          validate.signed_number(f"{where}: gripper.lock", g.get("lock", 0.0), RobotConfigError,
                                                 "any"), command)
        if set(gripper.joints) & set(joints):
            raise RobotConfigError(f"{where}: gripper joints {sorted(set(gripper.joints) & set(joints))} are arm joints")
    payload = None
    if data.get("payload") is not None:
        p = _section(f"{where}: payload", data["payload"], ("mass", "com"))
        payload = Payload(validate.signed_number(f"{where}: payload.mass", p.get("mass"), RobotConfigError, "positive"),
                          validate.vector(f"{where}: payload.com", p.get("com", 0.0), 3, RobotConfigError))
    limits = {}
    if data.get("limits") is not None:
        lim = _section(f"{where}: limits", data["limits"], LIMIT_KEYS)
        for key, value in lim.items():
            sign = "any" if key in ("q_min", "q_max") else "positive"
            limits[key] = validate.vector(f"{where}: limits.{key}", value, n, RobotConfigError, sign)
    simulation = {}
    if data.get("simulation") is not None:
        sim = _section(f"{where}: simulation", data["simulation"], ("damping", "frictionloss"))
        for key, value in sim.items():
            simulation[key] = validate.vector(f"{where}: simulation.{key}", value, n, RobotConfigError, "nonnegative")
    name = data["name"]
    if not isinstance(name, str) or not name:
        raise RobotConfigError(f"{where}: name must be a non-empty string, got {name!r}")
    return RobotDescription(
        name=name, urdf=urdf, joints=joints, home=home,
        tcp_frame=tcp.get("frame"), tcp_link=tcp.get("link"),
        tcp_xyz=validate.vector(f"{where}: tcp.xyz", tcp.get("xyz", 0.0), 3, RobotConfigError),
        tcp_rpy=validate.vector(f"{where}: tcp.rpy", tcp.get("rpy", 0.0), 3, RobotConfigError),
        gripper=gripper, payload=payload, limits=limits, simulation=simulation, source=source)


def load_robot(robot: str | Path | RobotDescription | None = None) -> RobotDescription:
    """The robot of a name (``robots_dirs``), a YAML file, or a description (returned as is);
    None is ``DEFAULT_ROBOT``. A malformed file raises ``RobotConfigError`` naming it."""
    if isinstance(robot, RobotDescription):
        return robot
    path = robot_file(DEFAULT_ROBOT if robot is None else robot)
    try:
        data = yaml.safe_load(path.read_text())
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as e:
        raise RobotConfigError(f"{path}: not a readable YAML file ({type(e).__name__})") from None
    if data is None:
        raise RobotConfigError(f"{path}: the file is empty")
    return robot_from_dict(data, path.parent, source=path)


def description_dir() -> Path:
    """Directory holding ``panda.urdf`` and its meshes.

    Order: ``$OHIO_URDF_DIR``, the source tree (``<repo>/urdf``), then the installed
    share directory (``<prefix>/share/ohio/urdf``).
    """
    candidates = []
    if os.environ.get("OHIO_URDF_DIR"):
        candidates.append(Path(os.environ["OHIO_URDF_DIR"]))
    candidates.append(Path(__file__).resolve().parents[1] / "urdf")
    candidates.append(Path(sys.prefix) / "share" / "ohio" / "urdf")
    for c in candidates:
        if (c / "panda.urdf").is_file():
            return c
    raise FileNotFoundError(
        "panda.urdf not found; looked in " + ", ".join(str(c) for c in candidates)
        + " (set OHIO_URDF_DIR to the folder holding panda.urdf)")


def urdf_path() -> Path:
    return description_dir() / "panda.urdf"


def panda() -> RobotDescription:
    """The default robot: ``config/robots/panda.yaml`` with the URDF of ``urdf_path`` (so that
    ``$OHIO_URDF_DIR`` still points the Panda at another copy of its description)."""
    robot = load_robot(DEFAULT_ROBOT)
    return robot if robot.urdf.resolve() == urdf_path().resolve() else replace(robot, urdf=urdf_path())


#: The Panda's names and poses (``config/robots/panda.yaml``), for the parts of the stack that are
#: the Panda's alone: the Franka hand in the simulator, franka_ros topic maps, the golden bags.
ARM_JOINTS = tuple(f"panda_joint{i}" for i in range(1, 8))
FINGER_JOINTS = ("panda_finger_joint1", "panda_finger_joint2")
TCP_FRAME = "panda_hand_tcp"
#: Finger opening (m, per finger) at which the fingers are locked in the arm model.
FINGER_LOCK = 0.04
#: A comfortable configuration in front of the robot (also the nullspace rest posture).
Q_HOME = np.array([0.0, -0.3, 0.0, -2.2, 0.0, 2.0, np.pi / 4])

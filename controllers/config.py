"""Typed, validated controller configurations, loadable from YAML.

Every vector field accepts a scalar (broadcast) or a list of the right length. Unknown keys are
an error that names them: a typo never silently falls back to a default. The checks are those of
``controllers.validate``.
"""

from __future__ import annotations

import dataclasses
import functools
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import yaml

from controllers import validate


class ConfigError(ValueError):
    """A controller configuration is malformed (unknown key, wrong shape, out of range)."""


#: who adds gravity compensation g(q) to the joint torques: the controller's command holds it
#: (a bare torque interface, the MuJoCo sim), or the robot driver adds it to every command
#: (Franka: libfranka and franka_ros2's effort interface), so the command must not
GRAVITY_COMPENSATION = ("controller", "driver")


def config_fields(cls, data: dict | None) -> dict:
    """The fields of config class ``cls`` in ``data``: an optional ``type`` must be ``cls.kind``, and an
    unknown key is a ``ConfigError`` that names it."""
    data = dict(data or {})
    kind = data.pop("type", None)
    if kind is not None and kind != cls.kind:
        raise ConfigError(f"config has type {kind!r}, expected {cls.kind!r}")
    validate.unknown_keys(data, (f.name for f in dataclasses.fields(cls)), ConfigError, owner=cls.__name__)
    return data


@dataclass(frozen=True)
class _Base:
    def __post_init__(self):
        for f in dataclasses.fields(self):
            name, value = f"{type(self).__name__}.{f.name}", getattr(self, f.name)
            if value is None:
                if not f.metadata.get("optional"):
                    raise ConfigError(f"{name} must be set (null is not allowed)")
                continue
            if "vector" in f.metadata:
                n, sign = f.metadata["vector"]
                object.__setattr__(self, f.name, validate.vector(name, value, n, ConfigError, sign))
            elif "scalar" in f.metadata:
                object.__setattr__(self, f.name, validate.signed_number(name, value, ConfigError, f.metadata["scalar"]))
            elif "choice" in f.metadata:
                validate.choice(name, value, f.metadata["choice"], ConfigError)
            elif "flag" in f.metadata:
                object.__setattr__(self, f.name, validate.flag(name, value, ConfigError))
        if not 0.0 < self.control_period <= 0.1:
            raise ConfigError(f"{type(self).__name__}.control_period must be in (0, 0.1] s, got {self.control_period}")
        self._check_goal_box()

    def _check_goal_box(self):
        name, lo, hi = type(self).__name__, self.goal_box_min, self.goal_box_max
        if (lo is None) != (hi is None):
            raise ConfigError(f"{name}.goal_box_min and goal_box_max must be set together (or neither)")
        if lo is not None and not all(a < b for a, b in zip(lo, hi)):
            raise ConfigError(f"{name}.goal_box_min must be below goal_box_max on every axis, "
                              f"got {list(lo)} and {list(hi)}")
        if lo is not None and self.table_height is not None and self.table_height + self.goal_table_clearance >= hi[2]:
            raise ConfigError(f"{name}.table_height + goal_table_clearance must be below goal_box_max z, "
                              f"got {self.table_height + self.goal_table_clearance} >= {hi[2]}")

    @classmethod
    def from_dict(cls, data: dict | None):
        return cls(**config_fields(cls, data))

    def to_dict(self) -> dict:
        out = {"type": self.kind}
        for f in dataclasses.fields(self):
            v = getattr(self, f.name)
            out[f.name] = list(v) if isinstance(v, tuple) else v
        return out

    def replace(self, **changes):
        return dataclasses.replace(self, **changes)

    def for_joints(self, n: int, home) -> "_Base":
        """This config for an arm of ``n`` joints: ``rest_posture`` null becomes ``home``, a scalar
        ``rest_posture`` or ``torque_limits`` is broadcast to n; another length is a ``ConfigError``."""
        changes = {}
        for name, default in (("rest_posture", home), ("torque_limits", None)):
            value = getattr(self, name)
            if value is None:
                value = None if default is None else tuple(float(x) for x in default)
            elif len(value) == 1:
                value = value * n
            elif len(value) != n:
                raise ConfigError(f"{type(self).__name__}.{name} has {len(value)} entries; the arm has {n} joints")
            if value != getattr(self, name):
                changes[name] = value
        return dataclasses.replace(self, **changes) if changes else self

    def array(self, name: str) -> np.ndarray:
        """A vector field as a read-only float array (cached: configs are immutable)."""
        cache = self.__dict__.setdefault("_arrays", {})
        if name not in cache and getattr(self, name) is None:
            raise ConfigError(f"{type(self).__name__}.{name} is null: for_joints(n, home) makes the config for an arm")
        if name not in cache:
            arr = np.asarray(getattr(self, name), dtype=float)
            arr.flags.writeable = False
            cache[name] = arr
        return cache[name]


def _vec(n: int, sign: str = "any", default=None, optional: bool = False):
    return field(default=default, metadata={"vector": (n, sign), "optional": optional})


def _num(sign: str, default: float | None, optional: bool = False):
    return field(default=default, metadata={"scalar": sign, "optional": optional})


def _choice(choices: tuple, default: str):
    return field(default=default, metadata={"choice": choices})


def _flag(default: bool):
    return field(default=default, metadata={"flag": True})


@dataclass(frozen=True)
class OSCConfig(_Base):
    """Operational-space controller (see ``controllers.osc``).

    Gains per task axis (x, y, z, rx, ry, rz); ``kd = 2 * damping_ratio * sqrt(kp)``.
    ``output_max`` scales a normalized action in [-1, 1]^6 into a pose delta (m, rad).
    ``gravity_compensation`` (``GRAVITY_COMPENSATION``): ``driver`` leaves g(q) out of the command
    (``controllers.robot.controlled_model``); ``torque_limits`` bound what is commanded.
    ``goal_box_min``/``goal_box_max`` and ``table_height`` + ``goal_table_clearance`` bound the goal
    position (``controllers.workspace``; default: no bound).
    ``joint_limits``: the joint-limit filter (``controllers.osc.limit_filter``) keeps the joints
    ``position_margin`` inside their position limits, with room to brake at ``braking_acceleration``,
    and under their velocity limits; it leaves the torque unchanged wherever the law already does.
    The reference work's OSC has none: the mismatch experiment's configs set it false.
    ``singularity_damping``: eps of the singularity-robust task inertia (``controllers.osc.task_inertia``):
    eigenvalues of J M^-1 J^T below eps are inverted as w / eps^2 instead of 1 / w, so the task
    force in a direction the arm is about to lose fades out (0: the plain inverse, the reference
    work's; the mismatch experiment's configs set 0).
    """

    kind = "osc"
    kp: tuple = _vec(6, "positive", 150.0)
    damping_ratio: tuple = _vec(6, "nonnegative", 1.0)
    output_max: tuple = _vec(6, "positive", (0.05, 0.05, 0.05, 0.5, 0.5, 0.5))
    nullspace_kp: float = _num("nonnegative", 10.0)
    rest_posture: tuple | None = _vec(None, "any", None, optional=True)    # rad; null: the robot's home
    torque_limits: tuple | None = _vec(None, "positive", None, optional=True)   # N m; null: the URDF's
    lambda_rcond: float = _num("positive", 1e-6)
    control_period: float = _num("positive", 0.02)
    gravity_compensation: str = _choice(GRAVITY_COMPENSATION, "controller")
    goal_box_min: tuple | None = _vec(3, "any", None, optional=True)    # m, world; goals clamped into the box
    goal_box_max: tuple | None = _vec(3, "any", None, optional=True)
    table_height: float | None = _num("any", None, optional=True)      # m, world z of the table top
    goal_table_clearance: float = _num("nonnegative", 0.0)             # m, goals kept this far above the table
    joint_limits: bool = _flag(True)                          # the joint-limit filter (controllers.osc)
    position_margin: float = _num("nonnegative", 0.05)        # rad kept clear of each joint limit
    braking_acceleration: float = _num("positive", 5.0)    # rad/s^2 assumed available to stop before a limit
    singularity_damping: float = _num("nonnegative", 0.04)    # eps (eigenvalue of J M^-1 J^T); 0: off

    @functools.cached_property
    def kd(self) -> np.ndarray:
        return 2.0 * self.array("damping_ratio") * np.sqrt(self.array("kp"))


@dataclass(frozen=True)
class QPConfig(_Base):
    """Task-space QP controller (see ``controllers.qp``): same task PD as the OSC, solved under
    dynamics, torque, joint-velocity and joint-position constraints. ``gravity_compensation`` as
    for the OSC (``driver``: the torque map, brake and hold torques leave g(q) out); the goal box as for
    the OSC. With ``table_height`` set, the TCP is also held at z >= table_height + table_margin."""

    kind = "qp"
    kp: tuple = _vec(6, "positive", 150.0)
    damping_ratio: tuple = _vec(6, "nonnegative", 1.0)
    output_max: tuple = _vec(6, "positive", (0.05, 0.05, 0.05, 0.5, 0.5, 0.5))
    task_weight: tuple = _vec(6, "positive", 1.0)
    nullspace_kp: float = _num("nonnegative", 10.0)
    posture_weight: float = _num("positive", 1e-3)
    velocity_weight: float = _num("nonnegative", 10.0)  # weight of || qd + T qdd ||^2 (joint speed next period)
    rest_posture: tuple | None = _vec(None, "any", None, optional=True)    # rad; null: the robot's home
    torque_limits: tuple | None = _vec(None, "positive", None, optional=True)   # N m; null: the URDF's
    position_margin: float = _num("nonnegative", 0.05)        # rad kept clear of each joint limit
    braking_acceleration: float = _num("positive", 5.0)    # rad/s^2 assumed available to stop before a limit
    hold_damping: float = _num("nonnegative", 10.0)           # N m s/rad, joint damping of the fallback hold torque
    control_period: float = _num("positive", 0.02)
    gravity_compensation: str = _choice(GRAVITY_COMPENSATION, "controller")
    goal_box_min: tuple | None = _vec(3, "any", None, optional=True)    # m, world; goals clamped into the box
    goal_box_max: tuple | None = _vec(3, "any", None, optional=True)
    table_height: float | None = _num("any", None, optional=True)      # m, world z of the table top
    goal_table_clearance: float = _num("nonnegative", 0.0)             # m, goals kept this far above the table
    table_margin: float = _num("nonnegative", 0.02)            # m, the TCP kept this far above table_height

    @functools.cached_property
    def kd(self) -> np.ndarray:
        return 2.0 * self.array("damping_ratio") * np.sqrt(self.array("kp"))


CONFIG_TYPES = {OSCConfig.kind: OSCConfig, QPConfig.kind: QPConfig}


def config_from_dict(data: dict) -> OSCConfig | QPConfig:
    """Build a controller config from a mapping whose ``type`` is ``osc`` or ``qp``."""
    kind = (data or {}).get("type", "osc")
    if kind not in CONFIG_TYPES:
        raise ConfigError(f"unknown controller type {kind!r}; expected one of {sorted(CONFIG_TYPES)}")
    return CONFIG_TYPES[kind].from_dict(data)


def load_yaml_mapping(path: str | Path, what: str, error: type[Exception] = ConfigError) -> dict:
    """Read a YAML file that holds a mapping; every problem raises ``error`` with the file named.

    An empty file (or one of comments only) is refused: it is a truncated or wrong file far more
    often than a request for the defaults, which a caller states with an explicit mapping."""
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise error(f"{what} not found: {path}") from None
    except yaml.YAMLError as exc:
        raise error(f"{path}: invalid YAML: {exc}") from None
    if data is None:
        raise error(f"{path}: the file is empty (no {what} keys)")
    if not isinstance(data, dict):
        raise error(f"{path}: expected a mapping of {what} keys, got {type(data).__name__}")
    return data


def load_config(path: str | Path) -> OSCConfig | QPConfig:
    """Load a controller config from YAML; errors name the file. A file without keys (empty, or
    ``{}``) is refused: the defaults are ``type: osc`` (or ``qp``) and nothing else."""
    data = load_yaml_mapping(path, "controller config")
    if not data:
        raise ConfigError(f"{path}: no controller config keys; for the defaults write 'type: osc' or 'type: qp'")
    try:
        return config_from_dict(data)
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from None

"""Topic names, message types and the ``ohio/task_state`` layout of this stack (docs/ros.md).

============================  ===============================  ==========================================
role (``TopicMap`` field)     default topic                    type
============================  ===============================  ==========================================
``joint_states``              ``/joint_states``                ``sensor_msgs/msg/JointState``
``commands`` (optional)       ``/effort_controller/commands``  ``std_msgs/msg/Float64MultiArray``
``task_state`` (optional)     ``/ohio/task_state``             ``std_msgs/msg/Float64MultiArray``
``ee_goal`` (optional)        ``/ohio/ee_goal``                ``geometry_msgs/msg/PoseStamped`` (frame ``world``)
``gripper`` (optional)        ``/ohio/gripper_command``        ``std_msgs/msg/Float64`` (0 open .. 1 closed)
============================  ===============================  ==========================================

Every role given a topic must be in the bag, except ``ee_goal`` and ``gripper`` (read when present).
Without ``task_state`` (a robot driver's log), rows are resampled to the control period and the
observation is the arm's own state (``ohio_core.data.resample``). ``effort_source`` says where the
torque of each period comes from: ``commands`` (the commanded efforts, held over the period),
``joint_states`` (the measured ``effort`` field) or ``none`` (no torques: goals are recovered by
state matching). Ready-made maps (``PRESETS``): ``config/topics/ohio.yaml`` (this stack),
``config/topics/ros2_control.yaml`` (joint_state_broadcaster + a forward effort controller) and
``config/topics/franka_ros2.yaml`` (franka_robot_state_broadcaster's measured and desired joint
states; the desired efforts are libfranka's ``tau_J_d``, without g(q)) and
``config/topics/franka_ros1.yaml`` (franka_ros's ``FrankaState`` in a ROS 1 ``.bag``).

Commands are ``Float64MultiArray`` (7 torques) or a ``JointState`` whose ``effort`` holds them
(matched by name). A robot-state message (``STATE_MESSAGE_FIELDS``: franka_ros's ``FrankaState``)
holds the state and the command in arm-joint order; one topic of it may then serve both
``joint_states`` and ``commands``.

Joint states are matched by joint NAME (``TopicMap.arm_joints``, default ``panda_joint1..7``);
extra joints (the fingers) are ignored by the reader. Effort commands carry one torque per arm
joint, in ``arm_joints`` order (the ros2_control forward command controller convention); the
writer also names the joints in ``layout.dim[0].label``.

Task state (``ohio/task_state``), layout version 2. The message describes itself: ``layout.dim[0]``
has ``label = "ohio_task_state_v2:" + ",".join(TASK_STATE_FIELDS)`` and ``size = stride = 20``::

    index  field            meaning
    0      episode          episode id (integer valued)
    1      step             control periods completed in the episode (0 at the reset)
    2      reward           reward of the period that just ended (NaN at step 0)
    3      success          task success at the end of that period (0/1)
    4      last             1 on the episode's final message, else 0
    5      timeout          1 if the episode ended by its horizon (on the final message)
    6      terminal         1 if it ended in a terminal state (on the final message)
    7-9    object_x..z      the task's object, position, world (m): the cube (reach, lift), the
                            door handle's grasp point (door)
    10-13  object_qx..qw    its orientation, unit quaternion (x, y, z, w)
    14-16  target_x..z      target position, world (m); for the door, the hinge axis at the handle's height
    17     finger_opening   distance between the fingertips (m)
    18     door_angle       door hinge angle (rad; 0 without a door)
    19     handle_angle     door handle angle (rad; 0 without a door)

Version 1 (bags written before the door task) named the object ``cube_*`` and had no angles: its
names are read as their version-2 names (``TASK_STATE_ALIASES``) and the angles as 0.
Readers look fields up by name in the label, so a later version may append fields. Bags whose
task-state messages have no label can still be read by giving ``TopicMap.task_state_fields``.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

from controllers.config import load_yaml_mapping
from controllers.description import MIN_JOINTS

JOINT_STATES = "/joint_states"
EFFORT_COMMANDS = "/effort_controller/commands"
EE_GOAL = "/ohio/ee_goal"
GRIPPER = "/ohio/gripper_command"
TASK_STATE = "/ohio/task_state"

JOINT_STATE_TYPE = "sensor_msgs/msg/JointState"
FLOAT64_MULTI_ARRAY = "std_msgs/msg/Float64MultiArray"
POSE_STAMPED = "geometry_msgs/msg/PoseStamped"
FLOAT64 = "std_msgs/msg/Float64"
FRANKA_STATE_TYPE = "franka_msgs/msg/FrankaState"

GOAL_FRAME = "world"
ARM_JOINTS = tuple(f"panda_joint{i}" for i in range(1, 8))
FINGER_JOINTS = ("panda_finger_joint1", "panda_finger_joint2")

#: message type of each role, as this stack writes it
ROLE_TYPES = {
    "joint_states": JOINT_STATE_TYPE,
    "commands": FLOAT64_MULTI_ARRAY,
    "task_state": FLOAT64_MULTI_ARRAY,
    "ee_goal": POSE_STAMPED,
    "gripper": FLOAT64,
}
#: message types a reader takes for each role (``ROLE_TYPES`` first)
READ_TYPES = {**{role: (t,) for role, t in ROLE_TYPES.items()},
              "joint_states": (JOINT_STATE_TYPE, FRANKA_STATE_TYPE),
              "commands": (FLOAT64_MULTI_ARRAY, JOINT_STATE_TYPE, FRANKA_STATE_TYPE)}
#: fields of a robot-state message that holds a whole arm state in joint order (no joint names):
#: position, velocity, measured and commanded effort (franka_ros's FrankaState, libfranka's names)
STATE_MESSAGE_FIELDS = {FRANKA_STATE_TYPE: {"position": "q", "velocity": "dq", "effort": "tau_J", "command": "tau_J_d"}}
#: the roles one topic may serve together (a robot-state message holds the state and the command)
SHARED_ROLES = ("joint_states", "commands")
ROLES = ("joint_states", "commands", "task_state", "ee_goal", "gripper")
#: roles whose topic must be in a bag when the topic map names one
REQUIRED_ROLES = ("joint_states", "commands", "task_state")
OPTIONAL_ROLES = ("ee_goal", "gripper")
#: roles ``BagWriter`` writes in every bag
WRITER_ROLES = ("joint_states", "commands", "task_state")
EFFORT_SOURCES = ("commands", "joint_states", "none")

TASK_STATE_VERSION = 2
TASK_STATE_PREFIX = "ohio_task_state_v"
TASK_STATE_FIELDS: tuple[str, ...] = (
    "episode", "step", "reward", "success", "last", "timeout", "terminal",
    "object_x", "object_y", "object_z", "object_qx", "object_qy", "object_qz", "object_qw",
    "target_x", "target_y", "target_z", "finger_opening", "door_angle", "handle_angle",
)
TASK_STATE_LABEL = f"{TASK_STATE_PREFIX}{TASK_STATE_VERSION}:" + ",".join(TASK_STATE_FIELDS)
#: fields a reader cannot do without; the others default to 0 (``TASK_STATE_ZERO``) or NaN (poses)
TASK_STATE_REQUIRED = ("episode", "step", "reward")
#: fields that are 0 where a message does not carry them (episode-end flags; door angles of a scene without one)
TASK_STATE_ZERO = ("success", "last", "timeout", "terminal", "door_angle", "handle_angle")
#: version-1 field names and the version-2 names they are read as
TASK_STATE_ALIASES = {f"cube_{a}": f"object_{a}" for a in ("x", "y", "z", "qx", "qy", "qz", "qw")}
TS = {name: i for i, name in enumerate(TASK_STATE_FIELDS)}


def parse_task_state_label(label: str) -> tuple[int, tuple[str, ...]]:
    """``"ohio_task_state_v2:episode,step,..."`` -> (2, ("episode", "step", ...)), version-1 names read
    as their version-2 names (``canonical_fields``)."""
    head, sep, body = label.partition(":")
    if not sep or not head.startswith(TASK_STATE_PREFIX) or not head[len(TASK_STATE_PREFIX):].isdigit():
        raise ValueError(f"not an ohio task-state layout label: {label[:80]!r} "
                         f"(expected {TASK_STATE_PREFIX}<version>:<field>,<field>,...)")
    fields = canonical_fields(f.strip() for f in body.split(","))
    if not all(fields) or len(set(fields)) != len(fields):
        raise ValueError(f"task-state layout label has empty or repeated field names: {label[:200]!r}")
    return int(head[len(TASK_STATE_PREFIX):]), fields


def canonical_fields(names) -> tuple[str, ...]:
    """Task-state field names with version-1 names read as their version-2 names."""
    return tuple(TASK_STATE_ALIASES.get(n, n) for n in names)


class TopicMapError(ValueError):
    """A topic map is malformed (unknown key, wrong type)."""


@dataclass(frozen=True)
class TopicMap:
    """Which topics of a bag hold what, and the arm's joint names.

    ``commands``, ``task_state``, ``ee_goal`` and ``gripper`` may be None (not recorded).
    ``effort_source``: ``commands``, ``joint_states`` (measured effort) or ``none``.
    ``task_state_fields`` is the field layout to assume for task-state messages that carry no
    layout label (None: require a label). ``commanded_effort_includes_gravity`` and
    ``measured_effort_includes_gravity`` say whether the logged efforts hold g(q) (False where the
    robot driver adds it, as libfranka does to commands: ``data.gravity``).
    """

    joint_states: str = JOINT_STATES
    commands: str | None = EFFORT_COMMANDS
    task_state: str | None = TASK_STATE
    ee_goal: str | None = EE_GOAL
    gripper: str | None = GRIPPER
    arm_joints: tuple[str, ...] = ARM_JOINTS
    finger_joints: tuple[str, ...] = FINGER_JOINTS
    task_state_fields: tuple[str, ...] | None = None
    effort_source: str = "commands"
    commanded_effort_includes_gravity: bool = True
    measured_effort_includes_gravity: bool = True

    def __post_init__(self):
        for role in ROLES:
            v = getattr(self, role)
            if v is None and role != "joint_states":
                continue
            if not isinstance(v, str) or not v.strip():
                raise TopicMapError(f"TopicMap.{role} must be a topic name, got {v!r}")
        for name in ("arm_joints", "finger_joints", "task_state_fields"):
            v = getattr(self, name)
            if v is None and name == "task_state_fields":
                continue
            if isinstance(v, str) or not all(isinstance(j, str) and j for j in v):
                raise TopicMapError(f"TopicMap.{name} must be a list of names, got {v!r}")
            object.__setattr__(self, name, tuple(v))
        if len(self.arm_joints) < MIN_JOINTS or len(set(self.arm_joints)) != len(self.arm_joints):
            raise TopicMapError(f"TopicMap.arm_joints must name at least {MIN_JOINTS} distinct joints, "
                                f"got {list(self.arm_joints)}")
        for name in ("commanded_effort_includes_gravity", "measured_effort_includes_gravity"):
            if not isinstance(getattr(self, name), bool):
                raise TopicMapError(f"TopicMap.{name} must be true or false, got {getattr(self, name)!r}")
        if self.effort_source not in EFFORT_SOURCES:
            raise TopicMapError(f"TopicMap.effort_source must be one of {list(EFFORT_SOURCES)}, "
                                f"got {self.effort_source!r}")
        if self.effort_source == "commands" and self.commands is None:
            raise TopicMapError("TopicMap.effort_source is 'commands' but no commands topic is given; "
                                "use effort_source: joint_states (measured efforts) or none (state matching)")
        used = [getattr(self, r) for r in ROLES if getattr(self, r) is not None
                and not (r == "commands" and self.commands == self.joint_states)]
        if len(set(used)) != len(used):
            raise TopicMapError(f"TopicMap assigns one topic to two roles: {used} (only joint_states and commands "
                                f"may share one, a robot-state message such as {FRANKA_STATE_TYPE})")
        if self.task_state_fields is not None:
            missing = [f for f in TASK_STATE_REQUIRED if f not in self.task_state_fields]
            if missing:
                raise TopicMapError(f"TopicMap.task_state_fields lacks {missing}")

    def topic(self, role: str) -> str | None:
        return getattr(self, role)

    def effort_includes_gravity(self, source: str) -> bool:
        """Whether the efforts of ``source`` (``commands`` or ``joint_states``) hold g(q)."""
        return self.commanded_effort_includes_gravity if source == "commands" else self.measured_effort_includes_gravity

    def roles(self) -> dict[str, str]:
        """role -> topic name, for the roles that have a topic."""
        return {r: getattr(self, r) for r in ROLES if getattr(self, r) is not None}

    @classmethod
    def from_dict(cls, data: dict | None) -> "TopicMap":
        data = dict(data or {})
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise TopicMapError(f"unknown key(s) {unknown} in topic map; known keys: {sorted(known)}")
        return cls(**data)

    @classmethod
    def load(cls, path: str | Path) -> "TopicMap":
        """Load from YAML (keys as the fields; omitted keys keep this stack's defaults)."""
        data = load_yaml_mapping(path, "topic map", TopicMapError)
        try:
            return cls.from_dict(data)
        except (TopicMapError, TypeError) as exc:
            raise TopicMapError(f"{path}: {exc}") from None

    @classmethod
    def preset(cls, name: str) -> "TopicMap":
        """A ready-made map by name (``PRESETS``); the same as its file in ``config/topics/``."""
        if name not in PRESETS:
            raise TopicMapError(f"unknown topic map {name!r}; ready-made maps: {sorted(PRESETS)} (or give a YAML file)")
        return cls.from_dict(PRESETS[name])

    def for_robot(self, robot) -> "TopicMap":
        """This map with ``robot``'s arm and gripper joints (a ``controllers.description.RobotDescription``)."""
        return dataclasses.replace(self, arm_joints=tuple(robot.joints), finger_joints=tuple(robot.gripper_joints))

    def to_dict(self) -> dict:
        out = {}
        for f in dataclasses.fields(self):
            v = getattr(self, f.name)
            out[f.name] = list(v) if isinstance(v, tuple) else v
        return out


#: ready-made topic maps (mirrored by ``config/topics/<name>.yaml``)
PRESETS: dict[str, dict] = {
    "ohio": {},
    "ros2_control": {"commands": "/forward_effort_controller/commands", "effort_source": "commands",
                     "task_state": None, "ee_goal": None, "gripper": None},
    "franka_ros2": {"joint_states": "/franka_robot_state_broadcaster/measured_joint_states",
                    "commands": "/franka_robot_state_broadcaster/desired_joint_states", "effort_source": "commands",
                    "task_state": None, "ee_goal": None, "gripper": None,
                    "commanded_effort_includes_gravity": False, "measured_effort_includes_gravity": True},
    "franka_ros1": {"joint_states": "/franka_state_controller/franka_states",
                    "commands": "/franka_state_controller/franka_states", "effort_source": "commands",
                    "task_state": None, "ee_goal": None, "gripper": None,
                    "commanded_effort_includes_gravity": False, "measured_effort_includes_gravity": True},
}

"""
Typed, validated configurations of the arm nodes, built from ROS parameters (no middleware here).

The low-level controller is configured by the ``controller.*`` parameters: ``controller.type``
(``osc`` or ``qp``) and the fields of ``controllers.config.OSCConfig``/``QPConfig``. See
``ohio_ros.config`` for what the node configs share.
"""

import dataclasses
from dataclasses import dataclass

from controllers import validate
from controllers.config import CONFIG_TYPES, ConfigError, GRAVITY_COMPENSATION
from controllers.description import DEFAULT_ROBOT, load_robot, RobotConfigError
from ohio_ros.config import (choice, EXECUTOR_CHOICES, flag, label, NodeConfig, number,
                             ParameterError, string)

CONTROLLER_PREFIX = 'controller.'
#: ``controller.*`` parameters the controller node has no default for, and what to set. Who
#: adds gravity compensation differs between robots, and a wrong guess pushes the arm with its
#: own weight (twice g(q), or none); the launch files state it.
CONTROLLER_NODE_REQUIRED = {
    CONTROLLER_PREFIX + 'gravity_compensation':
        "'driver' where the robot driver adds gravity compensation to the effort commands "
        "(Franka: libfranka, franka_ros2), 'controller' where it does not (the MuJoCo "
        'simulator, a bare motor torque interface)',
}
TASKS = ('reach', 'lift')
POLICY_SOURCES = ('model', 'scripted')
TRIGGERS = ('task_state', 'timer')
TICK_SOURCES = ('joint_state', 'timer')
STORAGES = ('mcap', 'sqlite3')


def check_robot(value):
    """``value`` of parameter ``robot``: a robot of config/robots or a robot file."""
    try:
        return load_robot(string('robot', value))
    except RobotConfigError as exc:
        raise ParameterError(f"parameter 'robot': {exc}") from None


def check_joints(name, value, robot):
    """
    ``value`` of parameter ``name``: the robot's arm joint names as the driver publishes them.

    None: the robot file's.
    """
    if value is None:
        return tuple(robot.joints)
    return validate.names(label(name), value, robot.n, ParameterError, what='arm joints')


def check_priority(value):
    """``value`` of parameter ``realtime_priority``: 0 (off) or a SCHED_FIFO priority 1..98."""
    return number('realtime_priority', value, low=0, high=98, integer=True)


@dataclass(frozen=True)
class ControllerNodeConfig(NodeConfig):
    """
    controller_node: safety timeouts, joint names, diagnostics.

    ``goal_timeout``: a goal older than this (s, node clock, by arrival) is stale -> hold.
    ``state_timeout``: without a joint state this recent (s) no command is published.
    ``realtime_priority``: 1..98 runs the process under SCHED_FIFO at that priority where
    permitted (0: default scheduling).
    ``timing_log``: if set, a JSON file of per-tick timings written at shutdown (benchmarks).
    ``torque_rate_limit``: N m/s per joint; > 0 passes every command through
    ``controllers.rate_limit.TorqueRateLimiter`` (a Franka needs it: 1000); 0: off (the simulator).
    ``robot``: the arm (``check_robot``); ``joints``: its joint names on the topics (default the
    robot file's).
    ``executor``: the rclpy executor that spins the node (``ohio_ros.runtime.make_executor``):
    ``events`` (rclpy's EventsExecutor: callbacks dispatched from C++, the least overhead per
    message), ``single_threaded``, ``multi_threaded``, or ``auto``: ``events`` on the wall clock,
    ``single_threaded`` with ``use_sim_time`` (``ohio_ros.config.resolve_executor``).
    ``tick_on``: ``joint_state`` ticks on the first joint state due in each control period
    (``ohio_ros.arm.tick_schedule``: the command follows its state at once), ``timer`` on a timer
    of the node's own (the state then waits up to one state interval for the tick).
    """

    goal_timeout: float = 0.5
    state_timeout: float = 0.1
    goal_frame: str = 'world'
    robot: str = DEFAULT_ROBOT
    joints: tuple | None = None
    diagnostics_period: float = 1.0
    hold_damping: float = 10.0
    realtime_priority: int = 0
    timing_log: str = ''
    torque_rate_limit: float = 0.0
    executor: str = 'auto'
    tick_on: str = 'joint_state'

    def __post_init__(self):
        number('goal_timeout', self.goal_timeout, low=0.0, low_open=True)
        number('state_timeout', self.state_timeout, low=0.0, low_open=True)
        string('goal_frame', self.goal_frame)
        robot = check_robot(self.robot)
        object.__setattr__(self, 'joints', check_joints('joints', self.joints, robot))
        number('diagnostics_period', self.diagnostics_period, low=0.0, low_open=True)
        number('hold_damping', self.hold_damping, low=0.0)
        object.__setattr__(self, 'realtime_priority', check_priority(self.realtime_priority))
        string('timing_log', self.timing_log)
        number('torque_rate_limit', self.torque_rate_limit, low=0.0)
        choice('executor', self.executor, EXECUTOR_CHOICES)
        choice('tick_on', self.tick_on, TICK_SOURCES)
        for f in ('goal_timeout', 'state_timeout', 'diagnostics_period', 'hold_damping',
                  'torque_rate_limit'):
            object.__setattr__(self, f, float(getattr(self, f)))


@dataclass(frozen=True)
class PolicyNodeConfig(NodeConfig):
    """
    policy_node: where the high-level policy comes from and what it observes.

    ``policy``: ``model`` (a trained model at ``model_path``; task, k and controller come from
    the model) or ``scripted`` (the scripted expert of ``task``, every ``k`` control periods,
    goals scaled by the ``controller.*`` parameters).
    ``trigger``: ``task_state`` acts on task-state messages whose step is a multiple of k,
    ``timer`` every k control periods of the node clock.
    """

    policy: str = 'model'
    model_path: str = ''
    task: str = 'reach'
    k: int = 5
    trigger: str = 'task_state'
    goal_frame: str = 'world'
    robot: str = DEFAULT_ROBOT
    joints: tuple | None = None
    state_timeout: float = 0.1

    def __post_init__(self):
        choice('policy', self.policy, POLICY_SOURCES)
        string('model_path', self.model_path)
        if self.policy == 'model' and not self.model_path:
            raise ParameterError("parameter 'model_path' must name a model file when "
                                 "policy is 'model' (or set policy: scripted)")
        if self.policy == 'scripted' and self.model_path:
            raise ParameterError("parameter 'model_path' is set but policy is 'scripted'")
        choice('task', self.task, TASKS)
        object.__setattr__(self, 'k', number('k', self.k, low=1, integer=True))
        choice('trigger', self.trigger, TRIGGERS)
        string('goal_frame', self.goal_frame)
        robot = check_robot(self.robot)
        object.__setattr__(self, 'joints', check_joints('joints', self.joints, robot))
        object.__setattr__(self, 'state_timeout',
                           number('state_timeout', self.state_timeout, low=0.0, low_open=True))


@dataclass(frozen=True)
class RecorderNodeConfig(NodeConfig):
    """
    recorder_node: bag folder (must not exist; '' picks ohio_bag_<time>) and storage.

    ``robot`` and ``gravity_compensation`` (the controller's: ``driver`` where the robot driver
    adds g(q), so the recorded commands lack it) go into the bag's metadata, from which
    ``ohio relabel`` takes the arm's joint names and the commands' gravity convention.
    """

    output: str = ''
    storage: str = 'mcap'
    record_diagnostics: bool = True
    robot: str = DEFAULT_ROBOT
    gravity_compensation: str = 'controller'

    def __post_init__(self):
        string('output', self.output)
        choice('storage', self.storage, STORAGES)
        flag('record_diagnostics', self.record_diagnostics)
        check_robot(self.robot)
        choice('gravity_compensation', self.gravity_compensation, GRAVITY_COMPENSATION)


def controller_defaults(kind: str) -> dict:
    """Map ``controller.*`` parameter names to defaults for a controller type (None: not set)."""
    cls = CONFIG_TYPES[kind]
    out = {CONTROLLER_PREFIX + 'type': kind}
    for f in dataclasses.fields(cls):
        v = f.default
        out[CONTROLLER_PREFIX + f.name] = list(v) if isinstance(v, tuple) else v
    return out


def controller_config(params: dict):
    """
    OSCConfig/QPConfig from ``controller.*`` parameters; errors name the parameter.

    Values that are None (declared but not set) keep the config's defaults.
    """
    kind = params.get(CONTROLLER_PREFIX + 'type', 'osc')
    choice(CONTROLLER_PREFIX + 'type', kind, sorted(CONFIG_TYPES))
    cls = CONFIG_TYPES[kind]
    data = {}
    for name, value in params.items():
        if not name.startswith(CONTROLLER_PREFIX) or name == CONTROLLER_PREFIX + 'type':
            continue
        if value is not None:
            data[name[len(CONTROLLER_PREFIX):]] = value
    try:
        return cls.from_dict(data)
    except (ConfigError, TypeError) as exc:
        msg = str(exc).replace(f'{cls.__name__}.', CONTROLLER_PREFIX)
        raise ParameterError(f'controller parameters ({kind}): {msg}') from None

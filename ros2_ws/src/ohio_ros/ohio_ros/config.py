"""
Typed, validated node configurations built from ROS parameters (no middleware here).

Each node config is a frozen dataclass whose field names are the node's parameter names;
``from_params`` checks types and ranges and raises ``ParameterError`` naming the parameter.
The low-level controller is configured by the ``controller.*`` parameters: ``controller.type``
(``osc`` or ``qp``) and the fields of ``controllers.config.OSCConfig``/``QPConfig``; the
rebalancing node's LP by ``rebalancing.*`` (``controllers.rebalancing.RebalancingConfig``).
"""

import dataclasses
from dataclasses import dataclass

from controllers import validate
from controllers.config import CONFIG_TYPES, ConfigError
from ohio_core.data.topics import ARM_JOINTS

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
STORAGES = ('mcap', 'sqlite3')
REBALANCING_PREFIX = 'rebalancing.'
ROUTING_POLICY_SOURCES = ('heuristic', 'model')
#: the goal-level behavior heuristics of ``ohio_core.routing.policies``
ROUTING_HEURISTICS = ('demand_proportional', 'random_distribution', 'uniform')


class ParameterError(ValueError):
    """A node parameter has a wrong type or value; the message names the parameter."""


def _label(name):
    return f'parameter {name!r}'


def _number(name, value, **bounds):
    return validate.number(_label(name), value, ParameterError, **bounds)


def _choice(name, value, choices):
    return validate.choice(_label(name), value, choices, ParameterError)


def _string(name, value):
    return validate.string(_label(name), value, ParameterError)


def _flag(name, value):
    return validate.flag(_label(name), value, ParameterError)


def _joints(name, value):
    return validate.names(_label(name), value, 7, ParameterError, what='arm joints')


def _priority(value):
    return _number('realtime_priority', value, low=0, high=98, integer=True)


class _NodeConfig:
    """Base: ``from_params`` / ``defaults`` shared by the node configs."""

    @classmethod
    def defaults(cls) -> dict:
        """Parameter name -> default value (what a node declares)."""
        return {f.name: list(f.default) if isinstance(f.default, tuple) else f.default
                for f in dataclasses.fields(cls)}

    @classmethod
    def from_params(cls, params: dict):
        """Build from {parameter name: value}; unknown names are an error naming them."""
        validate.unknown_keys(params, (f.name for f in dataclasses.fields(cls)), ParameterError,
                              what='parameter')
        return cls(**params)


@dataclass(frozen=True)
class ControllerNodeConfig(_NodeConfig):
    """
    controller_node: safety timeouts, joint names, diagnostics.

    ``goal_timeout``: a goal older than this (s, node clock, by arrival) is stale -> hold.
    ``state_timeout``: without a joint state this recent (s) no command is published.
    ``realtime_priority``: 1..98 runs the process under SCHED_FIFO at that priority where
    permitted (0: default scheduling).
    ``timing_log``: if set, a JSON file of per-tick timings written at shutdown (benchmarks).
    """

    goal_timeout: float = 0.5
    state_timeout: float = 0.1
    goal_frame: str = 'world'
    joints: tuple = ARM_JOINTS
    diagnostics_period: float = 1.0
    hold_damping: float = 10.0
    realtime_priority: int = 0
    timing_log: str = ''

    def __post_init__(self):
        _number('goal_timeout', self.goal_timeout, low=0.0, low_open=True)
        _number('state_timeout', self.state_timeout, low=0.0, low_open=True)
        _string('goal_frame', self.goal_frame)
        object.__setattr__(self, 'joints', _joints('joints', self.joints))
        _number('diagnostics_period', self.diagnostics_period, low=0.0, low_open=True)
        _number('hold_damping', self.hold_damping, low=0.0)
        object.__setattr__(self, 'realtime_priority', _priority(self.realtime_priority))
        _string('timing_log', self.timing_log)
        for f in ('goal_timeout', 'state_timeout', 'diagnostics_period', 'hold_damping'):
            object.__setattr__(self, f, float(getattr(self, f)))


@dataclass(frozen=True)
class PolicyNodeConfig(_NodeConfig):
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
    joints: tuple = ARM_JOINTS
    state_timeout: float = 0.1

    def __post_init__(self):
        _choice('policy', self.policy, POLICY_SOURCES)
        _string('model_path', self.model_path)
        if self.policy == 'model' and not self.model_path:
            raise ParameterError("parameter 'model_path' must name a model file when "
                                 "policy is 'model' (or set policy: scripted)")
        if self.policy == 'scripted' and self.model_path:
            raise ParameterError("parameter 'model_path' is set but policy is 'scripted'")
        _choice('task', self.task, TASKS)
        object.__setattr__(self, 'k', _number('k', self.k, low=1, integer=True))
        _choice('trigger', self.trigger, TRIGGERS)
        _string('goal_frame', self.goal_frame)
        object.__setattr__(self, 'joints', _joints('joints', self.joints))
        object.__setattr__(self, 'state_timeout',
                           _number('state_timeout', self.state_timeout, low=0.0, low_open=True))


@dataclass(frozen=True)
class SimNodeConfig(_NodeConfig):
    """
    mujoco_sim_node: task, episodes, rates and pacing.

    ``horizon``: control periods per episode (0: the task's default; -1: one endless episode).
    ``publish_rate``: Hz of /joint_states and /clock (a divisor of the physics rate, a multiple
    of the control rate). ``real_time_factor``: 1 paces the simulation at wall-clock speed,
    0 runs it as fast as possible. ``lockstep``: at every control period wait (at most
    ``lockstep_timeout`` s of wall time) for an effort command received during that period.
    ``wait_for_command``: hold the arm still (time runs, no task state) until the first command
    and until ``ohio/task_state`` has ``start_subscribers`` subscribers (e.g. the policy, so that
    an unpaced simulation does not run ahead of a node still starting).
    ``realtime_priority``: as for the controller node (SCHED_FIFO where permitted, 0: off).
    """

    task: str = 'reach'
    seed: int = 0
    horizon: int = 0
    control_period: float = 0.02
    publish_rate: float = 500.0
    real_time_factor: float = 1.0
    lockstep: bool = False
    lockstep_timeout: float = 1.0
    wait_for_command: bool = True
    start_subscribers: int = 0
    realtime_priority: int = 0
    joints: tuple = ARM_JOINTS
    report_path: str = ''

    def __post_init__(self):
        from ohio_core.envs.arm.scene import SceneConfig    # the simulator only: mujoco

        _choice('task', self.task, TASKS)
        object.__setattr__(self, 'seed', _number('seed', self.seed, low=0, integer=True))
        object.__setattr__(self, 'horizon', _number('horizon', self.horizon, low=-1,
                                                    integer=True))
        for name, kw in (('control_period', {'low': 0.0, 'low_open': True, 'high': 0.1}),
                         ('publish_rate', {'low': 0.0, 'low_open': True}),
                         ('real_time_factor', {'low': 0.0}),
                         ('lockstep_timeout', {'low': 0.0, 'low_open': True})):
            object.__setattr__(self, name, _number(name, getattr(self, name), **kw))
        steps = 1.0 / (self.publish_rate * SceneConfig().timestep)
        if abs(steps - round(steps)) > 1e-6 or round(steps) < 1:
            raise ParameterError(f"parameter 'publish_rate' ({self.publish_rate} Hz) must divide "
                                 f'the physics rate ({1.0 / SceneConfig().timestep:g} Hz)')
        per_period = self.control_period * self.publish_rate
        if abs(per_period - round(per_period)) > 1e-6 or round(per_period) < 1:
            raise ParameterError(f"parameter 'publish_rate' ({self.publish_rate} Hz) must be a "
                                 f'multiple of the control rate (1 / control_period = '
                                 f'{1.0 / self.control_period:g} Hz)')
        _flag('lockstep', self.lockstep)
        _flag('wait_for_command', self.wait_for_command)
        object.__setattr__(self, 'start_subscribers',
                           _number('start_subscribers', self.start_subscribers, low=0,
                                   integer=True))
        object.__setattr__(self, 'realtime_priority', _priority(self.realtime_priority))
        object.__setattr__(self, 'joints', _joints('joints', self.joints))
        _string('report_path', self.report_path)

    @property
    def publish_period(self) -> float:
        """Seconds of simulated time between two joint-state messages."""
        return 1.0 / self.publish_rate

    @property
    def substeps_per_period(self) -> int:
        """Joint-state messages per control period."""
        return int(round(self.control_period * self.publish_rate))


@dataclass(frozen=True)
class RecorderNodeConfig(_NodeConfig):
    """recorder_node: bag folder (must not exist; '' picks ohio_bag_<time>) and storage."""

    output: str = ''
    storage: str = 'mcap'
    record_diagnostics: bool = True

    def __post_init__(self):
        _string('output', self.output)
        _choice('storage', self.storage, STORAGES)
        _flag('record_diagnostics', self.record_diagnostics)


@dataclass(frozen=True)
class RoutingSimNodeConfig(_NodeConfig):
    """
    routing_sim_node: the scenario, episodes and the step protocol.

    The scenario is the AMoD JSON file ``scenario_file`` or, if that is empty, the synthetic
    city of ``regions`` regions on a ``layout`` (``grid``/``geometric``) drawn from ``seed``
    (``regions`` and ``layout`` are not used with a file). ``horizon``: steps per episode (0: the
    file's ``tf``, 60 for a synthetic city); ``vehicles``: fleet size (0: the scenario's).
    Episode e draws its requests from ``episode_seed(seed, e)``, as ``rollout`` does.
    ``lookahead``: steps of future arrivals in the observation.
    ``step_timeout``: seconds to wait for the flows of a step; then the fleet holds (zero flows,
    counted as a stale step). ``wait_for_flows``: until the first flows arrive, the first state
    is published again every ``step_timeout`` instead (no stale steps while the loop starts).
    ``start_subscribers``: the first state waits until ``routing/state`` has this many
    subscribers. ``max_episodes``: stop stepping after this many episodes (0: never).
    ``report_path``: if set, a JSON summary of the episodes written at shutdown.
    """

    scenario_file: str = ''
    regions: int = 8
    layout: str = 'grid'
    seed: int = 0
    horizon: int = 0
    vehicles: int = 0
    lookahead: int = 4
    step_timeout: float = 2.0
    wait_for_flows: bool = True
    start_subscribers: int = 0
    max_episodes: int = 0
    diagnostics_period: float = 1.0
    report_path: str = ''

    def __post_init__(self):
        from ohio_core.routing.scenario import LAYOUTS    # routing only: scipy

        _string('scenario_file', self.scenario_file)
        for name, low in (('regions', 2), ('seed', 0), ('horizon', 0), ('vehicles', 0),
                          ('lookahead', 0), ('start_subscribers', 0), ('max_episodes', 0)):
            object.__setattr__(self, name, _number(name, getattr(self, name), low=low,
                                                   integer=True))
        _choice('layout', self.layout, LAYOUTS)
        for name in ('step_timeout', 'diagnostics_period'):
            object.__setattr__(self, name, _number(name, getattr(self, name), low=0.0,
                                                   low_open=True))
        _flag('wait_for_flows', self.wait_for_flows)
        _string('report_path', self.report_path)


@dataclass(frozen=True)
class RebalancingNodeConfig(_NodeConfig):
    """
    rebalancing_node: which goal it may use, and for how long it waits for one.

    A goal made for the state of step s (same episode) may be used at step t while
    ``t - s <= max_goal_age_steps``; an older one is stale (zero flows). ``goal_wait``: seconds
    to wait after a state for the goal made for that state before the latest valid one is used.
    The LP is configured by ``rebalancing.*`` (``RebalancingConfig``: ``cost_weight``,
    ``solver``, ``formulation``).
    """

    max_goal_age_steps: int = 2
    goal_wait: float = 0.5
    diagnostics_period: float = 1.0

    def __post_init__(self):
        object.__setattr__(self, 'max_goal_age_steps',
                           _number('max_goal_age_steps', self.max_goal_age_steps, low=0,
                                   integer=True))
        object.__setattr__(self, 'goal_wait', _number('goal_wait', self.goal_wait, low=0.0))
        object.__setattr__(self, 'diagnostics_period',
                           _number('diagnostics_period', self.diagnostics_period, low=0.0,
                                   low_open=True))


@dataclass(frozen=True)
class RoutingPolicyNodeConfig(_NodeConfig):
    """
    routing_policy_node: where the desired distributions come from.

    ``policy``: ``heuristic`` (``heuristic``: ``demand_proportional``, ``random_distribution`` or
    ``uniform``; the random one draws episode e from ``SeedSequence([seed, e, 1])``, as
    ``rollout`` does) or ``model`` (a trained routing goal model at ``model_path``).
    """

    policy: str = 'heuristic'
    heuristic: str = 'demand_proportional'
    model_path: str = ''
    seed: int = 0

    def __post_init__(self):
        _choice('policy', self.policy, ROUTING_POLICY_SOURCES)
        _choice('heuristic', self.heuristic, ROUTING_HEURISTICS)
        _string('model_path', self.model_path)
        if self.policy == 'model' and not self.model_path:
            raise ParameterError("parameter 'model_path' must name a model file when "
                                 "policy is 'model' (or set policy: heuristic)")
        if self.policy == 'heuristic' and self.model_path:
            raise ParameterError("parameter 'model_path' is set but policy is 'heuristic'")
        object.__setattr__(self, 'seed', _number('seed', self.seed, low=0, integer=True))


def rebalancing_defaults() -> dict:
    """Map ``rebalancing.*`` parameter names to the defaults of ``RebalancingConfig``."""
    from controllers.rebalancing import RebalancingConfig

    return {REBALANCING_PREFIX + f.name: f.default
            for f in dataclasses.fields(RebalancingConfig)}


def rebalancing_config(params: dict):
    """Build the RebalancingConfig of ``rebalancing.*`` parameters; errors name the parameter."""
    from controllers.rebalancing import RebalancingConfig

    known = set(rebalancing_defaults())
    validate.unknown_keys((n for n in params if n.startswith(REBALANCING_PREFIX)), known,
                          ParameterError, what='parameter')
    data = {name[len(REBALANCING_PREFIX):]: value for name, value in params.items()
            if name in known and value is not None}
    try:
        return RebalancingConfig.from_dict(data)
    except (ConfigError, TypeError) as exc:
        msg = str(exc).replace('RebalancingConfig.', REBALANCING_PREFIX)
        raise ParameterError(f'rebalancing parameters: {msg}') from None


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
    _choice(CONTROLLER_PREFIX + 'type', kind, sorted(CONFIG_TYPES))
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

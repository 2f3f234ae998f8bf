"""
The typed configuration of mujoco_sim_node, built from ROS parameters (no middleware here).

Apart from the other arm nodes' configs (``ohio_ros.arm.config``) because it checks the rates
against the simulator's physics step (``ohio_core.envs.arm.scene``, which loads MuJoCo): the
other arm nodes, the 50 Hz controller node among them, load no simulator.
"""

from dataclasses import dataclass

from controllers.description import DEFAULT_ROBOT
from ohio_core.envs.arm.scene import SceneConfig
from ohio_ros.arm.config import check_joints, check_priority, check_robot, TASKS
from ohio_ros.config import choice, flag, NodeConfig, number, ParameterError, string


@dataclass(frozen=True)
class SimNodeConfig(NodeConfig):
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
    robot: str = DEFAULT_ROBOT
    joints: tuple | None = None
    report_path: str = ''

    def __post_init__(self):
        choice('task', self.task, TASKS)
        object.__setattr__(self, 'seed', number('seed', self.seed, low=0, integer=True))
        object.__setattr__(self, 'horizon', number('horizon', self.horizon, low=-1,
                                                   integer=True))
        for name, kw in (('control_period', {'low': 0.0, 'low_open': True, 'high': 0.1}),
                         ('publish_rate', {'low': 0.0, 'low_open': True}),
                         ('real_time_factor', {'low': 0.0}),
                         ('lockstep_timeout', {'low': 0.0, 'low_open': True})):
            object.__setattr__(self, name, number(name, getattr(self, name), **kw))
        steps = 1.0 / (self.publish_rate * SceneConfig().timestep)
        if abs(steps - round(steps)) > 1e-6 or round(steps) < 1:
            raise ParameterError(f"parameter 'publish_rate' ({self.publish_rate} Hz) must divide "
                                 f'the physics rate ({1.0 / SceneConfig().timestep:g} Hz)')
        per_period = self.control_period * self.publish_rate
        if abs(per_period - round(per_period)) > 1e-6 or round(per_period) < 1:
            raise ParameterError(f"parameter 'publish_rate' ({self.publish_rate} Hz) must be a "
                                 f'multiple of the control rate (1 / control_period = '
                                 f'{1.0 / self.control_period:g} Hz)')
        flag('lockstep', self.lockstep)
        flag('wait_for_command', self.wait_for_command)
        object.__setattr__(self, 'start_subscribers',
                           number('start_subscribers', self.start_subscribers, low=0,
                                  integer=True))
        object.__setattr__(self, 'realtime_priority', check_priority(self.realtime_priority))
        robot = check_robot(self.robot)
        object.__setattr__(self, 'joints', check_joints('joints', self.joints, robot))
        string('report_path', self.report_path)

    @property
    def publish_period(self) -> float:
        """Seconds of simulated time between two joint-state messages."""
        return 1.0 / self.publish_rate

    @property
    def substeps_per_period(self) -> int:
        """Joint-state messages per control period."""
        return int(round(self.control_period * self.publish_rate))

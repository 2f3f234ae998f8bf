"""
mujoco_sim_node: the MuJoCo arm scene as a robot driver would present it.

Publishes ``/joint_states`` (position, velocity, effort; arm and finger joints) and ``/clock``
every publish period, and ``ohio/task_state`` at every control period; applies the latest
``effort_controller/commands`` and ``ohio/gripper_command`` (zero-order hold). With
``wait_for_command`` the arm is held still (brakes on, time running, no task state) until the
first effort command arrives. Simulated time starts at the wall-clock time the node started
and is the stamp of every message; with ``real_time_factor: 1`` it keeps pace with the wall
clock (catching up after short delays, jumping ahead after long ones), with 0 it runs as fast
as it can.
Stepping runs in its own thread; the executor only receives commands.
Parameters: ``ohio_ros.arm.sim_config.SimNodeConfig`` (``config/mujoco_sim.yaml``).
"""

import threading
import time

from controllers.goals import NonFiniteInputError
from ohio_ros import names, params, qos
from ohio_ros.arm import convert
from ohio_ros.arm.sim_config import SimNodeConfig
from ohio_ros.arm.sim_session import SimSession
from ohio_ros.json_file import write_json
from ohio_ros.runtime import run, set_realtime_priority
from rclpy.node import Node
from rosgraph_msgs.msg import Clock
from sensor_msgs.msg import JointState
from std_msgs.msg import Float64, Float64MultiArray

#: how far (s) the simulation may fall behind the wall clock and still catch up; beyond that,
#: simulated time jumps ahead with the world standing still (counted as lag_resets)
MAX_LAG = 0.25


class MujocoSimNode(Node):
    """Steps a ``SimSession`` in a thread and connects it to topics."""

    def __init__(self, **kwargs):
        super().__init__(names.SIM_NODE, **kwargs)
        values = params.declare(self, SimNodeConfig.defaults())
        self.config = c = SimNodeConfig.from_params(values)
        params.check_unknown(self, list(values))
        if c.realtime_priority:
            refused = set_realtime_priority(c.realtime_priority)
            if refused:
                self.get_logger().warning(f'realtime_priority {c.realtime_priority} not applied '
                                          f'({refused}); default scheduling')
        self.session = SimSession(c.task, c.seed, c.horizon, c.control_period,
                                  c.substeps_per_period, robot=c.robot)
        self.joint_names = list(c.joints) + list(self.session.sim.robot.gripper_joints)
        self.base_ns = time.time_ns()
        self.counts = {'commands': 0, 'commands_rejected': 0, 'gripper_commands': 0,
                       'gripper_rejected': 0, 'lockstep_timeouts': 0, 'lag_resets': 0}
        self._command_event = threading.Event()
        self._stop = threading.Event()

        self.js_pub = self.create_publisher(JointState, names.JOINT_STATES, qos.RELIABLE)
        self.clock_pub = self.create_publisher(Clock, names.CLOCK, qos.RELIABLE)
        self.task_pub = self.create_publisher(Float64MultiArray, names.TASK_STATE, qos.RELIABLE)
        self.create_subscription(Float64MultiArray, names.EFFORT_COMMANDS, self._on_command,
                                 qos.RELIABLE)
        self.create_subscription(Float64, names.GRIPPER, self._on_gripper, qos.RELIABLE)
        self.thread = threading.Thread(target=self._run, name='mujoco_sim', daemon=True)
        self.thread.start()
        pace = 'as fast as possible' if c.real_time_factor == 0 else \
            f'at {c.real_time_factor:g}x real time'
        self.get_logger().info(
            f'{c.task} task, joint states at {c.publish_rate:g} Hz, control period '
            f'{c.control_period * 1e3:g} ms, {pace}{", lockstep" if c.lockstep else ""}')

    # -- inputs --------------------------------------------------------------------------------
    def _on_command(self, msg: Float64MultiArray) -> None:
        try:
            tau = convert.effort_from_msg(msg, self.config.joints)
            self.session.command(tau)
        except (NonFiniteInputError, convert.MessageError, ValueError) as exc:
            self.counts['commands_rejected'] += 1
            self.get_logger().warning(f'effort command rejected: {exc}',
                                      throttle_duration_sec=5.0)
            return
        self.counts['commands'] += 1
        self._command_event.set()

    def _on_gripper(self, msg: Float64) -> None:
        try:
            self.session.command_gripper(convert.gripper_from_msg(msg))
        except (NonFiniteInputError, convert.MessageError) as exc:
            self.counts['gripper_rejected'] += 1
            self.get_logger().warning(f'gripper command rejected: {exc}',
                                      throttle_duration_sec=5.0)
            return
        self.counts['gripper_commands'] += 1

    # -- stepping ------------------------------------------------------------------------------
    def _stamp(self) -> int:
        return self.base_ns + int(round(self.session.time * 1e9))

    def _publish_state(self) -> None:
        stamp = self._stamp()
        pos, vel, eff = self.session.joint_state()
        self.clock_pub.publish(convert.clock_msg(stamp))
        self.js_pub.publish(convert.joint_state_msg(self.joint_names, pos, vel, eff, stamp))

    def _period_start(self) -> None:
        s = self.session
        self.task_pub.publish(convert.task_state_msg(s.task_state_row()))
        if s.episode_over():
            s.next_episode()
            self._publish_state()
            self.task_pub.publish(convert.task_state_msg(s.task_state_row()))

    def _run(self) -> None:
        c, s = self.config, self.session
        self.base_ns = time.time_ns()
        wall0, sim0 = time.monotonic(), s.time
        started = not c.wait_for_command
        try:
            self._publish_state()
            if started:
                self._period_start()
            while not self._stop.is_set():
                if c.real_time_factor > 0:
                    target = wall0 + (s.time + s.publish_period - sim0) / c.real_time_factor
                    delay = target - time.monotonic()
                    if delay > 0:
                        self._stop.wait(delay)
                    elif delay < -MAX_LAG:
                        # too far behind to catch up: time jumps ahead, the world stands still
                        self.base_ns += int(-delay * c.real_time_factor * 1e9)
                        wall0, sim0 = time.monotonic(), s.time
                        self.counts['lag_resets'] += 1
                if not started:
                    started = self.counts['commands'] > 0 and \
                        self.task_pub.get_subscription_count() >= c.start_subscribers
                    if started:
                        self._period_start()
                    else:
                        if c.real_time_factor == 0:       # waiting needs no speed: wall pace
                            self._command_event.wait(s.publish_period)
                        s.idle()
                        self._publish_state()
                        continue
                s.advance()
                self._publish_state()
                if c.real_time_factor == 0:
                    time.sleep(0)                       # let the executor thread take the GIL
                if s.at_period_start:
                    if c.lockstep:
                        if not self._command_event.wait(c.lockstep_timeout):
                            self.counts['lockstep_timeouts'] += 1
                        self._command_event.clear()
                    self._period_start()
        except Exception as exc:  # noqa: B902 - report any failure of the thread, then stop
            if not self._stop.is_set() and self.context.ok():
                self.get_logger().fatal(f'simulation stopped: {type(exc).__name__}: {exc}')
                raise

    def report(self) -> dict:
        """Episodes so far and input counters."""
        return dict(self.session.report(), **self.counts)

    def close(self) -> None:
        """Stop stepping and write the report, if one was asked for."""
        self._stop.set()
        self._command_event.set()
        self.thread.join(timeout=5.0)
        if self.config.report_path:
            write_json(self.config.report_path, self.report(), indent=1)


def main(args=None) -> int:
    """Run the simulator node (console script ``mujoco_sim_node``)."""
    return run(MujocoSimNode, names.SIM_NODE, args)


if __name__ == '__main__':
    raise SystemExit(main())

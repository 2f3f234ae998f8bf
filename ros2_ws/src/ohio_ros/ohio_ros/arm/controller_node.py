"""
controller_node: the 50 Hz OSC/QP effort controller.

Subscribes ``/joint_states`` and ``ohio/ee_goal``; publishes ``effort_controller/commands``
(the topic of a ros2_control forward effort controller) every control period and
``/diagnostics`` every ``diagnostics_period``. Safety rules: ``ohio_ros.arm.control_loop``.
Parameters: ``ohio_ros.arm.config.ControllerNodeConfig`` and ``controller.*``
(``config/controller.yaml``); ``controller.gravity_compensation`` (``controller`` or ``driver``)
has no default and must be set (``ohio_ros.arm.config.CONTROLLER_NODE_REQUIRED``). The node is
spun by the executor its ``executor`` parameter names (default ``auto``: rclpy's EventsExecutor
on the wall clock, the single-threaded one with ``use_sim_time``).

A tick takes the newest joint state, steps the loop and publishes the command; its compute time
(``timing_log``, ``/diagnostics``) is all of that, and the timing log keeps its parts
(``ohio_ros.loop_stats.STAGES``). With ``tick_on: joint_state`` (the default) the tick runs in the
callback of the joint state due in the period (``ohio_ros.arm.tick_schedule``); with ``timer`` on a
timer of the node's own.
"""

import time

from controllers.base import make_controller
from controllers.goals import ImplausibleInputError, NonFiniteInputError
from controllers.rate_limit import TorqueRateLimiter
from controllers.robot import ArmModel
from geometry_msgs.msg import PoseStamped
from ohio_ros import diagnostics, names, params, qos
from ohio_ros.arm import config as cfg
from ohio_ros.arm import convert
from ohio_ros.arm.control_loop import ControlLoop
from ohio_ros.arm.controller_params import declare_controller
from ohio_ros.arm.tick_schedule import StateTickSchedule
from ohio_ros.config import resolve_executor
from ohio_ros.loop_stats import LoopStats
from ohio_ros.pending import take_pending
from ohio_ros.runtime import run, set_realtime_priority
from rclpy.node import Node
from sensor_msgs.msg import JointState
from std_msgs.msg import Float64MultiArray


#: logged once, when the loop first publishes a command
FIRST_COMMAND = 'first effort command published'


class ControllerNode(Node):
    """ROS wiring of ``ControlLoop``: callbacks convert messages, the timer steps the loop."""

    def __init__(self, **kwargs):
        super().__init__(names.CONTROLLER_NODE, **kwargs)
        values = params.declare(self, cfg.ControllerNodeConfig.defaults())
        self.config = cfg.ControllerNodeConfig.from_params(values)
        self.controller_config, ctrl_names = declare_controller(
            self, required=cfg.CONTROLLER_NODE_REQUIRED)
        params.check_unknown(self, list(values) + ctrl_names)

        c = self.config
        if c.realtime_priority:
            refused = set_realtime_priority(c.realtime_priority)
            if refused:
                self.get_logger().warning(f'realtime_priority {c.realtime_priority} not applied '
                                          f'({refused}); default scheduling')
        self.controller = make_controller(self.controller_config, ArmModel(c.robot))
        period = self.controller_config.control_period
        limiter = (TorqueRateLimiter(c.torque_rate_limit, period)
                   if c.torque_rate_limit > 0 else None)
        self.loop = ControlLoop(self.controller, c.goal_timeout, c.state_timeout, c.hold_damping,
                                limiter)
        self.stats = LoopStats(period, keep_log=bool(c.timing_log))
        self.executor_kind = resolve_executor(c.executor,
                                              self.get_parameter('use_sim_time').value)
        self._joint_index = convert.JointIndex(c.joints)
        self._effort = convert.EffortCommand(c.joints)
        self._period_ns = self.stats.period_ns

        self.cmd_pub = self.create_publisher(Float64MultiArray, names.EFFORT_COMMANDS,
                                             qos.RELIABLE)
        self.js_sub = self.create_subscription(JointState, names.JOINT_STATES,
                                               self._on_joint_state, qos.LATEST)
        self.create_subscription(PoseStamped, names.EE_GOAL, self._on_goal, qos.RELIABLE)
        self._schedule = StateTickSchedule(self._period_ns) if c.tick_on == 'joint_state' else None
        self._last_state_tick = None    # node clock (ns) of the last tick a joint state triggered
        self.timer = self.create_timer(period, self._on_timer)
        self.diag_timer = diagnostics.publish_periodically(
            self, f'{self.get_name()}: control loop', c.diagnostics_period, self.diagnostics)
        self.get_logger().info(
            f'{self.controller_config.kind} controller at {1.0 / period:g} Hz, gravity '
            f'compensation by the {self.controller_config.gravity_compensation}, on '
            f'{self.resolve_topic_name(names.JOINT_STATES)} + '
            f'{self.resolve_topic_name(names.EE_GOAL)} -> '
            f'{self.resolve_topic_name(names.EFFORT_COMMANDS)}')

    def _now(self) -> int:
        return self.get_clock().now().nanoseconds

    def _on_joint_state(self, msg: JointState) -> None:
        try:
            # NaN/inf: rejected by on_state (the bounds check), counted as 'nonfinite'
            q, qd = convert.joint_state_arrays(msg, self._joint_index, check_finite=False)
        except NonFiniteInputError:
            self.loop.reject('state', 'nonfinite')
            return
        except convert.MessageError as exc:
            self.loop.reject('state', 'invalid')
            self.get_logger().warning(f'joint state rejected: {exc}',
                                      throttle_duration_sec=5.0)
            return
        now, stamp = self._now(), convert.stamp_ns(msg.header.stamp)
        self.loop.on_state(now, q, qd, stamp)
        if self._schedule is not None and self._schedule.due(stamp if stamp > 0 else now):
            self._tick()

    def _on_goal(self, msg: PoseStamped) -> None:
        try:
            goal = convert.pose_goal_from_msg(msg, self.config.goal_frame)
        except ImplausibleInputError as exc:
            self.loop.reject('goal', 'implausible')
            self.get_logger().warning(f'goal rejected: {exc}', throttle_duration_sec=5.0)
            return
        except NonFiniteInputError:
            self.loop.reject('goal', 'nonfinite')
            self.get_logger().warning('goal with NaN/inf rejected', throttle_duration_sec=5.0)
            return
        except convert.MessageError as exc:
            self.loop.reject('goal', 'invalid')
            self.get_logger().warning(f'goal rejected: {exc}', throttle_duration_sec=5.0)
            return
        self.loop.on_goal(self._now(), goal)

    def _on_timer(self) -> None:
        """
        Tick on the timer.

        With ``tick_on: joint_state`` only as the watchdog of missing states: where no joint state
        has triggered a tick for 1.5 periods of the node clock.
        """
        last = self._last_state_tick
        if self._schedule is None or last is None or self._now() - last > 1.5 * self._period_ns:
            self._tick(timer=True)

    def _tick(self, timer: bool = False) -> None:
        tick = time.monotonic_ns()
        if not timer:
            self._last_state_tick = self._now()
        t0 = time.perf_counter_ns()
        wake = None
        if timer:
            due = self.timer.time_until_next_call()
            wake = None if due is None else self._period_ns - due
            if self._schedule is None:
                take_pending(self.js_sub, self._on_joint_state)    # the newest state
        t1 = time.perf_counter_ns()
        cmd = self.loop.step(self._now())
        t2 = time.perf_counter_ns()
        latency = arrival = law = None
        if cmd is not None:
            self.cmd_pub.publish(self._effort(cmd.tau))
            latency = self._now() - cmd.state_stamp
            arrival = cmd.state_arrival - cmd.state_stamp
            law = self.loop.law_ns
        t3 = time.perf_counter_ns()
        self.stats.record(tick, t3 - t0, latency, cmd is not None and cmd.saturated, arrival,
                          (wake, t1 - t0, t2 - t1, law, t3 - t2))
        if cmd is not None and self.loop.counters.commands == 1:
            self.get_logger().info(FIRST_COMMAND)

    def diagnostics(self) -> tuple[str, str, dict]:
        """(level, message, values) of the current diagnostics window."""
        loop, c = self.loop, self.loop.counters
        values = self.stats.window()
        stale_goal = loop.goal is not None and not loop.goal_fresh(self._now())
        values.update({
            'controller': self.controller_config.kind,
            'gravity_compensation': self.controller_config.gravity_compensation,
            'executor': self.executor_kind,
            'tick_on': self.config.tick_on,
            'mode': loop.mode or 'no command',
            'stale_goal': stale_goal,
            'holding': loop.mode == 'hold',
            'commands': c.commands,
            'ticks_without_state': c.ticks_without_state,
            'ticks_state_stale': c.ticks_state_stale,
            'ticks_holding': c.ticks_holding,
            'saturated_commands': c.saturated_commands,
            'fallback_commands': c.fallback_commands,
            'rate_limited_commands': c.rate_limited_commands,
            'states_received': c.states_received,
            'states_rejected': c.states_rejected,
            'goals_received': c.goals_received,
            'goals_rejected_nonfinite': c.goals_rejected_nonfinite,
            'goals_rejected_invalid': c.goals_rejected_invalid,
            'goals_clamped': self.controller.goals_clamped,
        })
        qp_fallbacks = getattr(self.controller, 'fallbacks', None)
        if qp_fallbacks is not None:
            values['qp_fallbacks'] = qp_fallbacks
        limit_filtered = getattr(self.controller, 'limit_filtered', None)
        if limit_filtered is not None and self.controller.config.joint_limits:
            values['osc_limit_filtered'] = limit_filtered
            values['osc_limit_brakes'] = self.controller.limit_brakes
        if loop.mode is None:
            level = 'error'
        elif loop.mode == 'hold' or values['saturated_fraction'] > 0 or c.fallback_commands:
            level = 'warn'
        else:
            level = 'ok'
        return level, loop.reason, values

    def close(self) -> None:
        """Write the timing log, if one was asked for."""
        if self.config.timing_log:
            self.stats.write_log(self.config.timing_log)


def main(args=None) -> int:
    """Run the controller node (console script ``controller_node``)."""
    return run(ControllerNode, names.CONTROLLER_NODE, args)


if __name__ == '__main__':
    raise SystemExit(main())

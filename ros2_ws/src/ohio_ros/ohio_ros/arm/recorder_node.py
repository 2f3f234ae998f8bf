"""
recorder_node: the stack's topics, received serialized, into a rosbag2 (MCAP) bag.

Subscribes ``/joint_states``, ``effort_controller/commands``, ``ohio/task_state``,
``ohio/ee_goal``, ``ohio/gripper_command`` (and ``/diagnostics``) without deserializing and
writes each message with its receive time on the node clock through
``ohio_core.data.bags.BagWriter``, so ``ohio relabel`` reads the result like a collected bag.
The receive time is the message's arrival (the middleware's reception timestamp), not the
moment the executor takes it from the queue, which on a busy machine comes late and in another
order (one message per topic per wait): under use_sim_time it is the simulated time of the
``/clock`` message that arrived last before it, so a message waits until a later ``/clock``
has been taken (or until the bag closes). On a ROS 2 machine ``ros2 bag record`` records the
same topics.
Every ``DIAGNOSTICS_PERIOD`` (node clock) it publishes on ``/diagnostics`` the status
``recorder: bag`` with the messages written so far per topic, so a caller can wait for what the
bag will hold.
Parameters: ``ohio_ros.arm.config.RecorderNodeConfig`` (``config/recorder.yaml``).
"""

from bisect import bisect_right
import json
import time

from controllers.description import load_robot
from diagnostic_msgs.msg import DiagnosticArray
from geometry_msgs.msg import PoseStamped
from ohio_core.data import topics as tp
from ohio_core.data.bags import BagWriter
from ohio_core.data.topics import TopicMap
from ohio_ros import diagnostics, names, params, qos
from ohio_ros.arm import config as cfg
from ohio_ros.arm import convert
from ohio_ros.runtime import run
from rclpy.node import Node
from rosgraph_msgs.msg import Clock
from sensor_msgs.msg import JointState
from std_msgs.msg import Float64, Float64MultiArray

#: (TopicMap role, node-relative name, message class, type name)
ROLES = (
    ('joint_states', names.JOINT_STATES, JointState, tp.JOINT_STATE_TYPE),
    ('commands', names.EFFORT_COMMANDS, Float64MultiArray, tp.FLOAT64_MULTI_ARRAY),
    ('task_state', names.TASK_STATE, Float64MultiArray, tp.FLOAT64_MULTI_ARRAY),
    ('ee_goal', names.EE_GOAL, PoseStamped, tp.POSE_STAMPED),
    ('gripper', names.GRIPPER, Float64, tp.FLOAT64),
)
DIAGNOSTICS_TYPE = 'diagnostic_msgs/msg/DiagnosticArray'
#: seconds (node clock) between two ``recorder: bag`` statuses
DIAGNOSTICS_PERIOD = 0.5
DIAGNOSTICS_NAME = 'recorder: bag'
#: /clock arrivals kept to stamp messages taken late: 20 s at 500 Hz, more than the subscription
#: queues hold (1000 messages a topic), so every message taken finds its clock
CLOCK_HISTORY = 10000


class RecorderNode(Node):
    """Writes every received message of the stack's topics into one bag."""

    def __init__(self, **kwargs):
        super().__init__(names.RECORDER_NODE, **kwargs)
        values = params.declare(self, cfg.RecorderNodeConfig.defaults())
        self.config = c = cfg.RecorderNodeConfig.from_params(values)
        params.check_unknown(self, list(values))
        resolved = {role: self.resolve_topic_name(name) for role, name, _, _ in ROLES}
        robot = load_robot(c.robot)
        self.topic_map = TopicMap(**resolved).for_robot(robot)
        output = c.output or time.strftime('ohio_bag_%Y%m%d_%H%M%S')
        settings = {'node': self.get_fully_qualified_name(), 'topics': resolved,
                    'use_sim_time': self.get_parameter('use_sim_time').value,
                    'robot': robot.name, 'gravity_compensation': c.gravity_compensation}
        self.writer = BagWriter(output, self.topic_map, c.storage,
                                custom_data={'ohio.record': json.dumps(settings)})
        self.writer.open()
        self.dropped_before_clock = 0
        self.sim_time = bool(settings['use_sim_time'])
        self._clock_arrival: list[int] = []     # reception times (system ns) of /clock messages
        self._clock_value: list[int] = []       # ... and the simulated time each one carried
        self._pending: list[tuple] = []         # (arrival, topic, type, data) after last /clock
        if self.sim_time:
            self.create_subscription(Clock, names.CLOCK, self._on_clock, qos.RECORD)
        subs = [(name, cls, msgtype) for _, name, cls, msgtype in ROLES]
        if c.record_diagnostics:
            subs.append((names.DIAGNOSTICS, DiagnosticArray, DIAGNOSTICS_TYPE))
        for name, cls, msgtype in subs:
            topic = self.resolve_topic_name(name)
            self.create_subscription(cls, name, self._receiver(topic, msgtype), qos.RECORD,
                                     raw=True)
        self.diag_timer = diagnostics.publish_periodically(self, DIAGNOSTICS_NAME,
                                                           DIAGNOSTICS_PERIOD, self.diagnostics)
        self.get_logger().info(f'recording {len(subs)} topics into {output} ({c.storage})')

    def _receiver(self, topic: str, msgtype: str):
        def receive(data: bytes, info: dict) -> None:
            arrival = info['received_timestamp'] or time.time_ns()
            if self.sim_time:
                self._pending.append((arrival, topic, msgtype, data))
            else:
                self.writer.write_raw(topic, msgtype, arrival, data)
        return receive

    def _on_clock(self, msg: Clock, info: dict) -> None:
        arrival = info['received_timestamp'] or time.time_ns()
        self._clock_arrival.append(arrival)
        self._clock_value.append(convert.stamp_ns(msg.clock))
        if len(self._clock_arrival) > 2 * CLOCK_HISTORY:
            del self._clock_arrival[:CLOCK_HISTORY], self._clock_value[:CLOCK_HISTORY]
        self._flush(arrival)

    def _flush(self, before: int | None = None) -> None:
        """
        Write the pending messages that arrived before ``before`` (all if None), in arrival order.

        Each is stamped with the value of the last ``/clock`` that arrived before it: the clock
        messages come in arrival order, so once one that arrived later has been taken, that
        value is known. A message before the first ``/clock`` has no time: counted, not written.
        """
        if before is None:
            ready, self._pending = self._pending, []
        else:
            ready = [p for p in self._pending if p[0] < before]
            self._pending = [p for p in self._pending if p[0] >= before]
        for arrival, topic, msgtype, data in sorted(ready, key=lambda p: p[0]):
            i = bisect_right(self._clock_arrival, arrival) - 1
            if i < 0 or self._clock_value[i] <= 0:
                self.dropped_before_clock += 1
                continue
            self.writer.write_raw(topic, msgtype, self._clock_value[i], data)

    def diagnostics(self) -> tuple[str, str, dict]:
        """(level, message, values): messages written per topic, and those before a clock."""
        values = dict(self.writer.counts, dropped_before_clock=self.dropped_before_clock)
        level = 'warn' if self.dropped_before_clock else 'ok'
        return level, f'recording into {self.writer.path}', values

    def close(self) -> None:
        """Write what waits for a later ``/clock``; close the bag (MCAP summary, metadata)."""
        self._flush()
        counts = self.writer.close()
        print(f'recorder: bag {self.writer.path} closed: {counts}', flush=True)


def main(args=None) -> int:
    """Run the recorder node (console script ``recorder_node``)."""
    return run(RecorderNode, names.RECORDER_NODE, args)


if __name__ == '__main__':
    raise SystemExit(main())

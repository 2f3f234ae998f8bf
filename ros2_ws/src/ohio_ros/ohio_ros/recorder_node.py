"""
recorder_node: the stack's topics, received serialized, into a rosbag2 (MCAP) bag.

Subscribes ``/joint_states``, ``effort_controller/commands``, ``ohio/task_state``,
``ohio/ee_goal``, ``ohio/gripper_command`` (and ``/diagnostics``) without deserializing and
writes each message with its receive time on the node clock (sim time under use_sim_time)
through ``ohio_core.data.bags.BagWriter``, so ``ohio relabel`` reads the result like a
collected bag. On a ROS 2 machine ``ros2 bag record`` records the same topics.
Every ``DIAGNOSTICS_PERIOD`` (node clock) it publishes on ``/diagnostics`` the status
``recorder: bag`` with the messages written so far per topic, so a caller can wait for what the
bag will hold.
Parameters: ``ohio_ros.config.RecorderNodeConfig`` (``config/recorder.yaml``).
"""

import json
import time

from diagnostic_msgs.msg import DiagnosticArray
from geometry_msgs.msg import PoseStamped
from ohio_core.data import topics as tp
from ohio_core.data.bags import BagWriter
from ohio_core.data.topics import TopicMap
from ohio_ros import config as cfg
from ohio_ros import diagnostics, names, params, qos
from ohio_ros.runtime import run
from rclpy.node import Node
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


class RecorderNode(Node):
    """Writes every received message of the stack's topics into one bag."""

    def __init__(self, **kwargs):
        super().__init__(names.RECORDER_NODE, **kwargs)
        values = params.declare(self, cfg.RecorderNodeConfig.defaults())
        self.config = c = cfg.RecorderNodeConfig.from_params(values)
        params.check_unknown(self, list(values))
        resolved = {role: self.resolve_topic_name(name) for role, name, _, _ in ROLES}
        self.topic_map = TopicMap(**resolved)
        output = c.output or time.strftime('ohio_bag_%Y%m%d_%H%M%S')
        settings = {'node': self.get_fully_qualified_name(), 'topics': resolved,
                    'use_sim_time': self.get_parameter('use_sim_time').value}
        self.writer = BagWriter(output, self.topic_map, c.storage,
                                custom_data={'ohio.record': json.dumps(settings)})
        self.writer.open()
        self.dropped_before_clock = 0
        subs = [(name, cls, msgtype) for _, name, cls, msgtype in ROLES]
        if c.record_diagnostics:
            subs.append((names.DIAGNOSTICS, DiagnosticArray, DIAGNOSTICS_TYPE))
        for name, cls, msgtype in subs:
            topic = self.resolve_topic_name(name)
            self.create_subscription(cls, name, self._writer_for(topic, msgtype), qos.RECORD,
                                     raw=True)
        self.diag_timer = diagnostics.publish_periodically(self, DIAGNOSTICS_NAME,
                                                           DIAGNOSTICS_PERIOD, self.diagnostics)
        self.get_logger().info(f'recording {len(subs)} topics into {output} ({c.storage})')

    def _writer_for(self, topic: str, msgtype: str):
        def write(data: bytes) -> None:
            now = self.get_clock().now().nanoseconds
            if now <= 0:              # use_sim_time and no /clock yet: no time to record at
                self.dropped_before_clock += 1
                return
            self.writer.write_raw(topic, msgtype, now, data)
        return write

    def diagnostics(self) -> tuple[str, str, dict]:
        """(level, message, values): messages written per topic, and those before a clock."""
        values = dict(self.writer.counts, dropped_before_clock=self.dropped_before_clock)
        level = 'warn' if self.dropped_before_clock else 'ok'
        return level, f'recording into {self.writer.path}', values

    def close(self) -> None:
        """Close the bag (writes the MCAP summary and metadata.yaml)."""
        counts = self.writer.close()
        print(f'recorder: bag {self.writer.path} closed: {counts}', flush=True)


def main(args=None) -> int:
    """Run the recorder node (console script ``recorder_node``)."""
    return run(RecorderNode, names.RECORDER_NODE, args)


if __name__ == '__main__':
    raise SystemExit(main())

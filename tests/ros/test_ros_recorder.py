"""The recorder stamps every message with the node clock at the message's arrival, even when it takes
the message from its queue much later (a busy machine): under sim time, the value of the /clock
message that arrived last before it. Stamped when taken, a backlog got the clock of whatever the
executor had taken by then (one message per topic per wait, /clock at 500 Hz behind task states
and commands at 50 Hz): in lockstep on a loaded machine 152 of 507 periods of a bag had no
command although the simulator had received one in every period.
"""

import numpy as np
import pytest
from ohio_core.data import topics as tp
from rclpy.duration import Duration
from rclpy.parameter import Parameter
from rosbags.highlevel import AnyReader
from rosgraph_msgs.msg import Clock
from sensor_msgs.msg import JointState
from std_msgs.msg import Float64MultiArray

from ohio_ros.arm import convert
from ohio_ros.arm.recorder_node import RecorderNode
from ros_harness import Spinner, probe, wait_for

pytestmark = pytest.mark.ros

PERIODS, TICKS = 12, 10            # control periods, and /clock + joint-state ticks (2 ms) in each
T0 = 1_000_000_000_000             # ns of simulated time at the first tick


@pytest.fixture
def spinner():
    s = Spinner()
    yield s
    s.close()


def test_recorder_stamps_each_message_with_the_sim_time_it_arrived_at(spinner, tmp_path):
    out = tmp_path / "bag"
    # the recorder exists (its subscriptions queue what arrives) but does not spin yet: everything
    # below waits in its queues, as behind a recorder starved of CPU
    node = RecorderNode(context=spinner.context, parameter_overrides=[
        Parameter("use_sim_time", value=True), Parameter("output", value=str(out))])
    _, _, pubs = probe(spinner, publishers=[(Clock, "/clock"), (JointState, tp.JOINT_STATES),
                                            (Float64MultiArray, tp.TASK_STATE), (Float64MultiArray, tp.EFFORT_COMMANDS)])
    wait_for(lambda: all(p.get_subscription_count() >= 1 for p in pubs.values()), what="the recorder's subscriptions")
    expected = {tp.JOINT_STATES: [], tp.TASK_STATE: [], tp.EFFORT_COMMANDS: []}

    def send(topic, msg, stamp=None):
        pubs[topic].publish(msg)
        # acknowledged: received by the recorder's reader (its arrival time is set) before the next one
        assert pubs[topic].wait_for_all_acked(Duration(seconds=30))
        if stamp is not None:
            expected[topic].append(stamp)

    row = convert.task_state_msg(np.zeros(len(tp.TASK_STATE_FIELDS)))
    cmd = convert.effort_command_msg(np.zeros(7), convert.effort_layout(tp.ARM_JOINTS))
    t = T0
    for _ in range(PERIODS):
        for tick in range(TICKS):
            t += 2_000_000
            send("/clock", convert.clock_msg(t))
            send(tp.JOINT_STATES, convert.joint_state_msg(tp.ARM_JOINTS, np.zeros(7), np.zeros(7), np.zeros(7), t), t)
            if tick == 0:               # the simulator's task state, then the controller's command
                send(tp.TASK_STATE, row, t)
                send(tp.EFFORT_COMMANDS, cmd, t)
    send("/clock", convert.clock_msg(t + 2_000_000))
    spinner.add(node)                   # now it takes its backlog
    wait_for(lambda: all(node.writer.counts.get(k, 0) == len(v) for k, v in expected.items()),
             what="every message written")
    spinner.close()                     # closes the bag
    with AnyReader([out]) as reader:
        stamps = {k: [] for k in expected}
        for conn, stamp, _ in reader.messages():
            if conn.topic in stamps:
                stamps[conn.topic].append(stamp)
    assert stamps == expected

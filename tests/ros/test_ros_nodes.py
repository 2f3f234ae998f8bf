"""The nodes in this process with the real rclpy over DDS (loopback): create, publish, spin, assert.

Each test spins the node under test and a probe node in a background executor; every wait is
bounded by a generous timeout and no assertion depends on how long something took.
"""

import numpy as np
import pytest
from controllers.config import OSCConfig
from controllers.description import Q_HOME
from controllers.goals import PoseGoal
from controllers.osc import OSC
from controllers.robot import ArmModel
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus
from geometry_msgs.msg import PoseStamped
from ohio_core.data import topics as tp
from rclpy.parameter import Parameter
from rosbags.highlevel import AnyReader
from rosgraph_msgs.msg import Clock
from sensor_msgs.msg import JointState
from std_msgs.msg import Float64, Float64MultiArray

from ohio_ros import diagnostics
from ohio_ros.arm import convert, high_level
from ohio_ros.arm.controller_node import ControllerNode
from ohio_ros.arm.mujoco_sim_node import MujocoSimNode
from ohio_ros.arm.policy_node import PolicyNode
from ohio_ros.arm.recorder_node import RecorderNode
from ros_harness import Spinner, probe, wait_for

pytestmark = pytest.mark.ros

DIAG = "controller: control loop"


@pytest.fixture
def spinner():
    s = Spinner()
    yield s
    s.close()


@pytest.fixture(scope="module")
def model():
    return ArmModel()


def params(**values):
    return [Parameter(k, value=v) for k, v in values.items()]


def latest_diag(inbox):
    msg = inbox.last()
    return None if msg is None else diagnostics.diagnostic_values(msg).get(DIAG)


def state_msg(q, qd=np.zeros(7), stamp=0):
    return convert.joint_state_msg(tp.ARM_JOINTS, q, qd, np.zeros(7), stamp)


def goal_msg(goal):
    return convert.pose_stamped_msg(goal, 0, "world")


def controller_setup(spinner, **overrides):
    node = spinner.add(ControllerNode(context=spinner.context, parameter_overrides=params(
        diagnostics_period=0.2, **{"controller.gravity_compensation": "controller"}, **overrides)))
    _, inbox, pubs = probe(spinner, subscriptions=[(Float64MultiArray, "/effort_controller/commands"),
                                                   (DiagnosticArray, "/diagnostics")],
                           publishers=[(JointState, "/joint_states"), (PoseStamped, "/ohio/ee_goal")])
    return node, inbox["/effort_controller/commands"], inbox["/diagnostics"], pubs


def test_controller_publishes_no_command_before_a_joint_state(spinner):
    node, commands, diags, _ = controller_setup(spinner)
    # diagnostics prove the loop is running: it ticked, and said why it published nothing
    d = wait_for(lambda: (d := latest_diag(diags)) and int(d["ticks"]) > 5 and d, what="diagnostics with ticks")
    assert d["mode"] == "no command" and d["commands"] == "0"
    assert int(d["ticks_without_state"]) > 5
    assert diags.last().status[0].level == DiagnosticStatus.ERROR      # no joint state
    assert len(commands) == 0 and node.loop.counters.commands == 0


def test_controller_tracks_goals_holds_when_stale_and_rejects_nan(spinner, model):
    node, commands, diags, pubs = controller_setup(spinner, goal_timeout=1.5)
    q = Q_HOME + 0.05
    js = state_msg(q)
    p, R = model.tcp_pose(q)
    hold = OSC(model, OSCConfig()).act(q, np.zeros(7), PoseGoal(p, R))

    def command_is(tau):
        pubs["/joint_states"].publish(js)          # keep the joint state fresh
        msg = commands.last()
        return msg is not None and np.allclose(msg.data, tau, atol=1e-9)

    # no goal yet: hold the current pose
    wait_for(lambda: command_is(hold), what="hold command without a goal")
    # a goal: tracked with the controller law
    goal = PoseGoal(p + np.array([0.05, -0.02, 0.03]), R)
    track = OSC(model, OSCConfig()).act(q, np.zeros(7), goal)

    def tracking():
        pubs["/ohio/ee_goal"].publish(goal_msg(goal))
        return command_is(track)
    wait_for(tracking, what="command tracking the goal")
    # a NaN goal is rejected and counted; the next command is still the one for the last good goal
    bad = goal_msg(goal)
    bad.pose.position.y = float("nan")
    pubs["/ohio/ee_goal"].publish(goal_msg(goal))
    pubs["/ohio/ee_goal"].publish(bad)
    wait_for(lambda: node.loop.counters.goals_rejected_nonfinite == 1, what="the NaN goal rejected")
    seen = len(commands)
    wait_for(lambda: pubs["/joint_states"].publish(js) or len(commands) > seen, what="a command after the NaN goal")
    np.testing.assert_allclose(commands.all()[seen].data, track, atol=1e-9)
    wait_for(lambda: (d := latest_diag(diags)) and d["goals_rejected_nonfinite"] == "1",
             what="the NaN goal counted in /diagnostics")
    # goals stop: after goal_timeout the loop holds the pose of the first state after it
    d = wait_for(lambda: command_is(hold) and (d := latest_diag(diags)) and d["stale_goal"] == "true" and d,
                 what="hold command after the goal went stale")
    assert d["holding"] == "true" and node.loop.counters.goals_rejected_nonfinite == 1
    limits = node.controller.tau_max
    assert all(np.all(np.abs(m.data) <= limits) for m in commands.all())


def test_controller_rejects_nonfinite_joint_states(spinner):
    node, commands, diags, pubs = controller_setup(spinner)
    nan_state = state_msg(Q_HOME + np.r_[np.zeros(6), np.nan])
    wait_for(lambda: pubs["/joint_states"].publish(nan_state) or node.loop.counters.states_rejected >= 3,
             what="NaN joint states counted")
    assert len(commands) == 0 and node.loop.state is None


def test_policy_publishes_the_scripted_goal_for_the_state_it_sees(spinner, model):
    node = spinner.add(PolicyNode(context=spinner.context, parameter_overrides=params(
        policy="scripted", task="lift", k=2)))
    _, inbox, pubs = probe(spinner, subscriptions=[(PoseStamped, "/ohio/ee_goal"), (Float64, "/ohio/gripper_command")],
                           publishers=[(JointState, "/joint_states"), (Float64MultiArray, "/ohio/task_state")])
    q = Q_HOME + 0.03
    row = np.zeros(len(tp.TASK_STATE_FIELDS))
    row[tp.TS["object_x"]:tp.TS["object_z"] + 1] = (0.45, 0.05, 0.02)
    row[tp.TS["object_qw"]] = 1.0
    row[tp.TS["target_x"]:tp.TS["target_z"] + 1] = (0.45, 0.05, 0.12)
    row[tp.TS["finger_opening"]] = 0.08

    def goal_arrived():
        pubs["/joint_states"].publish(state_msg(q))
        pubs["/ohio/task_state"].publish(convert.task_state_msg(row))
        return len(inbox["/ohio/ee_goal"]) >= 2 and len(inbox["/ohio/gripper_command"]) >= 2
    wait_for(goal_arrived, what="goals and gripper commands from the policy node")
    expected = high_level.scripted("lift", 2, OSCConfig(), model).decide(q, np.zeros(7), row)
    got = convert.pose_goal_from_msg(inbox["/ohio/ee_goal"].last(), "world")
    np.testing.assert_allclose(got.p, expected.goal.p, atol=1e-9)
    np.testing.assert_allclose(got.R, expected.goal.R, atol=1e-9)
    assert inbox["/ohio/gripper_command"].last().data == pytest.approx(expected.gripper)
    assert node.policy.k == 2


def test_sim_waits_for_a_command_then_steps_and_counts_bad_commands(spinner):
    node = spinner.add(MujocoSimNode(context=spinner.context, parameter_overrides=params(horizon=-1)))
    _, inbox, pubs = probe(spinner, subscriptions=[(JointState, "/joint_states"), (Clock, "/clock"),
                                                   (Float64MultiArray, "/ohio/task_state")],
                           publishers=[(Float64MultiArray, "/effort_controller/commands")])
    wait_for(lambda: len(inbox["/joint_states"]) > 20 and len(inbox["/clock"]) > 20, what="joint states and clock")
    assert len(inbox["/ohio/task_state"]) == 0            # brakes on: no episode before a command
    first = inbox["/joint_states"].last()
    assert list(first.name) == list(tp.ARM_JOINTS) + list(tp.FINGER_JOINTS)
    assert not np.any(first.velocity)
    bad = convert.effort_command_msg([np.nan] * 7, convert.effort_layout(tp.ARM_JOINTS))
    pubs["/effort_controller/commands"].publish(bad)
    wait_for(lambda: node.counts["commands_rejected"] == 1, what="the NaN command counted")
    assert len(inbox["/ohio/task_state"]) == 0
    cmd = convert.effort_command_msg(np.zeros(7), convert.effort_layout(tp.ARM_JOINTS))
    wait_for(lambda: pubs["/effort_controller/commands"].publish(cmd) or len(inbox["/ohio/task_state"]) >= 3,
             what="task states once a command arrived")
    reader = convert.TaskStateReader()
    steps = [reader(m)[tp.TS["step"]] for m in inbox["/ohio/task_state"].all()]
    assert steps[:3] == [0.0, 1.0, 2.0]
    stamps = [convert.stamp_ns(m.header.stamp) for m in inbox["/joint_states"].all()]
    assert all(b > a for a, b in zip(stamps, stamps[1:]))     # simulated time only goes forward
    assert node.session.records[0].steps >= 2


def test_recorder_writes_what_it_receives(spinner, tmp_path):
    out = tmp_path / "bag"
    node = spinner.add(RecorderNode(context=spinner.context, parameter_overrides=params(output=str(out))))
    _, _, pubs = probe(spinner, publishers=[(JointState, "/joint_states"), (Float64MultiArray, "/ohio/task_state"),
                                            (Float64MultiArray, "/effort_controller/commands")])
    row = np.arange(len(tp.TASK_STATE_FIELDS), dtype=float) / 7.0
    sent = []

    def recorded():
        msg = state_msg(Q_HOME, stamp=len(sent) + 1)
        sent.append(msg)
        pubs["/joint_states"].publish(msg)
        pubs["/ohio/task_state"].publish(convert.task_state_msg(row))
        return node.writer.counts.get("/joint_states", 0) >= 5 and node.writer.counts["/ohio/task_state"] >= 5
    wait_for(recorded, what="messages written by the recorder")
    spinner.close()        # closes the bag
    with AnyReader([out]) as reader:
        topics = {c.topic: c.msgtype for c in reader.connections}
        assert topics[tp.JOINT_STATES] == tp.JOINT_STATE_TYPE and topics[tp.TASK_STATE] == tp.FLOAT64_MULTI_ARRAY
        assert tp.EFFORT_COMMANDS in topics         # the bag has every required topic, even if empty
        def read(topic):
            conns = [c for c in reader.connections if c.topic == topic]
            return [reader.deserialize(raw, c.msgtype) for c, _, raw in reader.messages(connections=conns)]
        msgs, rows = read(tp.JOINT_STATES), read(tp.TASK_STATE)
    # every message the writer counted is in the bag, in the order sent (the first ones may have
    # gone out before the recorder's subscription matched)
    assert len(msgs) == node.writer.counts["/joint_states"] >= 5
    assert len(rows) == node.writer.counts["/ohio/task_state"] >= 5
    got = [convert.stamp_ns(m.header.stamp) for m in msgs]
    sent_ns = [convert.stamp_ns(m.header.stamp) for m in sent]
    assert got == sent_ns[sent_ns.index(got[0]):][:len(got)]
    for m in msgs:
        assert list(m.name) == list(tp.ARM_JOINTS)
        np.testing.assert_array_equal(m.position, Q_HOME)
    for r in rows:
        np.testing.assert_array_equal(r.data, row)

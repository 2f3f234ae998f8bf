"""ohio_ros converters: messages <-> arrays, without DDS (plain message objects)."""

import numpy as np
import pytest
from controllers.goals import NonFiniteInputError, PoseGoal, quat_to_matrix, so3_exp
from diagnostic_msgs.msg import DiagnosticStatus
from geometry_msgs.msg import PoseStamped
from ohio_core.data import topics as tp
from std_msgs.msg import Float64, Float64MultiArray, MultiArrayDimension, MultiArrayLayout

from ohio_ros import diagnostics, names
from ohio_ros.arm import convert

ARM = tp.ARM_JOINTS


def test_names_resolve_to_the_topics_the_bags_use():
    """At the root namespace the nodes' (partly relative) names are the recorded topics."""
    def at_root(name):
        return name if name.startswith("/") else "/" + name
    assert at_root(names.JOINT_STATES) == tp.JOINT_STATES
    assert at_root(names.EFFORT_COMMANDS) == tp.EFFORT_COMMANDS
    assert at_root(names.EE_GOAL) == tp.EE_GOAL
    assert at_root(names.GRIPPER) == tp.GRIPPER
    assert at_root(names.TASK_STATE) == tp.TASK_STATE


def test_time_round_trip():
    ns = 1_700_000_123_456_789_012
    assert convert.stamp_ns(convert.time_msg(ns)) == ns
    assert convert.stamp_ns(convert.clock_msg(ns).clock) == ns


def test_joint_state_matched_by_name_in_any_order(rng):
    q, qd = rng.normal(size=7), rng.normal(size=7)
    order = list(reversed(ARM)) + list(tp.FINGER_JOINTS)
    pos = [q[ARM.index(j)] if j in ARM else 0.04 for j in order]
    vel = [qd[ARM.index(j)] if j in ARM else 0.0 for j in order]
    msg = convert.joint_state_msg(order, pos, vel, np.zeros(9), 5)
    index = convert.JointIndex(ARM)
    q2, qd2 = convert.joint_state_arrays(msg, index)
    np.testing.assert_array_equal(q2, q)
    np.testing.assert_array_equal(qd2, qd)
    assert convert.stamp_ns(msg.header.stamp) == 5


def test_joint_state_problems_are_refused():
    index = convert.JointIndex(ARM)
    with pytest.raises(convert.MessageError, match="panda_joint7"):
        convert.joint_state_arrays(convert.joint_state_msg(ARM[:6], np.zeros(6), np.zeros(6), [], 0), index)
    bad = convert.joint_state_msg(ARM, np.zeros(7), np.zeros(7), [], 0)
    bad.velocity = [0.0] * 6
    with pytest.raises(convert.MessageError, match="velocities"):
        convert.joint_state_arrays(bad, index)
    nan = convert.joint_state_msg(ARM, [0.0] * 6 + [float("nan")], np.zeros(7), [], 0)
    with pytest.raises(NonFiniteInputError):
        convert.joint_state_arrays(nan, index)


def test_joint_state_arrays_are_copies_and_leave_nan_to_the_caller_when_asked():
    """``check_finite=False`` (the controller node, whose loop rejects NaN by the bounds check)
    returns what the message holds; either way the arrays are new, not views of the message."""
    index = convert.JointIndex(ARM)
    msg = convert.joint_state_msg(ARM, [0.1] * 6 + [float("nan")], np.zeros(7), [], 0)
    q, qd = convert.joint_state_arrays(msg, index, check_finite=False)
    assert np.isnan(q[6]) and np.all(q[:6] == 0.1) and np.all(qd == 0.0)
    q[0] = 5.0
    assert msg.position[0] == 0.1
    msg.position = [0.2] * 7                      # a list becomes the message's array('d')
    assert convert.joint_state_arrays(msg, index, check_finite=False)[0][6] == 0.2


def test_effort_command_refills_one_message_as_effort_command_msg_builds_it(rng):
    effort = convert.EffortCommand(ARM)
    first = effort(rng.normal(size=7))
    tau = rng.normal(size=7)
    msg = effort(tau)
    assert msg is first and msg is effort.msg
    expected = convert.effort_command_msg(tau, convert.effort_layout(ARM))
    assert msg == expected
    np.testing.assert_array_equal(convert.effort_from_msg(msg, ARM), tau)
    np.testing.assert_array_equal(effort(tau[::-1].copy()).data, tau[::-1])   # any memory layout
    np.testing.assert_array_equal(effort(np.arange(7)).data, np.arange(7.0))  # ints as floats
    with pytest.raises(ValueError, match="7 torques"):
        effort(np.zeros(6))


def test_goal_round_trip(rng):
    R = so3_exp(rng.normal(size=3))
    goal = PoseGoal(np.array([0.4, -0.1, 0.3]), R)
    msg = convert.pose_stamped_msg(goal, 123, "world")
    assert msg.header.frame_id == "world" and convert.stamp_ns(msg.header.stamp) == 123
    back = convert.pose_goal_from_msg(msg, "world")
    np.testing.assert_allclose(back.p, goal.p, atol=1e-15)
    np.testing.assert_allclose(back.R, goal.R, atol=1e-12)


def test_bad_goals_are_refused():
    msg = PoseStamped()
    msg.header.frame_id = "world"
    msg.pose.orientation.w = 1.0
    convert.pose_goal_from_msg(msg, "world")                      # the identity pose is fine
    msg.pose.position.x = float("nan")
    with pytest.raises(NonFiniteInputError):
        convert.pose_goal_from_msg(msg, "world")
    msg.pose.position.x = 0.0
    msg.pose.orientation.w = 0.5
    with pytest.raises(convert.MessageError, match="unit norm"):
        convert.pose_goal_from_msg(msg, "world")
    msg.pose.orientation.w = 1.0
    msg.header.frame_id = "panda_link0"
    with pytest.raises(convert.MessageError, match="frame"):
        convert.pose_goal_from_msg(msg, "world")


def test_effort_command_carries_joint_names_and_is_reordered_by_them():
    tau = np.arange(7.0)
    msg = convert.effort_command_msg(tau, convert.effort_layout(ARM))
    assert msg.layout.dim[0].label == ",".join(ARM) and msg.layout.dim[0].size == 7
    np.testing.assert_array_equal(convert.effort_from_msg(msg, ARM), tau)
    rev = convert.effort_command_msg(tau[::-1], convert.effort_layout(ARM[::-1]))
    np.testing.assert_array_equal(convert.effort_from_msg(rev, ARM), tau)
    plain = Float64MultiArray(data=list(tau))                      # what `ros2 topic pub` sends
    np.testing.assert_array_equal(convert.effort_from_msg(plain, ARM), tau)
    with pytest.raises(convert.MessageError, match="6 values"):
        convert.effort_from_msg(Float64MultiArray(data=[0.0] * 6), ARM)
    with pytest.raises(NonFiniteInputError):
        convert.effort_from_msg(Float64MultiArray(data=[0.0] * 6 + [float("inf")]), ARM)


def test_gripper_command_range():
    assert convert.gripper_from_msg(convert.gripper_msg(0.25)) == 0.25
    with pytest.raises(NonFiniteInputError):
        convert.gripper_from_msg(Float64(data=float("nan")))
    with pytest.raises(convert.MessageError):
        convert.gripper_from_msg(Float64(data=1.5))


def test_task_state_round_trip_and_reading_by_field_names(rng):
    row = rng.normal(size=len(tp.TASK_STATE_FIELDS))
    msg = convert.task_state_msg(row)
    assert msg.layout.dim[0].label == tp.TASK_STATE_LABEL
    reader = convert.TaskStateReader()
    np.testing.assert_array_equal(reader(msg), row)
    # another layout version with fields in another order and one more field: read by name
    fields = ["step", "episode", "reward", "extra", "target_x"]
    other = Float64MultiArray(layout=MultiArrayLayout(dim=[MultiArrayDimension(
        label="ohio_task_state_v2:" + ",".join(fields), size=5, stride=5)]), data=[3.0, 7.0, 0.5, 9.0, 0.4])
    out = reader(other)
    assert out[tp.TS["episode"]] == 7.0 and out[tp.TS["step"]] == 3.0 and out[tp.TS["target_x"]] == 0.4
    assert np.isnan(out[tp.TS["object_x"]])
    with pytest.raises(convert.MessageError, match="layout"):
        reader(Float64MultiArray(data=[1.0]))


def test_diagnostics_message():
    msg = diagnostics.diagnostic_array(7, "controller: control loop", "warn", "holding", {
        "stale_goal": True, "latency_ms_p99": 1.23456789, "commands": 3})
    (status,) = msg.status
    assert status.level == DiagnosticStatus.WARN and status.message == "holding"
    assert diagnostics.diagnostic_values(msg)["controller: control loop"] == {
        "stale_goal": "true", "latency_ms_p99": "1.23457", "commands": "3"}


def test_quaternion_convention_matches_the_bags(rng):
    """Goals travel as (x, y, z, w), the convention of ohio_core's bag writer and reader."""
    q = rng.normal(size=4)
    q /= np.linalg.norm(q)
    msg = PoseStamped()
    msg.header.frame_id = "world"
    o = msg.pose.orientation
    o.x, o.y, o.z, o.w = (float(v) for v in q)
    np.testing.assert_allclose(convert.pose_goal_from_msg(msg, "world").R, quat_to_matrix(q), atol=1e-12)

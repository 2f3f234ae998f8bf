"""rosbag2 bags <-> trajectories: round trips in both storages, topic maps, and clear errors.

Bags are written by the real collector (MuJoCo + the OSC) and read back with ``rosbags``; the rows
read must equal the in-memory ``collect`` output exactly. Corrupt bags are made by cutting files
or by copying a good bag message by message with one change.
"""

import os
import shutil
from pathlib import Path

import numpy as np
import pytest
from rosbags.rosbag2 import Reader, StoragePlugin, Writer

from ohio_core.data import topics as tp
from ohio_core.data.bags import (BagError, EpisodeLog, read_bag, task_observation, typestore, write_bag,
                                 logs_from_trajectories)
from ohio_core.data.collect import collect, collect_bag, iter_episodes
from ohio_core.data.topics import TopicMap, TopicMapError
from rows import assert_same_rows

ROOT = Path(__file__).resolve().parents[2]
SETTINGS = dict(episodes=2, seed=7, horizon=50, k=5)


@pytest.fixture(scope="module")
def reach_logs():
    return list(iter_episodes("reach", "expert", **SETTINGS))


@pytest.fixture(scope="module")
def reach_bag(tmp_path_factory, reach_logs):
    path = tmp_path_factory.mktemp("bags") / "reach"
    write_bag(path, reach_logs)
    return path


# --- round trips -----------------------------------------------------------------------------


@pytest.mark.parametrize("storage,compress", [("mcap", None), ("mcap", False), ("sqlite3", None), ("sqlite3", True)])
@pytest.mark.parametrize("task,policy", [("reach", "expert"), ("lift", "mix")])
def test_bag_reads_back_as_the_in_memory_rows(tmp_path, storage, compress, task, policy):
    memory = collect(task, policy, **SETTINGS)
    summary = collect_bag(tmp_path / "bag", task, policy, storage=storage, compress=compress, progress=False,
                          **SETTINGS)
    files = sorted(p.name for p in (tmp_path / "bag").iterdir())
    assert files == ["bag." + ("mcap" if storage == "mcap" else "db3"), "metadata.yaml"]
    bag = read_bag(tmp_path / "bag")
    assert_same_rows(bag, memory)           # exactly: same numbers, same functions
    acc = bag.meta["account"]
    assert acc["rows"] == len(memory) == summary["control_steps"] == 100
    assert acc["dropped"] == {} and acc["commands_unused"] == 0
    assert acc["messages"] == summary["messages"]
    assert acc["messages"][tp.JOINT_STATES] == acc["messages"][tp.TASK_STATE] == 102   # T + 1 per episode
    assert acc["messages"][tp.EFFORT_COMMANDS] == 100
    assert acc["messages"][tp.EE_GOAL] == 20                                             # every k = 5 periods
    assert (tp.GRIPPER in acc["messages"]) == (task == "lift")
    assert bag.meta["custom_data"]["ohio.task_state_layout"] == tp.TASK_STATE_LABEL


def test_episode_boundaries_rewards_and_times(reach_bag, reach_logs):
    bag = read_bag(reach_bag)
    np.testing.assert_array_equal(bag.episode, np.repeat([0, 1], 50))
    np.testing.assert_array_equal(bag.step, np.tile(np.arange(50), 2))
    assert bag.last.sum() == 2 and bag.timeout[[49, 99]].all() and not bag.terminal.any()
    for e, log in enumerate(reach_logs):
        rows = bag.episode == e
        np.testing.assert_array_equal(bag.reward[rows], log.reward)
        assert bag.reward[rows].sum() == log.episode_return
        np.testing.assert_allclose(bag.t[rows], 0.02 * np.arange(50), atol=1e-9)
        np.testing.assert_array_equal(bag.tau[rows], log.tau)
        np.testing.assert_array_equal(bag.goal[rows], log.goal)
        # the goal is re-published every k = 5 periods
        assert log.goal_new.sum() == 10 and (np.diff(log.goal[:5], axis=0) == 0).all()
    starts = [int(bag.stamp[bag.episode == e][0]) for e in (0, 1)]      # bag time of each episode's first state
    assert starts[0] == 1_700_000_000 * 10**9
    assert starts[1] - starts[0] >= (50 * 0.02 + 1.0) * 1e9 and starts[1] % 10**9 == 0


def test_bag_timing_convention(reach_bag):
    """Raw messages: state j stamped t_j; task_state step j carries the reward of period j - 1."""
    ts = typestore()
    with Reader(reach_bag) as r:
        msgs = [(c.topic, t, ts.deserialize_cdr(raw, c.msgtype)) for c, t, raw in r.messages()]
    states = [(t, m) for topic, t, m in msgs if topic == tp.TASK_STATE]
    joints = [(t, m) for topic, t, m in msgs if topic == tp.JOINT_STATES]
    cmds = [t for topic, t, m in msgs if topic == tp.EFFORT_COMMANDS]
    assert states[0][1].layout.dim[0].label == tp.TASK_STATE_LABEL and states[0][1].layout.dim[0].size == len(tp.TASK_STATE_FIELDS) == 20
    first = states[0][1].data
    assert first[tp.TS["step"]] == 0 and np.isnan(first[tp.TS["reward"]]) and first[tp.TS["last"]] == 0
    final = states[50][1].data
    assert final[tp.TS["step"]] == 50 and final[tp.TS["last"]] == 1 and final[tp.TS["timeout"]] == 1
    for t, m in joints:   # header stamp == bag timestamp
        assert m.header.stamp.sec * 10**9 + m.header.stamp.nanosec == t
        assert list(m.name) == list(tp.ARM_JOINTS + tp.FINGER_JOINTS)
    assert [t for t, _ in joints[:50]] == cmds[:50] == [t for t, _ in states[:50]]
    assert joints[1][0] - joints[0][0] == 20_000_000
    # effort at t_j is the torque applied over period j - 1 (the command, inside the limits)
    first_cmd = next(m.data for topic, _, m in msgs if topic == tp.EFFORT_COMMANDS)
    np.testing.assert_allclose(joints[1][1].effort[:7], first_cmd, atol=1e-9)
    goals = [m for topic, _, m in msgs if topic == tp.EE_GOAL]
    assert goals[0].header.frame_id == "world"


def test_flat_policy_bag_has_no_goals_and_reads(tmp_path):
    memory = collect("lift", "flat", **SETTINGS)
    summary = collect_bag(tmp_path / "flat", "lift", "flat", progress=False, **SETTINGS)
    assert tp.EE_GOAL not in summary["messages"]
    assert summary["messages"][tp.GRIPPER] == 100            # a torque-level policy commands every period
    with Reader(tmp_path / "flat") as r:
        assert tp.EE_GOAL not in r.topics
    bag = read_bag(tmp_path / "flat")
    assert bag.goal is None and memory.goal is None and bag.gripper is not None
    assert_same_rows(bag, memory)
    assert np.all(np.abs(bag.tau) <= np.array([87.0] * 4 + [12.0] * 3))


def test_observation_matches_the_environment(reach_logs):
    """The observation rebuilt from the bag (FK of the logged q) equals what the policy saw."""
    for log in reach_logs:
        obs = task_observation(log.q[:-1], log.qd[:-1], log.finger_opening[:-1], log.object_pos[:-1],
                               log.object_quat[:-1], log.target[:-1])
        np.testing.assert_allclose(obs, log.env_obs, rtol=0, atol=1e-9)


def test_trajectories_write_back_and_read_the_same(tmp_path, reach_bag):
    first = read_bag(reach_bag)
    write_bag(tmp_path / "again", first, storage="sqlite3")
    again = read_bag(tmp_path / "again")
    assert_same_rows(again, first, atol=1e-12)
    assert again.meta["account"]["dropped"] == {}


# --- topic maps ------------------------------------------------------------------------------


def test_topic_map_yaml_loads_defaults_and_rejects_unknown_keys(tmp_path):
    assert TopicMap.load(ROOT / "config" / "topics" / "ohio.yaml") == TopicMap()
    bad = tmp_path / "bad.yaml"
    bad.write_text("joint_states: /js\ncomands: /x\n")
    with pytest.raises(TopicMapError, match=r"comands"):
        TopicMap.load(bad)
    bad.write_text("arm_joints: [a, b]\n")
    with pytest.raises(TopicMapError, match="at least 6 distinct"):
        TopicMap.load(bad)
    with pytest.raises(TopicMapError, match="not found"):
        TopicMap.load(tmp_path / "missing.yaml")


def test_every_preset_is_its_file_in_config_topics():
    from ohio_core.data.topics import PRESETS

    files = sorted(p.stem for p in (ROOT / "config" / "topics").glob("*.yaml"))
    assert files == sorted(PRESETS)
    for name in PRESETS:
        assert TopicMap.load(ROOT / "config" / "topics" / f"{name}.yaml") == TopicMap.preset(name), name


def test_only_joint_states_and_commands_may_share_a_topic():
    assert TopicMap(joint_states="/state", commands="/state").roles()["commands"] == "/state"
    with pytest.raises(TopicMapError, match="one topic to two roles"):
        TopicMap(joint_states="/state", ee_goal="/state")


def test_bag_from_another_setup_loads_with_a_topic_map(tmp_path, reach_logs):
    other = tmp_path / "other.yaml"
    other.write_text(
        "joint_states: /robot/joint_states\n"
        "commands: /robot/arm_effort_controller/commands\n"
        "task_state: /sim/task_state\n"
        "ee_goal: /policy/goal\n"
        "gripper: null\n"
        "arm_joints: [fr3_joint1, fr3_joint2, fr3_joint3, fr3_joint4, fr3_joint5, fr3_joint6, fr3_joint7]\n")
    tm = TopicMap.load(other)
    write_bag(tmp_path / "bag", reach_logs, topic_map=tm)
    with Reader(tmp_path / "bag") as r:
        assert set(r.topics) == {"/robot/joint_states", "/robot/arm_effort_controller/commands",
                                 "/sim/task_state", "/policy/goal"}
    bag = read_bag(tmp_path / "bag", tm)
    memory = collect("reach", "expert", **SETTINGS)
    assert_same_rows(bag, memory)
    # a map without the goal topic reads the same rows, without goals
    no_goal = read_bag(tmp_path / "bag", TopicMap.from_dict({**tm.to_dict(), "ee_goal": None}))
    assert no_goal.goal is None
    np.testing.assert_array_equal(no_goal.obs, memory.obs)


def test_task_state_without_label_needs_fields_in_the_map(tmp_path, reach_bag):
    def strip_label(topic, msg):
        if topic == tp.TASK_STATE:
            msg.layout.dim = []
        return msg

    copy_bag(reach_bag, tmp_path / "nolabel", strip_label)
    with pytest.raises(BagError, match="no layout label"):
        read_bag(tmp_path / "nolabel")
    bag = read_bag(tmp_path / "nolabel", TopicMap(task_state_fields=tp.TASK_STATE_FIELDS))
    assert_same_rows(bag, read_bag(reach_bag))


# --- errors ----------------------------------------------------------------------------------


def copy_bag(src: Path, dst: Path, change, storage=StoragePlugin.MCAP):
    """Copy a bag message by message; ``change(topic, msg)`` returns the message to write (None:
    drop it) or (msg, new_timestamp)."""
    ts = typestore()
    with Reader(src) as r, Writer(dst, version=9, storage_plugin=storage) as w:
        conns = {c.id: w.add_connection(c.topic, c.msgtype, typestore=ts) for c in r.connections}
        for c, t, raw in r.messages():
            out = change(c.topic, ts.deserialize_cdr(raw, c.msgtype))
            if out is None:
                continue
            msg, t = out if isinstance(out, tuple) else (out, t)
            w.write(conns[c.id], t, ts.serialize_cdr(msg, c.msgtype))


def test_missing_topic_is_named(reach_bag):
    with pytest.raises(BagError, match=r"'/robot/commands' \(commands\) is not in the bag; topics in the bag: "
                                       r".*/effort_controller/commands"):
        read_bag(reach_bag, TopicMap(commands="/robot/commands"))


def test_wrong_message_type_is_named(reach_bag):
    with pytest.raises(BagError, match=r"'/ohio/ee_goal' \(commands\) has message type geometry_msgs/msg/PoseStamped, "
                                       r"expected std_msgs/msg/Float64MultiArray"):
        read_bag(reach_bag, TopicMap(commands=tp.EE_GOAL, ee_goal=None))


def test_truncated_mcap(tmp_path, reach_bag):
    bag = tmp_path / "cut"
    shutil.copytree(reach_bag, bag)
    (mcap,) = bag.glob("*.mcap")
    data = mcap.read_bytes()
    mcap.write_bytes(data[: len(data) // 2])
    with pytest.raises(BagError, match=r"cut.*truncated or corrupt"):
        read_bag(bag)
    with pytest.raises(BagError, match=r"cut/reach\.mcap: .*truncated or corrupt"):
        read_bag(mcap)


def test_garbage_and_missing_files(tmp_path):
    junk = tmp_path / "junk.mcap"
    junk.write_bytes(os.urandom(4096))
    with pytest.raises(BagError, match=r"junk\.mcap.*truncated or corrupt"):
        read_bag(junk)
    folder = tmp_path / "folder"
    folder.mkdir()
    with pytest.raises(BagError, match="not a rosbag2 folder"):
        read_bag(folder)
    (folder / "metadata.yaml").write_text(":: not yaml [")
    with pytest.raises(BagError, match="folder: cannot open the bag"):
        read_bag(folder)
    text = tmp_path / "notes.txt"
    text.write_text("hello")
    with pytest.raises(BagError, match="not a rosbag2 bag"):
        read_bag(text)
    with pytest.raises(BagError, match="no such bag"):
        read_bag(tmp_path / "nowhere")


def test_joint_name_mismatch(tmp_path, reach_logs):
    write_bag(tmp_path / "bag", reach_logs[:1], joint_names=[f"arm_j{i}" for i in range(1, 8)])
    with pytest.raises(BagError, match=r"lacks the arm joint\(s\) \['panda_joint1'.*arm_j1"):
        read_bag(tmp_path / "bag")


def test_time_going_backwards(tmp_path, reach_bag):
    def late_step_10(topic, msg):
        if topic == tp.TASK_STATE and msg.data[tp.TS["step"]] == 10 and msg.data[tp.TS["episode"]] == 0:
            return msg, 1_700_000_000 * 10**9 + 230_000_000     # after step 11 (t = 0.22 s)
        return msg

    copy_bag(reach_bag, tmp_path / "late", late_step_10)
    with pytest.raises(BagError, match=r"time goes backwards on '/ohio/task_state': episode 0 step 10"):
        read_bag(tmp_path / "late")

    def old_header(topic, msg):
        stamp = msg.header.stamp.sec * 10**9 + msg.header.stamp.nanosec if topic == tp.JOINT_STATES else None
        if stamp == 1_700_000_000 * 10**9 + 400_000_000:
            msg.header.stamp.nanosec = 100_000_000
        return msg

    copy_bag(reach_bag, tmp_path / "old", old_header)
    with pytest.raises(BagError, match=r"time goes backwards on '/joint_states': header stamp"):
        read_bag(tmp_path / "old")


def test_account_counts_dropped_rows(tmp_path, reach_bag):
    state = {"n": 0}

    def drop_one_command(topic, msg):
        if topic == tp.EFFORT_COMMANDS:
            state["n"] += 1
            if state["n"] == 20:
                return None
        return msg

    copy_bag(reach_bag, tmp_path / "gap", drop_one_command, storage=StoragePlugin.SQLITE3)
    bag = read_bag(tmp_path / "gap")
    acc = bag.meta["account"]
    assert acc["rows"] == 99 and acc["dropped"] == {"no command in the period": 1}
    assert acc["messages"][tp.EFFORT_COMMANDS] == 99
    # the row before the gap closes its piece, so no transition bridges the gap
    assert acc["gaps_closed_by_timeout"] == 1 and bag.timeout[18] and bag.step[19] == 20
    full = read_bag(reach_bag)
    keep = np.r_[0:19, 20:100]
    np.testing.assert_array_equal(bag.q, full.q[keep])
    np.testing.assert_array_equal(bag.reward, full.reward[keep])


def test_writer_refuses_an_existing_path(tmp_path, reach_logs):
    (tmp_path / "exists").mkdir()
    with pytest.raises(BagError, match="exists already"):
        write_bag(tmp_path / "exists", reach_logs)
    with pytest.raises(BagError, match="unknown storage"):
        write_bag(tmp_path / "new", reach_logs, storage="rosbag1")


def test_episode_log_checks_shapes(reach_logs):
    log = reach_logs[0]
    with pytest.raises(ValueError, match="EpisodeLog.q has 50 rows, expected 51"):
        EpisodeLog(**{**log.__dict__, "q": log.q[:-1]})


def test_trajectories_with_gaps_write_back(tmp_path, reach_bag):
    traj = read_bag(reach_bag)
    keep = np.ones(len(traj), bool)
    keep[10] = False
    holed = traj.select(keep)
    logs = logs_from_trajectories(holed)
    assert [(lg.episode, lg.step0, lg.periods) for lg in logs] == [(0, 0, 10), (0, 11, 39), (1, 0, 50)]
    write_bag(tmp_path / "holed", holed)
    again = read_bag(tmp_path / "holed")
    assert again.meta["account"]["dropped"] == {"no command in the period": 1}
    assert again.timeout[9] and not holed.timeout[9]          # no transition across the gap
    again.timeout[9] = False
    assert_same_rows(again, holed, atol=1e-12)


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_messages_decode_with_ros2_type_support(reach_bag):
    """The bytes in the bag deserialize with ROS 2 Jazzy's own type support (rclpy), field for field."""
    from rclpy import serialization
    from geometry_msgs.msg import PoseStamped
    from sensor_msgs.msg import JointState
    from std_msgs.msg import Float64MultiArray

    types = {tp.JOINT_STATE_TYPE: JointState, tp.FLOAT64_MULTI_ARRAY: Float64MultiArray, tp.POSE_STAMPED: PoseStamped}
    ts = typestore()
    seen = set()
    with Reader(reach_bag) as r:
        for c, _, raw in r.messages():
            ros = serialization.deserialize_message(bytes(raw), types[c.msgtype])
            ours = ts.deserialize_cdr(raw, c.msgtype)
            if c.msgtype == tp.JOINT_STATE_TYPE:
                assert list(ros.name) == list(ours.name) and ros.header.stamp.nanosec == ours.header.stamp.nanosec
                np.testing.assert_array_equal(ros.position, ours.position)
                np.testing.assert_array_equal(ros.effort, ours.effort)
            elif c.msgtype == tp.FLOAT64_MULTI_ARRAY:
                assert ros.layout.dim[0].label == ours.layout.dim[0].label
                np.testing.assert_array_equal(np.array(ros.data), ours.data)
            else:
                assert ros.header.frame_id == "world" and ros.pose.orientation.w == ours.pose.orientation.w
            seen.add(c.topic)
    assert seen == {tp.JOINT_STATES, tp.EFFORT_COMMANDS, tp.TASK_STATE, tp.EE_GOAL}


@pytest.mark.parametrize("name", ["ohio", "ros2_control"])
def test_shipped_topic_maps_are_the_presets(name):
    assert TopicMap.load(ROOT / "config" / "topics" / f"{name}.yaml") == TopicMap.preset(name)
    with pytest.raises(TopicMapError, match="unknown topic map 'nope'"):
        TopicMap.preset("nope")

"""The committed golden bags (tests/golden/bags) read as tests/golden/expected.json says.

The bags are the rosbag2 variants users bring: both storages, zstd per file and per message, a
bag split in two files, metadata of older rosbag2 releases, permuted joints, a gap, a cut MCAP,
a broken database, a recording without torques, one recorded by this stack's recorder node, and
bags with a topic the reader cannot decode beside the stack's (a service-event topic as rosbag2
records service introspection, a topic in another serialization format than CDR), and drivers'
logs of the clean episodes (commanded torques with and without g(q), franka_ros2's topics, a
franka_ros ROS 1 ``.bag`` and that file cut), read with the topic maps expected.json names.
``tests/golden/make_golden.py`` writes them and describes each. Every bag reads to its expected
account (and the variants of the clean episodes to the clean rows, exactly) or fails with a
``BagError`` naming the bag and the expected problem.
"""

import json
import shutil
from functools import cache
from pathlib import Path

import numpy as np
import pytest
import yaml
from rosbags.rosbag2 import Reader

from controllers.config import OSCConfig
from ohio_core.data import topics as tp
from ohio_core.data.bags import BagError, read_bag, typestore
from ohio_core.data.topics import TopicMap
from ohio_core.envs.arm.tasks import obs_slices
from rows import assert_same_rows

GOLDEN = Path(__file__).resolve().parents[1] / "golden"
SERVICE_TOPIC = "/add_two_ints/_service_event"
JSON_TOPIC = "/gripper/command_json"
BAGS = GOLDEN / "bags"
EXPECTED = json.loads((GOLDEN / "expected.json").read_text())["bags"]


def topic_map(name: str) -> TopicMap:
    """The topic map the bag is read with (expected.json's ``topics``: a preset or the keys that differ)."""
    topics = EXPECTED[name].get("topics")
    return TopicMap.preset(topics) if isinstance(topics, str) else TopicMap.from_dict(topics)


def bag_path(name: str) -> Path:
    """The bag: its folder, or the file in it that expected.json names (a ROS 1 ``.bag``)."""
    return BAGS / name / EXPECTED[name]["file"] if "file" in EXPECTED[name] else BAGS / name


@cache
def read(name: str):
    return read_bag(bag_path(name), topic_map(name))


def metadata(name: str) -> dict:
    return yaml.safe_load((BAGS / name / "metadata.yaml").read_text())["rosbag2_bagfile_information"]


def test_expected_json_and_the_bag_folders_list_the_same_bags():
    assert sorted(EXPECTED) == sorted(p.name for p in BAGS.iterdir() if p.is_dir())
    for name, entry in EXPECTED.items():
        assert sum(k in entry for k in ("account", "error", "structural")) == 1, name


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_golden_bag_reads_as_expected(name):
    want = EXPECTED[name]
    path = bag_path(name)
    if "error" in want:
        with pytest.raises(BagError) as exc:
            read_bag(path, topic_map(name))
        assert want["error"] in str(exc.value) and str(path) in str(exc.value)
        return
    traj = read(name)
    account = traj.meta["account"]
    assert account["bag"] == str(path) and len(traj) == account["rows"]
    if "structural" in want:
        facts = want["structural"]
        assert account["topics_in_bag"] == facts["topics_in_bag"]
        assert account["episodes"] == facts["episodes"] and account["rows"] >= facts["min_rows"]
        return
    assert {k: v for k, v in account.items() if k != "bag"} == want["account"]
    if want.get("same_rows_as"):
        assert_same_rows(traj, read(want["same_rows_as"]))        # exactly


def test_gap_drops_the_rows_it_spans_and_closes_the_piece_before_it():
    clean, gap = read("clean_mcap"), read("gap")
    acc = gap.meta["account"]
    # episode 0 loses the rows whose start or end state fell in the gap; the row before the gap
    # ends a piece (marked timeout), so that no transition spans the missing data
    lost = (clean.episode == 0) & ~np.isin(clean.step, gap.step[gap.episode == 0])
    assert lost.sum() == acc["dropped"]["task_state missing (step skipped)"] == len(clean) - len(gap)
    assert acc["gaps_closed_by_timeout"] == 1 and acc["episodes_not_closed"] == []
    kept = clean.select(~lost)
    before_gap = np.flatnonzero((gap.episode == 0) & (gap.step < clean.step[lost].min()))[-1]
    assert gap.timeout[before_gap] and not kept.timeout[before_gap]
    gap.timeout[before_gap] = False
    # the goals published in the gap are lost too: after it, the episode's rows hold the last goal
    # received before it (the latest at or before each command) until a new one arrives
    after = (gap.episode == 0) & (gap.step > gap.step[before_gap])
    assert after.any() and not np.array_equal(gap.goal[after], kept.goal[after])
    np.testing.assert_array_equal(gap.goal[after], np.broadcast_to(gap.goal[before_gap], gap.goal[after].shape))
    gap.goal[after] = kept.goal[after]
    assert_same_rows(gap, kept)


def test_recorder_bag_is_a_closed_loop_recording():
    traj = read("recorder_mcap")
    custom = traj.meta["custom_data"]
    assert json.loads(custom["ohio.record"])["use_sim_time"] is True
    # recorded before the door task: layout version 1 (the object named cube_*, no door angles),
    # read with its fields renamed and the door angles 0
    version, fields = tp.parse_task_state_label(custom["ohio.task_state_layout"])
    assert version == 1 and "door_angle" not in fields and "object_x" in fields
    obs = traj.obs
    assert np.all(obs[:, -2:] == 0.0) and np.isfinite(obs[:, obs_slices()["object_pos"]]).all()
    assert np.all(np.abs(traj.tau) <= np.array([87.0] * 4 + [12.0] * 3))
    assert {0, 1} <= set(traj.episode.tolist())


def first_message(name: str, topic: str):
    with Reader(BAGS / name) as r:
        conns = [c for c in r.connections if c.topic == topic]
        c, _, raw = next(r.messages(connections=conns))
        return typestore().deserialize_cdr(raw, c.msgtype)


def test_the_bags_are_the_variants_they_stand_for():
    """Checks on the files themselves, so that regenerating them cannot lose a variant."""
    for name, mode in (("sqlite3_zstd_file", "file"), ("sqlite3_zstd_message", "message")):
        with Reader(BAGS / name) as r:
            assert r.compression_format == "zstd" and r.compression_mode == mode
    assert metadata("sqlite3_zstd_file")["relative_file_paths"] == ["sqlite3_zstd_file_0.db3.zstd"]
    # split: two files, one episode each, the counts of each file in metadata.yaml
    split = metadata("split_mcap")
    assert split["relative_file_paths"] == ["split_mcap_0.mcap", "split_mcap_1.mcap"]
    assert [f["path"] for f in split["files"]] == split["relative_file_paths"]
    assert sum(f["message_count"] for f in split["files"]) == split["message_count"]
    for n, f in enumerate(split["files"]):
        part = read_bag(BAGS / "split_mcap" / f["path"])
        assert set(part.episode.tolist()) == {n}
        assert sum(part.meta["account"]["messages"].values()) == f["message_count"]
    # metadata versions, with the keys each adds, and QoS as a string before version 9
    for name, version in (("sqlite3_v4_foxy", 4), ("mcap_v5_humble", 5), ("sqlite3_v6", 6),
                          ("mcap_v8_iron", 8), ("clean_mcap", 9), ("split_mcap", 9)):
        info = metadata(name)
        topic = info["topics_with_message_count"][0]["topic_metadata"]
        assert info["version"] == version, name
        assert ("files" in info) == (version >= 5) and ("custom_data" in info) == (version >= 6), name
        assert ("type_description_hash" in topic) == (version >= 7), name
        assert ("ros_distro" in info) == (version >= 8), name
        assert isinstance(topic["offered_qos_profiles"], str if version < 9 else list), name
    # joints named in permuted orders
    js = first_message("shuffled_joints", tp.JOINT_STATES)
    assert sorted(js.name) == sorted(tp.ARM_JOINTS + tp.FINGER_JOINTS)
    assert list(js.name) != list(tp.ARM_JOINTS + tp.FINGER_JOINTS)
    assert "finger" in js.name[1]
    label = first_message("shuffled_joints", tp.EFFORT_COMMANDS).layout.dim[0].label.split(",")
    assert sorted(label) == sorted(tp.ARM_JOINTS) and label != list(tp.ARM_JOINTS)
    # a driver without torque sensing
    js = first_message("empty_effort", tp.JOINT_STATES)
    assert list(js.name) == list(tp.ARM_JOINTS) and len(js.effort) == 0 and len(js.position) == 7
    # a service-event channel as rosbag2's MCAP writer stores it: ros2msg schema holding the .srv text
    with Reader(BAGS / "service_event_mcap") as r:
        (svc,) = [c for c in r.connections if c.topic == SERVICE_TOPIC]
        assert svc.msgtype == "example_interfaces/srv/AddTwoInts_Event" and svc.msgdef.format.name == "MSG"
        assert svc.msgdef.data.startswith("=" * 80 + "\nSRV: example_interfaces/srv/AddTwoInts\n")
        assert "\n---\n" in svc.msgdef.data and svc.msgcount == 8
        assert svc.digest == "RIHS01_32c1d140259c71e5c355115942bcb31df98b4330e4d906b1b75ccb1c9b3ce6c8"
    # a topic in another serialization format, in metadata.yaml and in the MCAP channel
    (json_topic,) = [t["topic_metadata"] for t in metadata("non_cdr_topic")["topics_with_message_count"]
                     if t["topic_metadata"]["name"] == JSON_TOPIC]
    assert json_topic["serialization_format"] == "json"
    with Reader(next((BAGS / "non_cdr_topic").glob("*.mcap"))) as r:
        assert {c.topic: c.ext.serialization_format for c in r.connections}[JSON_TOPIC] == "json"


def test_empty_effort_reads_without_torques_and_relabels_by_state_matching():
    """With the measured-effort map, a driver without torque sensing still gives goals."""
    from ohio_core.data.topics import TopicMap
    from ohio_core.pipeline.bag_relabel import RelabelConfig, relabel_bag

    measured = TopicMap(effort_source="joint_states")
    traj = read_bag(BAGS / "empty_effort", measured)
    acc = traj.meta["account"]
    assert len(traj) == 40 and np.isnan(traj.tau).all()
    assert acc["efforts"].startswith("none (42 of 42 joint states have no effort)")
    result = relabel_bag(BAGS / "empty_effort", RelabelConfig(topic_map=measured))
    assert result.account["method"] == "state_matching" and result.account["segments_built"] == 8
    assert result.account["segments_written"] + sum(result.account["segments_dropped"].values()) == 8
    # the segment before each episode's end has no next state in the bag: counted, not lost silently
    assert result.account["segments_dropped"].get("no state after the segment (the method needs it)", 0) == 2


def test_topics_the_map_does_not_use_never_stop_a_bag():
    """A service-event topic (its stored definition is .srv text rosbags cannot parse) and a topic in
    another serialization format are skipped, named in the account, when the topic map does not use
    them; the stack's rows are the clean ones, from the folder and from the data file alone."""
    clean = read("clean_mcap")
    for name, topic, why in (("service_event_mcap", SERVICE_TOPIC, "service's .srv text"),
                             ("non_cdr_topic", JSON_TOPIC, "serialized as 'json', not CDR")):
        traj = read(name)
        assert_same_rows(traj, clean)
        assert list(traj.meta["account"]["topics_not_read"]) == [topic]
        assert why in traj.meta["account"]["topics_not_read"][topic]
        (data,) = (BAGS / name).glob("*.mcap")
        alone = read_bag(data)
        assert_same_rows(alone, clean)
        assert list(alone.meta["account"]["topics_not_read"]) == [topic]


def test_a_topic_the_map_uses_names_its_serialization_format_not_corruption():
    uses_it = TopicMap(gripper=JSON_TOPIC)
    for path in (BAGS / "non_cdr_topic", next((BAGS / "non_cdr_topic").glob("*.mcap"))):
        with pytest.raises(BagError) as exc:
            read_bag(path, uses_it)
        text = str(exc.value)
        assert text.startswith(f"{path}: topic '{JSON_TOPIC}' (gripper) cannot be read: serialized as 'json', not CDR")
        assert "corrupt" not in text and "\n" not in text and "set gripper to null" in text
    with pytest.raises(BagError, match=r"'/add_two_ints/_service_event' \(joint_states\) has message type "
                                       r"example_interfaces/srv/AddTwoInts_Event"):
        read_bag(BAGS / "service_event_mcap", TopicMap(joint_states=SERVICE_TOPIC))


def test_a_bag_with_a_service_event_topic_relabels_as_the_clean_bag():
    from ohio_core.pipeline.bag_relabel import RelabelConfig, relabel_bag

    ours, clean = (relabel_bag(BAGS / name, RelabelConfig()) for name in ("service_event_mcap", "clean_mcap"))
    assert ours.account["segments_written"] == clean.account["segments_written"] > 0
    np.testing.assert_array_equal(ours.data.actions, clean.data.actions)


def relabeled_actions(name: str, **controller) -> np.ndarray:
    from ohio_core.pipeline.bag_relabel import RelabelConfig, relabel_bag

    result = relabel_bag(bag_path(name), RelabelConfig(controller=OSCConfig(**controller), topic_map=topic_map(name)))
    assert result.account["segments_written"] == 8 and result.account["segments_dropped"] == {}
    return result.data.actions


@pytest.mark.parametrize("name", ["franka_ros2", "franka_ros1"])
def test_a_franka_log_relabels_to_the_clean_goals(name):
    """franka_ros2's robot-state topics, read with its preset (commanded torques without g(q)), give
    the goals of the clean bag for a deployment controller of either convention."""
    clean = relabeled_actions("clean_mcap")
    for deployment in ("controller", "driver"):
        np.testing.assert_allclose(relabeled_actions(name, gravity_compensation=deployment), clean, rtol=0, atol=1e-8)


@pytest.mark.parametrize("deployment", ["controller", "driver"])
def test_a_driver_that_adds_gravity_relabels_to_the_goals_of_commands_that_hold_it(deployment):
    """The same motion logged with g(q) in the commands and without it (the driver adds it) gives the
    same goals, for a deployment controller of either convention, and they are the clean bag's."""
    clean = relabeled_actions("clean_mcap")
    with_g = relabeled_actions("gravity_in_commands", gravity_compensation=deployment)
    by_driver = relabeled_actions("gravity_by_driver", gravity_compensation=deployment)
    np.testing.assert_allclose(by_driver, with_g, rtol=0, atol=1e-8)
    np.testing.assert_allclose(with_g, clean, rtol=0, atol=1e-8)
    # read as if the commands held g(q), the driver's log gives other goals
    wrong = TopicMap.from_dict({**topic_map("gravity_by_driver").to_dict(), "commanded_effort_includes_gravity": True})
    assert np.abs(read_bag(BAGS / "gravity_by_driver", wrong).tau - read("gravity_in_commands").tau).max() > 1.0


def test_a_bag_of_the_stacks_recorder_says_its_gravity_convention(tmp_path):
    """The recorder node writes its controller's gravity_compensation into the bag's metadata; with
    no topic map given, relabeling takes it from there: the driver's log, with this stack's default
    map, gives the goals of the commands that hold g(q). A topic map given explicitly still rules."""
    from ohio_core.pipeline.bag_relabel import RelabelConfig, relabel_bag

    bag = tmp_path / "recorded"
    shutil.copytree(BAGS / "gravity_by_driver", bag)
    meta = yaml.safe_load((bag / "metadata.yaml").read_text())
    meta["rosbag2_bagfile_information"]["custom_data"] = {
        "ohio.record": json.dumps({"robot": "panda", "gravity_compensation": "driver"})}
    (bag / "metadata.yaml").write_text(yaml.safe_dump(meta))
    assert topic_map("gravity_by_driver").commanded_effort_includes_gravity is False    # how the golden is read
    default = TopicMap.from_dict({**topic_map("gravity_by_driver").to_dict(), "commanded_effort_includes_gravity": True})
    recorded = relabel_bag(bag, RelabelConfig(topic_map=default))
    np.testing.assert_allclose(recorded.data.actions, relabeled_actions("gravity_in_commands"), rtol=0, atol=1e-8)
    ignored = relabel_bag(bag, RelabelConfig(topic_map=default, recorded_gravity=False))
    assert np.abs(ignored.data.actions - recorded.data.actions).max() > 1e-3

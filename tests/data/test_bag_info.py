"""``ohio bag-info`` and what it relies on: split bags without their metadata.yaml (read as one bag,
metadata rebuilt as ``ros2 bag reindex`` does), and data files whose schemas rosbag2 left without a
definition.

The bags are the committed golden bags (``tests/golden``) or copies of them with one change.
"""

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import yaml
from rosbags.rosbag2 import Reader, StoragePlugin, Writer
from rosbags.rosbag2.storage_mcap import McapWriter, Schema, write_schema

from ohio_core.cli.main import main
from ohio_core.data import topics as tp
from ohio_core.data.bag_inspect import inspect_bag
from ohio_core.data.bag_read import read_bag
from ohio_core.data.bag_source import write_metadata
from ohio_core.data.bags import BagError, typestore
from ohio_core.data.topics import TopicMap
from ohio_core.pipeline.bag_relabel import RelabelConfig, expand_bags, relabel_bags
from rows import assert_same_rows

GOLDEN = Path(__file__).resolve().parents[1] / "golden" / "bags"


def info(path: Path) -> dict:
    return yaml.safe_load((path / "metadata.yaml").read_text())["rosbag2_bagfile_information"]


@pytest.fixture
def unindexed(tmp_path) -> Path:
    """The split golden bag's two data files in a folder without metadata.yaml."""
    folder = tmp_path / "recordings" / "split_mcap"
    folder.mkdir(parents=True)
    for f in (GOLDEN / "split_mcap").glob("*.mcap"):
        shutil.copy(f, folder / f.name)
    return folder


def test_split_bag_without_metadata_reads_and_relabels_as_with_it(unindexed):
    with_meta = read_bag(GOLDEN / "split_mcap")
    traj = read_bag(unindexed)
    assert_same_rows(traj, with_meta)
    acc, ref = traj.meta["account"], with_meta.meta["account"]
    assert {k: v for k, v in acc.items() if k not in ("bag", "metadata_rebuilt")} == \
        {k: v for k, v in ref.items() if k not in ("bag", "metadata_version")}
    assert acc["metadata_rebuilt"].startswith("no metadata.yaml: 2 data file(s) of one split recording")
    # the recording's custom_data (the task it records) comes from the metadata the files store
    assert traj.meta["custom_data"] == with_meta.meta["custom_data"] and "ohio.collect" in traj.meta["custom_data"]
    # a folder of recordings finds it as one bag, not as two loose files
    assert expand_bags([unindexed.parent]) == [unindexed]
    config = RelabelConfig()
    ours = relabel_bags(expand_bags([unindexed.parent]), config, workers=1, progress=False)
    theirs = relabel_bags([GOLDEN / "split_mcap"], config, workers=1, progress=False)
    assert ours.account["bags_read"] == 1 and ours.task == theirs.task == "reach"
    for key in ("control_steps_in", "segments_built", "segments_written", "rows_dropped_at_read", "messages"):
        assert ours.account[key] == theirs.account[key], key
    np.testing.assert_array_equal(ours.data.actions, theirs.data.actions)
    np.testing.assert_array_equal(ours.data.observations, theirs.data.observations)


def test_loose_files_that_are_not_one_recording_stay_separate_bags(tmp_path):
    for name, new in (("split_mcap_0.mcap", "morning.mcap"), ("split_mcap_1.mcap", "evening_1.mcap")):
        shutil.copy(GOLDEN / "split_mcap" / name, tmp_path / new)
    assert expand_bags([tmp_path]) == [tmp_path / "evening_1.mcap", tmp_path / "morning.mcap"]
    with pytest.raises(BagError, match="not a rosbag2 folder"):
        read_bag(tmp_path)


def test_reindex_writes_the_metadata_rosbag2_writes(unindexed):
    written = write_metadata(unindexed)
    assert info(unindexed) == written
    ref = info(GOLDEN / "split_mcap")
    for key in ("version", "storage_identifier", "duration", "starting_time", "message_count", "relative_file_paths",
                "files", "custom_data", "compression_format", "compression_mode"):
        assert written[key] == ref[key], key

    def by_name(meta):
        return {t["topic_metadata"]["name"]: t for t in meta["topics_with_message_count"]}
    assert by_name(written) == by_name(ref)
    # rosbags reads the folder through it, file by file, to the same rows
    with Reader(unindexed) as r:
        assert r.message_count == ref["message_count"]
    traj = read_bag(unindexed)
    assert_same_rows(traj, read_bag(GOLDEN / "split_mcap"))
    assert "metadata_rebuilt" not in traj.meta["account"] and traj.meta["account"]["metadata_version"] == 9
    with pytest.raises(BagError, match="already has a metadata.yaml"):
        write_metadata(unindexed)


def test_bag_info_reports_and_its_exit_status_says_whether_relabeling_can_read(tmp_path, unindexed, capsys):
    assert main(["bag-info", str(GOLDEN / "service_event_mcap"), "--json"]) == 0
    out = capsys.readouterr().out
    report = json.loads(out.strip().splitlines()[-1])
    (bag,) = report["bags"]
    assert report["ready"] and bag["messages"] == 140 and bag["duration_s"] == 2.4 and bag["storage"] == "mcap"
    assert bag["topics"][tp.JOINT_STATES]["messages"] == 42 and bag["roles"]["commands"]["status"] == "40 messages"
    assert "service's .srv text" in bag["topics"]["/add_two_ints/_service_event"]["unreadable"]
    assert "relabeling finds what it needs" in out and "/add_two_ints/_service_event" in out
    # readable, but the stack's map lacks the commands: exit 1, the missing topic named
    assert main(["bag-info", str(GOLDEN / "empty_effort")]) == 1
    out = capsys.readouterr().out
    assert "NOT READY: topic '/effort_controller/commands' (commands) is not in the bag" in out
    # with a map that takes measured efforts it is ready, and says the goals come from state matching
    measured = tmp_path / "measured.yaml"
    measured.write_text("effort_source: joint_states\n")
    assert main(["bag-info", str(GOLDEN / "empty_effort"), "--topics", str(measured)]) == 0
    assert "state matching" in capsys.readouterr().out
    # a cut file: one line naming it, exit 2; the other bags are still reported
    assert main(["bag-info", str(GOLDEN / "truncated_mcap"), str(GOLDEN / "clean_mcap"), "--json"]) == 2
    captured = capsys.readouterr()
    err = [line for line in captured.err.splitlines() if line]
    cut = GOLDEN / "truncated_mcap"
    assert len(err) == 1 and err[0].startswith(f"ohio bag-info: {cut}: cannot open the bag (truncated or corrupt?)")
    report = json.loads(captured.out.strip().splitlines()[-1])
    assert [b["bag"] for b in report["bags"]] == [str(GOLDEN / "clean_mcap")] and report["exit_status"] == 2
    # --reindex writes the split recording's metadata.yaml, then reports on the bag
    assert main(["bag-info", "--reindex", str(unindexed), "--json"]) == 0
    report = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert report["metadata_written"] == [str(unindexed / "metadata.yaml")]
    assert report["bags"][0]["files"] == 2 and report["bags"][0]["metadata_version"] == 9
    assert main(["bag-info", "--reindex", str(unindexed)]) == 2
    assert "already has a metadata.yaml" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exc:
        main(["bag-info", "--help"])
    assert exc.value.code == 0 and "Exit status" in capsys.readouterr().out


class _UnknownDefinitionMcap(McapWriter):
    """rosbags' MCAP writer storing the schema of the types in ``UNKNOWN`` with encoding ``unknown``
    and no text, as rosbag2 (Jazzy) stores a type whose definition it did not find."""

    UNKNOWN = ("geometry_msgs/msg/PoseStamped", "franka_msgs/msg/FrankaState")

    def add_msgtype(self, connection):
        if connection.msgtype not in self.UNKNOWN:
            return super().add_msgtype(connection)
        self.schemas.append(Schema(len(self.schemas) + 1, connection.msgtype, "unknown", ""))
        write_schema(self.chunk.bio, self.schemas[-1])


class _UnknownDefinitionWriter(Writer):
    STORAGE_PLUGINS = {**Writer.STORAGE_PLUGINS, StoragePlugin.MCAP: _UnknownDefinitionMcap}


def test_schemas_rosbag2_left_without_a_definition_do_not_stop_a_bag(tmp_path):
    """The goal topic's schema says ``unknown`` (decoded with the ROS 2 Jazzy type), and a topic of a
    type that is neither stored nor a Jazzy type is listed as not readable."""
    ts = typestore()
    out = tmp_path / "unknown_defs"
    with Reader(GOLDEN / "clean_mcap") as r:
        msgs = [(c.topic, c.msgtype, t, bytes(raw)) for c, t, raw in r.messages()]
        conns = [(c.topic, c.msgtype) for c in r.connections]
    w = _UnknownDefinitionWriter(out, version=9, storage_plugin=StoragePlugin.MCAP)
    w.open()
    made = {topic: w.add_connection(topic, msgtype, typestore=ts) for topic, msgtype in conns}
    made["/franka_state"] = w.add_connection("/franka_state", "franka_msgs/msg/FrankaState", msgdef="",
                                             rihs01="RIHS01_" + "0" * 64)
    for topic, _, t, raw in msgs:
        w.write(made[topic], t, raw)
    w.write(made["/franka_state"], msgs[0][2], b"\x00\x01\x00\x00" + bytes(8))
    w.close()
    with pytest.raises(KeyError, match="unknown"):      # rosbags' own reader refuses the whole file
        Reader(out).open()
    traj = read_bag(out)
    assert_same_rows(traj, read_bag(GOLDEN / "clean_mcap"))
    assert traj.meta["account"]["topics_not_read"] == {
        "/franka_state": "no definition of franka_msgs/msg/FrankaState stored, and it is not a ROS 2 Jazzy type"}
    report = inspect_bag(out, TopicMap())
    assert report["ready"] and report["topics"][tp.EE_GOAL]["definition"] == ["none stored"]

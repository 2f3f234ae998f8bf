"""ROS 1 bags (``ohio_core.data.bag_ros1``): a franka_ros ``.bag`` of ``FrankaState`` read with the
definition it carries, through ``ohio bag-info`` and relabeling like a rosbag2 bag; a damaged one is
one line naming the file. The bags are the committed golden ones (``tests/golden``)."""

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from ohio_core.cli.main import main
from ohio_core.data.bag_common import BagError
from ohio_core.data.bag_read import read_bag
from ohio_core.data.bag_storage import open_bag
from ohio_core.data.topics import TopicMap
from ohio_core.pipeline.bag_relabel import expand_bags

GOLDEN = Path(__file__).resolve().parents[1] / "golden" / "bags"
BAG = GOLDEN / "franka_ros1" / "franka_ros1.bag"
CUT = GOLDEN / "franka_ros1_truncated" / "franka_ros1_truncated.bag"
STATES = "/franka_state_controller/franka_states"


def test_the_bag_is_decoded_with_the_definition_it_carries():
    bag = open_bag(BAG)
    try:
        (conn,) = bag.connections
        assert conn.msgtype == "franka_msgs/msg/FrankaState" and "float64[7] tau_J_d" in conn.msgdef.data
        bag.use({STATES: "joint_states and commands"})
        _, _, raw = next(bag.messages([conn]))
        msg = bag.deserialize(raw, conn.msgtype)
        assert msg.q.shape == (7,) and msg.header.seq == 0 and msg.robot_mode == 2
    finally:
        bag.close()


def test_bag_info_reports_it_ready_and_a_damaged_bag_in_one_line(capsys):
    assert main(["bag-info", str(BAG), "--topics", "franka_ros1", "--json"]) == 0
    (bag,) = json.loads(capsys.readouterr().out.strip().splitlines()[-1])["bags"]
    assert bag["storage"] == "rosbag1" and bag["messages"] == 40 and bag["ready"]
    assert bag["roles"]["commands"] == {"topic": STATES, "status": "40 messages"}
    assert bag["topics"][STATES]["serialization"] == ["ros1"]
    assert bag["gravity"] == {"commanded": False, "measured": True}       # franka_ros logs tau_J_d without g(q)
    assert main(["bag-info", str(BAG), "--topics", "franka_ros1"]) == 0
    assert ("gravity: commanded efforts leave g(q) to the driver (relabeling adds it); measured efforts hold g(q)"
            in capsys.readouterr().out)
    # this stack's map: the topics are not there, listed as problems
    assert main(["bag-info", str(BAG)]) == 1
    out = capsys.readouterr().out
    assert "NOT READY: topic '/joint_states' (joint_states) is not in the bag" in out
    assert "gravity: commanded efforts hold g(q); measured efforts hold g(q)" in out
    assert main(["bag-info", str(CUT)]) == 2
    err = [line for line in capsys.readouterr().err.splitlines() if line]
    assert len(err) == 1 and err[0].startswith(f"ohio bag-info: {CUT}: cannot open the ROS 1 bag (truncated or corrupt?)")


def test_folders_are_searched_for_ros1_bags(tmp_path):
    shutil.copy(BAG, tmp_path / "a.bag")
    (tmp_path / "notes.txt").write_text("not a bag")
    assert expand_bags([tmp_path]) == [tmp_path / "a.bag"]
    (tmp_path / "b.bag").write_bytes(b"#ROSBAG V2.0\n")
    with pytest.raises(BagError, match=r"^\S+/b\.bag: cannot open the ROS 1 bag \(truncated or corrupt\?\)"):
        read_bag(tmp_path / "b.bag", TopicMap.preset("franka_ros1"))


def test_frankastate_is_state_and_command_without_gravity():
    rows = read_bag(BAG, TopicMap.preset("franka_ros1"))
    as_logged = read_bag(BAG, TopicMap.from_dict({**TopicMap.preset("franka_ros1").to_dict(),
                                                  "commanded_effort_includes_gravity": True}))
    assert len(rows) == 40 and rows.meta["account"]["efforts"].endswith("logged without g(q), added from the robot model")
    # rows hold g(q): they are the torques of the clean bag's rows
    clean = read_bag(GOLDEN / "clean_mcap")
    np.testing.assert_allclose(rows.tau, clean.tau, rtol=0, atol=1e-10)
    assert np.abs(as_logged.tau - rows.tau).max() > 1.0
    measured = read_bag(BAG, TopicMap.from_dict({**TopicMap.preset("franka_ros1").to_dict(),
                                                 "effort_source": "joint_states"}))
    assert np.isfinite(measured.tau[:19]).all()

"""``reach`` end to end on every arm through the command line: collect -> relabel -> train -> eval."""

import json

import pytest

from ohio_core.cli.main import main
from ohio_core.data.bag_source import bag_custom_data


def last_json(text: str) -> dict:
    return json.loads(text.strip().splitlines()[-1])


@pytest.mark.parametrize("robot, joints", [("ur5", 6), ("xarm7", 7)])
def test_reach_runs_end_to_end_on_the_arm(tmp_path, capsys, robot, joints):
    bag, ds, model = tmp_path / "bag", tmp_path / "ds", tmp_path / "model"
    assert main(["collect", "--robot", robot, "--task", "reach", "--policy", "expert", "--episodes", "2",
                 "--horizon", "100", "--no-progress", "--out", str(bag), "--json"]) == 0
    collected = last_json(capsys.readouterr().out)
    assert collected["success_rate"] > 0 and collected["control_steps"] == 200
    assert json.loads(bag_custom_data(bag)["ohio.collect"])["robot"] == robot
    assert main(["bag-info", str(bag), "--robot", robot, "--json"]) == 0      # its joints are found
    assert last_json(capsys.readouterr().out)["bags"][0]["ready"] is True

    with pytest.raises(SystemExit, match=f"recorded on robot '{robot}', relabeling is for 'panda'"):
        main(["relabel", str(bag), "--workers", "1", "--out", str(tmp_path / "wrong")])
    assert main(["relabel", str(bag), "--robot", robot, "--method", "analytical", "--workers", "1",
                 "--out", str(ds), "--json"]) == 0
    relabeled = last_json(capsys.readouterr().out)
    assert relabeled["segments_written"] == 40 and relabeled["residual_n_m"]["max"] < 1e-8   # its own controller
    sidecar = json.loads((tmp_path / "ds.json").read_text())
    assert sidecar["robot"] == robot and sidecar["action_dim"] == 6

    assert main(["train", str(ds), "--algo", "bc", "--steps", "20", "--out", str(model), "--json"]) == 0
    assert last_json(capsys.readouterr().out)["robot"] == robot
    assert main(["eval", str(model), "--episodes", "2", "--horizon", "40", "--json"]) == 0
    evaluated = last_json(capsys.readouterr().out)
    assert evaluated["robot"] == robot and evaluated["episodes"] == 2
    ref = evaluated["reference"]                                     # the arm's own expert is the score's 100
    assert ref["expert_return"] > ref["random_return"] + 1.0


def test_a_bad_robot_is_one_line_naming_it(tmp_path):
    bad = tmp_path / "arm.yaml"
    bad.write_text("name: arm\nurdf: nowhere.urdf\njoints: [a, b, c, d, e, f]\ntcp: {frame: t}\nhome: 0.0\n")
    with pytest.raises(SystemExit, match=f"ohio collect: {bad}: URDF not found"):
        main(["collect", "--robot", str(bad), "--task", "reach", "--policy", "expert", "--episodes", "1",
              "--out", str(tmp_path / "bag")])
    with pytest.raises(SystemExit, match="ohio bench controllers: unknown robot 'ur10'"):
        main(["bench", "controllers", "--robot", "ur10"])

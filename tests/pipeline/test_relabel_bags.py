"""Relabeling real-robot-style bags: streaming per-bag jobs, resampled driver logs, fallbacks,
accounts with drop reasons and time ranges, bad bags, parallel runs and the CLI.

Bags are written from simulator trajectories (``collect``): this stack's bags by ``BagWriter``, and
driver-style bags (no task state, joint states at another rate in another joint order, unlabeled
effort commands) by ``tests/support/bagmaker.py``. Goals recovered from a clean bag must equal those
recovered from the in-memory trajectories exactly.
"""

import json
import re
from pathlib import Path

import numpy as np
import pytest

from controllers.base import make_controller
from controllers.config import OSCConfig
from ohio_core.cli.main import main
from ohio_core.data.bag_common import BagError
from ohio_core.data.bag_read import BagStream, read_bag
from ohio_core.data.bags import write_bag
from ohio_core.data.collect import collect, collect_bag, iter_episodes
from ohio_core.data.rows_common import ReadOptions
from ohio_core.data.topics import TopicMap
from ohio_core.pipeline.bag_relabel import RelabelConfig, RelabelError, recorded_k, relabel_bag, relabel_bags
from ohio_core.pipeline.dataset import load_dataset
from ohio_core.pipeline.relabel import relabel
from bagmaker import write_driver_bag

ROOT = Path(__file__).resolve().parents[2]
DRIVER = TopicMap.load(ROOT / "config/topics/ros2_control.yaml")
SETTINGS = dict(episodes=3, seed=11, horizon=50, k=5)
FIELDS = ("observations", "actions", "rewards", "terminals", "timeouts", "residual")


@pytest.fixture(scope="module")
def logs():
    return list(iter_episodes("reach", "expert", **SETTINGS))


@pytest.fixture(scope="module")
def traj():
    return collect("reach", "expert", **SETTINGS, progress=False)


@pytest.fixture(scope="module")
def controller():
    return make_controller(OSCConfig())


@pytest.fixture(scope="module")
def bags(tmp_path_factory, logs):
    root = tmp_path_factory.mktemp("bags")
    out = {}
    for storage in ("mcap", "sqlite3"):
        write_bag(root / storage, logs, storage=storage, custom_data={"ohio.collect": json.dumps({"task": "reach"})})
        out[storage] = root / storage
    return out


def assert_same(a, b):
    for name in FIELDS:
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name), err_msg=name)


@pytest.mark.parametrize("storage", ["mcap", "sqlite3"])
def test_clean_bag_goals_equal_in_memory_goals_exactly(bags, traj, controller, storage):
    config = RelabelConfig(read=ReadOptions(chunk_rows=60))          # a chunk per episode or so
    result = relabel_bag(bags[storage], config)
    memory = relabel(traj, controller, 5, "auto", joint_limit_margin=config.joint_limit_margin)
    assert len(memory.actions) == 30
    assert_same(result.data, memory)
    acc = result.account
    assert acc["read"]["rows"] == 150 and acc["read"]["episodes"] == 3
    assert acc["segments_written"] == 30 and acc["segments_dropped"] == {}
    assert acc["read"]["storage"] == storage and acc["read"]["metadata_version"] == 9
    assert result.task == "reach"


def test_stream_holds_a_chunk_not_the_bag(bags):
    stream = BagStream(bags["mcap"], options=ReadOptions(chunk_rows=60))
    sizes = [len(chunk) for chunk in stream]
    # a chunk is cut at the first episode start after 60 buffered task states: at most 2 episodes
    assert len(sizes) >= 2 and sum(sizes) == 150 and max(sizes) <= 100


def test_driver_bag_is_resampled_and_gives_the_same_goals(tmp_path, traj, controller):
    info = write_driver_bag(tmp_path / "driver", traj, js_per_period=3)
    config = RelabelConfig(topic_map=DRIVER)
    result = relabel_bag(tmp_path / "driver", config)
    memory = relabel(traj, controller, 5, "auto", joint_limit_margin=config.joint_limit_margin)
    np.testing.assert_array_equal(result.data.actions, memory.actions)
    np.testing.assert_array_equal(result.data.observations, memory.observations[:, :23])   # the arm's part
    read = result.account["read"]
    assert read["row_rule"] == "resampled to 0.02 s" and read["rows"] == 150 and read["episodes"] == 3
    assert read["commands_unused"] == 0 and read["alignment"]["state_ms"]["max_ms"] == 0.0
    # the 1 s pauses between episodes are gaps, counted in control periods with their time ranges
    gap = "gap longer than max_gap (0.1 s) in the joint states"
    assert read["dropped"][gap] == 2 * 49
    assert read["drop_time_ranges_s"][gap] == [[1.0, 1.98], [2.98, 3.96]]
    assert result.task == "arm" and result.data.obs_layout[-1] == ["tcp_rot6", 6]
    assert info["messages"] == sum(read["messages"].values())


def test_long_pieces_are_cut_and_chunks_stay_small(tmp_path, traj):
    write_driver_bag(tmp_path / "driver", traj, js_per_period=2)
    stream = BagStream(tmp_path / "driver", DRIVER, ReadOptions(max_piece=0.2))
    sizes = [len(chunk) for chunk in stream]
    assert sizes == [10] * 15 and stream.account["pieces_cut_at_max_piece"] == 12


def test_missing_velocities_are_differentiated(tmp_path, traj, controller):
    write_driver_bag(tmp_path / "nov", traj, js_per_period=1, velocities=False)
    rows = read_bag(tmp_path / "nov", DRIVER)
    assert rows.meta["account"]["velocities"].startswith("Savitzky-Golay")
    inner = np.abs(rows.qd - traj.qd)[np.r_[3:47, 53:97, 103:147]]    # away from the piece ends
    assert np.median(inner) < 0.01 and np.abs(rows.qd - traj.qd).max() < 0.5
    # estimated velocities leave a residual over the k periods (0.2-0.35 N m, up to 1.6 at piece ends)
    est = relabel(rows, controller, 5, max_residual=np.inf)
    assert 0.1 < np.median(est.residual) < 0.5
    b = relabel(traj, controller, 5).actions
    assert np.median(np.abs(est.actions - b)) < 0.01


def test_empty_effort_falls_back_to_state_matching(tmp_path, traj, controller):
    write_driver_bag(tmp_path / "noeff", traj, efforts="empty", commands=False)
    measured = TopicMap.from_dict({**DRIVER.to_dict(), "effort_source": "joint_states"})
    result = relabel_bag(tmp_path / "noeff", RelabelConfig(topic_map=measured))
    assert result.account["method"] == "state_matching"
    assert result.account["read"]["efforts"].startswith("none (297 of 297 joint states have no effort)")
    built = result.account["segments_built"]
    assert built == 30 and result.account["segments_written"] > 0
    assert result.account["segments_written"] + sum(result.account["segments_dropped"].values()) == built
    # the goals are state matching's on the same states, as in memory
    memory = relabel(traj, controller, 5, "state_matching", joint_limit_margin=RelabelConfig().joint_limit_margin)
    assert len(result.data.actions) == len(memory.actions) == result.account["segments_written"]
    np.testing.assert_allclose(result.data.actions, memory.actions, atol=1e-6)
    with pytest.raises(Exception, match=r"noeff: the bag has no torques .* method 'analytical' needs them"):
        relabel_bag(tmp_path / "noeff", RelabelConfig(topic_map=measured, method="analytical"))


def test_measured_efforts_are_read_from_joint_states(tmp_path, traj):
    info = write_driver_bag(tmp_path / "meas", traj, js_per_period=2, commands=False)
    measured = TopicMap.from_dict({**DRIVER.to_dict(), "commands": None, "effort_source": "joint_states"})
    rows = read_bag(tmp_path / "meas", measured)
    keep = np.isin(info["row_ns"], rows.stamp)
    # the last row of each piece has no joint state after it: its torque is unknown
    assert rows.meta["account"]["dropped"]["no measured effort within the period"] == 3 and keep.sum() == 147
    np.testing.assert_array_equal(rows.tau, traj.tau[keep])


def test_jittered_stamps_report_the_alignment_error(tmp_path, traj):
    write_driver_bag(tmp_path / "jit", traj, js_per_period=4, jitter_ns=2_000_000)
    rows = read_bag(tmp_path / "jit", DRIVER)
    al = rows.meta["account"]["alignment"]
    assert 0 < al["state_ms"]["p95_ms"] <= 5.0 + 1e-9
    np.testing.assert_allclose(rows.q, traj.q, atol=2e-3)


def test_joint_limit_violations_and_out_of_range_goals_are_dropped_with_time_ranges(tmp_path, traj):
    bad = traj.select(np.ones(len(traj), bool))
    bad.q = bad.q.copy()
    bad.q[60:63, 3] = 0.5                              # panda_joint4 has an upper limit of -0.07 rad
    write_driver_bag(tmp_path / "lim", bad, js_per_period=1)
    result = relabel_bag(tmp_path / "lim", RelabelConfig(topic_map=DRIVER))
    reason = "joint limit violation (beyond 0.05 rad)"
    assert result.account["segments_dropped"][reason] == 1
    # episode 1 starts at 1.98 s; its rows 10-14 make the segment
    assert result.account["segments_dropped_time_ranges_s"][reason] == [[2.18, 2.28]]
    # a deployment controller with a tenth of the range: far goals leave it
    narrow = OSCConfig(output_max=(0.005, 0.005, 0.005, 0.05, 0.05, 0.05))
    clip = relabel_bag(tmp_path / "lim", RelabelConfig(controller=narrow, topic_map=DRIVER))
    drop = relabel_bag(tmp_path / "lim", RelabelConfig(controller=narrow, topic_map=DRIVER, out_of_range="drop"))
    n = drop.account["segments_dropped"]["goal outside the deployment controller's range"]
    assert n > 0 and clip.account["actions_clipped"] >= n
    assert drop.account["segments_written"] == clip.account["segments_written"] - n


def _truncate(src: Path, dst: Path) -> Path:
    import shutil

    shutil.copytree(src, dst)
    mcap = next(dst.glob("*.mcap"))
    data = mcap.read_bytes()
    mcap.write_bytes(data[: len(data) * 6 // 10])
    return dst


def test_a_bad_bag_stops_the_run_or_is_skipped(tmp_path, bags, traj, controller):
    bad = _truncate(bags["mcap"], tmp_path / "truncated")
    order = [bags["mcap"], bad, bags["sqlite3"]]
    with pytest.raises(RelabelError, match=r"truncated: .*truncated or corrupt.*--skip-bad"):
        relabel_bags(order, RelabelConfig(), workers=1, progress=False)
    run = relabel_bags(order, RelabelConfig(), workers=1, skip_bad=True, progress=False)
    assert list(run.skipped) == [str(bad)] and "truncated or corrupt" in run.skipped[str(bad)]
    assert run.account["bags_read"] == 2 and run.account["segments_written"] == 60
    memory = relabel(traj, controller, 5, joint_limit_margin=0.05)
    np.testing.assert_array_equal(run.data.actions, np.concatenate([memory.actions] * 2))
    assert len(np.unique(run.data.episode)) == 6            # episode ids distinct across bags


def test_parallel_run_equals_inline(bags):
    order = [bags["mcap"], bags["sqlite3"]]
    a = relabel_bags(order, RelabelConfig(), workers=1, progress=False)
    b = relabel_bags(order, RelabelConfig(), workers=2, progress=False)
    assert_same(a.data, b.data)
    np.testing.assert_array_equal(a.data.episode, b.data.episode)
    assert a.account["messages"] == b.account["messages"]


def test_cli_relabel_writes_an_accounted_dataset_and_pipeline_trains(tmp_path, bags, capsys):
    out = tmp_path / "ds"
    assert main(["relabel", str(bags["mcap"].parent), "--workers", "1", "--out", str(out), "--json"]) == 0
    printed = capsys.readouterr().out
    summary = json.loads(printed.strip().splitlines()[-1])
    assert summary["bags_read"] == 2 and summary["segments_written"] == 60
    assert "segments written" in printed and "alignment" in printed
    _, meta = load_dataset(out)
    assert meta["transitions"] == 60 and set(meta["account"]["per_bag"]) == {str(bags["mcap"]), str(bags["sqlite3"])}
    model = tmp_path / "model"
    assert main(["pipeline", str(bags["mcap"]), "--workers", "1", "--algo", "bc", "--steps", "20",
                 "--out", str(model), "--json"]) == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert Path(result["model"]).is_file() and result["account"]["segments_written"] == 30
    _, meta = load_dataset(str(model) + "_dataset")
    assert meta["transitions"] == 30 and meta["command"].startswith("ohio pipeline ")


def test_cli_names_the_bad_bag_and_writes_nothing(tmp_path, bags):
    bad = _truncate(bags["mcap"], tmp_path / "cut")
    with pytest.raises(SystemExit, match=r"ohio relabel: .*cut: .*truncated or corrupt"):
        main(["relabel", str(bags["mcap"]), str(bad), "--workers", "1", "--out", str(tmp_path / "ds")])
    assert not list(tmp_path.glob("ds*"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(SystemExit, match=r"empty: no bags in this folder"):
        main(["relabel", str(tmp_path / "empty"), "--out", str(tmp_path / "x")])


def test_a_run_killed_while_writing_leaves_no_dataset(tmp_path):
    """The process dies (no clean-up runs) half way through the data file: nothing at the final names."""
    import subprocess
    import sys

    code = ("import os, sys; from pathlib import Path; from ohio_core.pipeline.sidecar import write_pair\n"
            "def half(tmp):\n    tmp.write_bytes(b'x' * 1000); os._exit(9)\n"
            "out = Path(sys.argv[1]); write_pair(out.with_suffix('.h5'), out.with_suffix('.json'), half, {})\n")
    proc = subprocess.run([sys.executable, "-c", code, str(tmp_path / "ds")], cwd=ROOT)
    assert proc.returncode == 9
    assert not (tmp_path / "ds.h5").exists() and not (tmp_path / "ds.json").exists()
    with pytest.raises(FileNotFoundError, match="dataset not found"):
        load_dataset(tmp_path / "ds")


def test_ml_needs_the_torque_noise_and_recovers_the_goals_of_a_clean_bag(tmp_path, bags, traj, controller):
    with pytest.raises(ValueError, match="needs the torque noise"):
        RelabelConfig(method="ml")
    with pytest.raises(ValueError, match="for method 'ml' only"):
        RelabelConfig(torque_sigma=(0.1,))
    with pytest.raises(ValueError, match="torque_sigma must be one value or 7 \\(one per joint\\)"):
        RelabelConfig(method="ml", torque_sigma=(0.1, 0.2))
    with pytest.raises(ValueError, match="torque_sigma must be one value or 7 \\(one per joint\\)"):
        RelabelConfig(method="ml", torque_sigma=(float("nan"),))
    result = relabel_bag(bags["mcap"], RelabelConfig(method="ml", torque_sigma=(0.05,)))
    memory = relabel(traj, controller, 5, "ml", joint_limit_margin=0.05, sigma=0.05)
    for name in FIELDS:
        np.testing.assert_allclose(getattr(result.data, name), getattr(memory, name), atol=1e-9, err_msg=name)
    assert result.account["method"] == "ml" and result.account["segments_written"] == 30
    # noise-free torques: the weighted fit is exact, as the closed form
    exact = relabel_bag(bags["mcap"], RelabelConfig())
    np.testing.assert_allclose(result.data.actions, exact.data.actions, atol=1e-6)
    with pytest.raises(SystemExit, match="ohio relabel: method 'ml' needs the torque noise"):
        main(["relabel", str(bags["mcap"]), "--method", "ml", "--workers", "1", "--out", str(tmp_path / "x")])
    assert main(["relabel", str(bags["mcap"]), "--method", "ml", "--torque-sigma", "0.05", "--workers", "1",
                 "--out", str(tmp_path / "ml")]) == 0
    _, meta = load_dataset(tmp_path / "ml")
    assert meta["transitions"] == 30 and meta["account"]["method"] == "ml"


def test_a_defect_in_the_readers_own_processing_is_not_called_a_corrupt_bag(bags, monkeypatch):
    # (what the storage or the decoder cannot read is: test_a_bad_bag_stops_the_run_or_is_skipped)
    def broken(*args):
        raise RuntimeError("a defect in the reader's own processing")

    monkeypatch.setattr(BagStream, "_add", broken)
    with pytest.raises(RuntimeError, match="a defect in the reader's own processing"):
        list(BagStream(bags["mcap"]))
    # skipped like a bad bag, but reported with its type: not a bad bag's message
    run = relabel_bags([bags["mcap"]], RelabelConfig(), workers=1, skip_bad=True, progress=False)
    assert run.skipped == {str(bags["mcap"]): "RuntimeError: a defect in the reader's own processing"}


@pytest.fixture(scope="module")
def collected(tmp_path_factory):
    """A bag written by ``ohio collect``'s own function: its metadata records k = 5."""
    out = tmp_path_factory.mktemp("collected") / "bag"
    collect_bag(out, "reach", "noisy0.3", episodes=2, seed=3, horizon=35, k=5, progress=False)
    return out


def test_a_bag_recorded_with_another_k_is_refused_unless_forced(collected):
    assert recorded_k(collected) == 5
    same = relabel_bag(collected, RelabelConfig(k=5))
    assert same.account["k_recorded"] == 5 and same.data.residual.max() < 1e-10
    assert same.account["segments_written"] == same.account["segments_built"] == 14
    refused = re.escape(f"{collected}: recorded with k = 5, relabeling asked for k = 7; use --k 5, or --force-k")
    with pytest.raises(BagError, match=refused):
        relabel_bag(collected, RelabelConfig(k=7))
    with pytest.raises(RelabelError, match=refused):          # the caller's error: not skipped as a bad bag
        relabel_bags([collected], RelabelConfig(k=7), workers=1, skip_bad=True, progress=False)
    # forced: the goals change inside the 7-period segments, the residual shows it and drops them
    forced = relabel_bag(collected, RelabelConfig(k=7, force_k=True, max_residual=1.0)).account
    assert forced["k"] == 7 and forced["k_recorded"] == 5 and forced["segments_built"] == 10
    assert forced["segments_dropped"]["residual above 1 N m"] >= 9


def test_the_residual_is_a_warning_for_the_recording_controller_and_no_drop_for_another(collected):
    """Relabeled for the controller that recorded it, a bag is reproduced exactly, and a residual says
    something is wrong (here k); relabeled for another controller the residual measures how far apart
    the two are, and by default no segment is dropped for it."""
    same = relabel_bags([collected], RelabelConfig(k=5), workers=1, progress=False).account
    assert same["per_bag"][str(collected)]["recorded_controller"] == "same" and same["warnings"] == []
    forced = relabel_bags([collected], RelabelConfig(k=7, force_k=True), workers=1, progress=False).account
    (warning,) = forced["warnings"]
    assert warning.startswith(f"{collected}: residual p95 ") and "check k, the controller config" in warning
    assert forced["segments_written"] == forced["segments_built"] == 10
    damped = OSCConfig(damping_ratio=3.0)
    other = relabel_bags([collected], RelabelConfig(controller=damped), workers=1, progress=False).account
    bag = other["per_bag"][str(collected)]
    assert bag["recorded_controller"] == "different" and other["warnings"] == []
    assert bag["residual_n_m"]["p95"] > 1.0                       # the two controllers differ by newton metres
    assert other["segments_written"] == other["segments_built"] == 14
    assert not any(r.startswith("residual") for r in other["segments_dropped"])


def test_torques_no_controller_computed_make_the_recording_controller_unknown(tmp_path):
    """A flat policy's torques (or a mix with such episodes) come from no controller: relabeled for
    the configured one, their residual warns of nothing."""
    bag = tmp_path / "flat"
    collect_bag(bag, "reach", "flat", episodes=1, seed=3, horizon=35, k=5, progress=False)
    run = relabel_bags([bag], RelabelConfig(k=5), workers=1, progress=False).account
    assert run["per_bag"][str(bag)]["recorded_controller"] == "unknown" and run["warnings"] == []
    assert run["residual_n_m"]["p95"] > 1.0


def test_cli_refuses_another_k_than_recorded_and_force_k_overrides(collected, tmp_path, capsys):
    line = re.escape(f"{collected}: recorded with k = 5, relabeling asked for k = 7; use --k 5, or --force-k to "
                     "relabel with k = 7 anyway")
    with pytest.raises(SystemExit, match="^ohio relabel: " + line + "$"):
        main(["relabel", str(collected), "--k", "7", "--workers", "1", "--out", str(tmp_path / "ds")])
    with pytest.raises(SystemExit, match="^ohio pipeline: " + line + "$"):
        main(["pipeline", str(collected), "--k", "7", "--workers", "1", "--algo", "bc", "--steps", "2",
              "--out", str(tmp_path / "model")])
    assert not list(tmp_path.iterdir())
    assert main(["relabel", str(collected), "--k", "7", "--force-k", "--max-residual", "1e6", "--workers", "1",
                 "--out", str(tmp_path / "ds"), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["k"] == 7 and summary["segments_written"] == 10
    _, meta = load_dataset(tmp_path / "ds")
    assert meta["k"] == 7 and " --k 7 " in meta["command"] and "--force-k" in meta["command"]
    assert meta["account"]["per_bag"][str(collected)]["k_recorded"] == 5
    assert np.median(meta["residual_n_m"]) > 1.0


def test_a_recorded_k_that_is_not_a_positive_integer_is_a_bad_bag(tmp_path, logs):
    write_bag(tmp_path / "bad_k", logs, custom_data={"ohio.collect": json.dumps({"task": "reach", "k": "five"})})
    with pytest.raises(BagError, match=r"bad_k: the metadata's ohio.collect records k = 'five', not a positive"):
        relabel_bag(tmp_path / "bad_k", RelabelConfig())
    run = relabel_bags([tmp_path / "bad_k"], RelabelConfig(), workers=1, skip_bad=True, progress=False)
    assert "records k = 'five'" in run.skipped[str(tmp_path / "bad_k")]

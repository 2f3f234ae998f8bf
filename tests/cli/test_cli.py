"""The ``ohio`` command: every subcommand runs, and ``--json`` ends with one JSON object."""

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import imageio_ffmpeg
import pytest

from ohio_core.cli.main import main
from ohio_core.video import FRAME_SIZE


def last_json(text: str) -> dict:
    return json.loads(text.strip().splitlines()[-1])


def test_bench_controllers_json(capsys):
    assert main(["bench", "controllers", "--states", "50", "--sim-seconds", "1", "--json"]) == 0
    out = last_json(capsys.readouterr().out)
    for key in ("osc_step_us_median", "osc_step_us_p99", "qp_step_us_median", "qp_step_us_p99",
                "sim_realtime_factor"):
        assert out[key] > 0, key
    assert out["states"] == 50 and out["qp_fallbacks"] == 0     # the QP solved every visited state


def test_demo_runs_the_main_job_end_to_end(tmp_path, capsys):
    argv = ["demo", "--out", str(tmp_path), "--goals", "1", "--episodes", "3", "--steps", "20",
            "--eval-episodes", "2", "--workers", "1", "--json"]
    assert main(argv) == 0
    out = last_json(capsys.readouterr().out)
    assert set(out) == {"task", "configs"} and out["task"] == "lift"             # the manipulation headline
    assert set(out["configs"]) == {"kp_ori50_wide"}
    assert set(out["configs"]["kp_ori50_wide"]) == {"ohio_analytical", "standard", "flat"}
    for m in out["configs"]["kp_ori50_wide"].values():
        assert set(m) == {"mean", "se", "success_rate"} and 0.0 <= m["success_rate"] <= 1.0
    for f in ("controllers/tracking.png", "mismatch/scores.png", "training.png", "summary.json", "rollouts.mp4"):
        assert (tmp_path / f).stat().st_size > 0, f
    frames = imageio_ffmpeg.read_frames(str(tmp_path / "rollouts.mp4"))
    assert next(frames)["size"] == (2 * FRAME_SIZE[0], FRAME_SIZE[1])             # OHIO and standard side by side
    assert sum(1 for _ in frames) == 1 + 500 // 5                                  # a frame per goal, full episodes
    assert len(list((tmp_path / "mismatch" / "bags").iterdir())) == 3          # collect -> bags -> relabel
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["configs"] == out["configs"]
    assert summary["tracking"]["osc"]["max_torque_ratio"] <= 1.0


def test_collect_relabel_train_eval_chain(tmp_path, capsys):
    bag, ds, model = tmp_path / "bag", tmp_path / "ds" / "reach", tmp_path / "m" / "reach"
    assert main(["collect", "--task", "reach", "--policy", "expert", "--episodes", "1", "--horizon", "40",
                 "--out", str(bag)]) == 0
    assert main(["relabel", str(bag), "--method", "analytical", "--out", str(ds)]) == 0
    assert main(["train", str(ds), "--algo", "bc", "--steps", "20", "--out", str(model), "--json"]) == 0
    trained = last_json(capsys.readouterr().out)
    assert 0 < trained["transitions"] <= 8 and trained["train"]["algo"] == "bc"     # 8 high-level steps
    assert main(["eval", str(model), "--episodes", "2", "--horizon", "20", "--seed", "4", "--json"]) == 0
    first = last_json(capsys.readouterr().out)
    assert first["episodes"] == 2 and first["task"] == "reach" and set(first["reference"]) >= {"random_return"}
    assert main(["eval", str(model), "--episodes", "2", "--horizon", "20", "--seed", "4", "--json"]) == 0
    assert last_json(capsys.readouterr().out)["returns"] == first["returns"]      # reproducible
    with pytest.raises(SystemExit, match="task"):
        main(["eval", str(model), "--task", "lift", "--episodes", "1"])
    damping3 = "config/controllers/osc_damping3.yaml"
    with pytest.raises(SystemExit, match="damping_ratio"):
        main(["eval", str(model), "--controller", damping3, "--episodes", "1"])
    assert main(["eval", str(model), "--controller", damping3, "--allow-controller-change", "--episodes", "1",
                 "--horizon", "10"]) == 0


def test_train_refuses_a_missing_dataset(tmp_path):
    with pytest.raises(SystemExit, match="not found"):
        main(["train", str(tmp_path / "nothing"), "--out", str(tmp_path / "m")])


def test_experiment_mismatch_json(tmp_path, capsys):
    out_json = tmp_path / "result" / "mismatch.json"
    argv = ["experiment", "mismatch", "--task", "reach", "--episodes", "3", "--steps", "10", "--eval-episodes", "2",
            "--configs", "kp_ori50", "qp", "--workers", "1", "--out", str(tmp_path / "run"), "--json", str(out_json)]
    assert main(argv) == 0
    out = last_json(capsys.readouterr().out)
    assert out == json.loads(out_json.read_text())
    assert out["task"] == "reach" and set(out["configs"]) == {"kp_ori50", "qp"}
    for per in out["configs"].values():
        assert set(per) == {"ohio_analytical", "ohio_numerical", "standard", "flat", "naive"}
    assert out["configs"]["kp_ori50"]["flat"] == out["configs"]["qp"]["flat"]      # no controller in the loop
    result = json.loads((tmp_path / "run" / "result.json").read_text())
    assert result["inverse"]["qp"]["ohio_analytical"] == "qp"
    assert (tmp_path / "run" / "scores.png").stat().st_size > 0


def test_bench_routing_json(capsys):
    """Every flow is accounted for: the LP's own flows are certified optimal, the greedy dispatcher's
    that are not get one residual LP each."""
    assert main(["bench", "routing", "--regions", "5", "12", "--episodes", "1", "--repeats", "1", "--json"]) == 0
    out = last_json(capsys.readouterr().out)
    rows = {(r["regions"], r["behavior"]): r for r in out["rows"]}
    assert set(rows) == {(n, b) for n in (5, 12) for b in ("greedy_dispatcher", "demand_proportional")}
    for r in rows.values():
        assert r["transitions"] == 60 and sum(r["statuses"].values()) == 60
        assert r["residual_lp_solves"] == r["not_lp_optimal"] == r["negative_cycles"]
        assert 0 < r["closed_form_s"] and 0 < r["certificate_s"] and 0 < r["inverse_s"]
    assert rows[(12, "demand_proportional")]["level"] == "goal" and rows[(12, "demand_proportional")]["not_lp_optimal"] == 0
    greedy = rows[(12, "greedy_dispatcher")]
    assert greedy["level"] == "flows" and greedy["not_lp_optimal"] > 0 and greedy["residual_lp_ms_per_solve"] > 0
    # the transport formulation's flows are optimal for the full LP: the certificate passes them all
    assert main(["bench", "routing", "--regions", "12", "--behaviors", "demand_proportional", "--episodes", "1",
                 "--repeats", "1", "--formulation", "transport", "--json"]) == 0
    (row,) = last_json(capsys.readouterr().out)["rows"]
    assert row["formulation"] == "transport" and row["not_lp_optimal"] == 0 and row["statuses"]["ok"] > 0
    with pytest.raises(SystemExit, match="unknown behavior nonsense"):
        main(["bench", "routing", "--regions", "5", "--behaviors", "nonsense"])
    with pytest.raises(SystemExit, match="--regions must be >= 2"):
        main(["bench", "routing", "--regions", "1"])


def test_bad_arguments_exit_with_a_message():
    r = subprocess.run([sys.executable, "-m", "ohio_core.cli.main", "bench", "controllers", "--states", "0"],
                       capture_output=True, text=True)
    assert r.returncode != 0 and "--states" in r.stderr
    r = subprocess.run([sys.executable, "-m", "ohio_core.cli.main", "nonsense"], capture_output=True, text=True)
    assert r.returncode == 2 and "invalid choice" in r.stderr


def test_bench_inverse_json(tmp_path, capsys):
    argv = ["bench", "inverse", "--segments", "40", "--cem-segments", "4", "--qp-segments", "10", "--workers", "1",
            "--state-matching-segments", "6", "--cache", str(tmp_path), "--json"]
    assert main(argv) == 0
    out = last_json(capsys.readouterr().out)
    assert set(out["methods"]) == {"analytical", "numerical", "cem", "qp", "state_matching"}
    for name, m in out["methods"].items():
        assert m["segments_per_s"] > 0 and 0.0 <= m["recovery_rate"] <= 1.0, name
    assert out["methods"]["numerical"]["recovery_rate"] >= 0.9
    assert len(list(tmp_path.glob("segments_*.npz"))) == 2          # simulated once, cached
    assert main(argv) == 0


@pytest.mark.parametrize("argv", [["--help"], ["bench", "--help"], ["demo", "--help"], ["collect", "--help"],
                                  ["relabel", "--help"], ["train", "--help"], ["eval", "--help"],
                                  ["experiment", "mismatch", "--help"]])
def test_help(argv, capsys):
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 0
    assert "usage: ohio" in capsys.readouterr().out


def test_a_failed_command_ends_with_one_json_error(tmp_path, capsys):
    """``--json``: a refused input, a refused value and a refused command line each end stdout with
    ``{"error": LINE}``, LINE being what stderr says."""
    missing = tmp_path / "nothing"
    with pytest.raises(SystemExit, match="not found") as exc:
        main(["train", str(missing), "--out", str(tmp_path / "m"), "--json"])
    assert last_json(capsys.readouterr().out) == {"error": exc.value.code}
    assert exc.value.code == f"ohio train: dataset not found: {missing}.h5"
    with pytest.raises(SystemExit) as exc:
        main(["experiment", "mismatch", "--task", "reach", "--episodes", "0", "--json"])
    assert last_json(capsys.readouterr().out) == {"error": exc.value.code}
    assert exc.value.code.startswith("ohio experiment mismatch: ")
    with pytest.raises(SystemExit) as exc:
        main(["bench", "controllers", "--states", "many", "--json"])
    assert exc.value.code == 2
    captured = capsys.readouterr()
    line = "ohio bench controllers: error: argument --states: invalid int value: 'many'"
    assert last_json(captured.out) == {"error": line} and captured.err.splitlines()[-1] == line
    with pytest.raises(SystemExit) as exc:   # without --json nothing goes to stdout
        main(["bench", "controllers", "--states", "many"])
    assert exc.value.code == 2 and capsys.readouterr().out == ""


@pytest.mark.parametrize(("sig", "status", "message"), [(signal.SIGINT, 130, "interrupted"),
                                                        (signal.SIGTERM, 143, "terminated")],
                         ids=["SIGINT", "SIGTERM"])
def test_sigterm_stops_a_command_as_sigint_does(tmp_path, sig, status, message):
    err = tmp_path / "stderr.txt"
    with open(err, "wb") as stderr:
        proc = subprocess.Popen([str(Path(sys.executable).parent / "ohio"), "collect", "--task", "reach", "--policy",
                                 "expert", "--episodes", "100000", "--out", str(tmp_path / "bag"), "--json"],
                                stdout=subprocess.PIPE, stderr=stderr, text=True)
    try:
        while b" 2/100000 " not in err.read_bytes():   # running episodes, past start-up
            assert proc.poll() is None, err.read_text()[-3000:]
            time.sleep(0.05)
        proc.send_signal(sig)
        out, _ = proc.communicate(timeout=120)
    finally:
        proc.kill()
    text = err.read_text()
    assert proc.returncode == status, text[-3000:]
    assert "Traceback" not in text and text.rstrip().endswith(message), text[-3000:]
    assert last_json(out) == {"error": message}

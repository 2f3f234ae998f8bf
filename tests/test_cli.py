"""The ``ohio`` command: every subcommand runs, and ``--json`` ends with one JSON object."""

import json
import subprocess
import sys

import pytest

from ohio_core.cli.main import main


def last_json(text: str) -> dict:
    return json.loads(text.strip().splitlines()[-1])


def test_bench_controllers_json(capsys):
    assert main(["bench", "controllers", "--states", "50", "--sim-seconds", "1", "--json"]) == 0
    out = last_json(capsys.readouterr().out)
    for key in ("osc_step_us_median", "osc_step_us_p99", "qp_step_us_median", "qp_step_us_p99",
                "sim_realtime_factor"):
        assert out[key] > 0, key
    assert out["osc_step_us_p99"] >= out["osc_step_us_median"]


def test_demo_writes_plots_and_summary(tmp_path, capsys):
    assert main(["demo", "--out", str(tmp_path), "--goals", "1", "--episodes", "1", "--json"]) == 0
    out = last_json(capsys.readouterr().out)
    assert (tmp_path / "tracking.png").stat().st_size > 0
    assert json.loads((tmp_path / "summary.json").read_text())["tracking"] == out["tracking"]
    for name in ("osc", "qp"):
        assert out["tracking"][name]["pos_err_mm_final_max"] < 10.0
        assert out["tracking"][name]["max_torque_ratio"] <= 1.0
    assert set(out["experts"]) == {"reach", "lift"}


def test_bad_arguments_exit_with_a_message():
    r = subprocess.run([sys.executable, "-m", "ohio_core.cli.main", "bench", "controllers", "--states", "0"],
                       capture_output=True, text=True)
    assert r.returncode != 0 and "--states" in r.stderr
    r = subprocess.run([sys.executable, "-m", "ohio_core.cli.main", "nonsense"], capture_output=True, text=True)
    assert r.returncode == 2 and "invalid choice" in r.stderr


def test_bench_inverse_json(tmp_path, capsys):
    argv = ["bench", "inverse", "--segments", "40", "--cem-segments", "4", "--qp-segments", "10", "--workers", "1",
            "--cache", str(tmp_path), "--json"]
    assert main(argv) == 0
    out = last_json(capsys.readouterr().out)
    assert set(out["methods"]) == {"analytical", "numerical", "cem", "qp"}
    for name, m in out["methods"].items():
        assert m["segments_per_s"] > 0 and 0.0 <= m["recovery_rate"] <= 1.0, name
    assert out["methods"]["numerical"]["recovery_rate"] >= 0.9
    assert len(list(tmp_path.glob("segments_*.npz"))) == 2          # simulated once, cached
    assert main(argv) == 0


@pytest.mark.parametrize("argv", [["--help"], ["bench", "--help"], ["demo", "--help"], ["collect", "--help"],
                                  ["relabel", "--help"]])
def test_help(argv, capsys):
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 0
    assert "usage: ohio" in capsys.readouterr().out

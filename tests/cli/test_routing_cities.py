"""``ohio experiment routing``, ``ohio bench routing`` and ``ohio finetune`` on cities of scenario files
(``tests/support/routing_cities.py``: a 5-region town with travel times that break the triangle
inequality, a morning peak and 1,500 vehicles; a metric 6-region grid), with tiny settings."""

import contextlib
import hashlib
import io
import json
import re
import subprocess
import sys

import numpy as np
import pytest
import routing_cities

from ohio_core.cli.main import main

TINY = ["--behaviors", "greedy_dispatcher", "--episodes", "1", "--algo", "iql", "--steps", "3",
        "--eval-episodes", "2"]


def last_json(text: str) -> dict:
    return json.loads(text.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    root = tmp_path_factory.mktemp("cities")
    return {"town": routing_cities.peak_town(root / "peak_town.json"),
            "grid": routing_cities.grid_six(root / "grid_six.json")}


@pytest.fixture(scope="module")
def run(files, tmp_path_factory):
    """The experiment on both cities, demand x3, 800 vehicles, actions min-max scaled (the flat policy's
    flows hold dimensions the data never vary): (out folder, --json summary)."""
    out = tmp_path_factory.mktemp("exp")
    argv = ["experiment", "routing", "--scenario", str(files["town"]), str(files["grid"]), "--demand-scale", "3",
            "--vehicles", "800", "--action-scaling", "minmax", *TINY, "--out", str(out), "--json"]
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        assert main(argv) == 0
    return out, last_json(printed.getvalue())


def test_experiment_runs_the_comparison_on_each_city(run, files):
    out, summary = run
    assert set(summary["cities"]) == {"peak_town", "grid_six"}
    for name, regions, key in (("peak_town", 5, "town"), ("grid_six", 6, "grid")):
        city = summary["cities"][name]
        assert city["scenario"] == {"name": name, "regions": regions, "vehicles": 800,
                                    "horizon": routing_cities.STEPS, "demand_scale": 3.0,
                                    "file": str(files[key].resolve()),
                                    "sha256": hashlib.sha256(files[key].read_bytes()).hexdigest()}
        assert set(city["datasets"]) == {"greedy_dispatcher"}                 # one behavior: nothing to pool
        assert set(city["datasets"]["greedy_dispatcher"]) == {"ohio", "flat", "greedy_dispatcher"}
        result = json.loads((out / name / "result.json").read_text())
        assert result["scenario"] == city["scenario"] and result["config"]["lp_formulation"] == "edges"
        assert result["config"]["scenario"] == str(files[key]) and result["config"]["vehicles"] == 800
        ops = result["references"]["operations"]["greedy_dispatcher"]
        assert ops["served_share"] > 0.9                                       # a large fleet serves nearly all
        models = sorted((out / name / "models").glob("*.json"))
        assert [m.stem for m in models] == ["greedy_dispatcher_flat", "greedy_dispatcher_ohio"]
        assert result["config"]["action_scaling"] == "minmax"
        for model in models:
            sidecar = json.loads(model.read_text())
            assert sidecar["scenario"] == city["scenario"] and sidecar["train"]["action_scaling"] == "minmax"
        for scores in city["datasets"]["greedy_dispatcher"].values():
            assert np.isfinite(scores["mean"])
        assert (out / name / "scores.png").is_file()


def test_finetune_runs_in_the_recorded_city_and_refuses_a_file_that_is_gone(run, files, tmp_path, capsys):
    out, _ = run
    model = out / "peak_town" / "models" / "greedy_dispatcher_ohio"
    argv = ["finetune", str(model), "--task", "routing", "--steps", "2", "--eval-every", "2", "--eval-episodes", "1",
            "--out", str(tmp_path / "ft")]
    assert main(argv) == 0
    result = json.loads((tmp_path / "ft" / "result.json").read_text())
    assert result["meta"]["city"] == {"name": "peak_town", "regions": 5, "vehicles": 800,
                                      "horizon": routing_cities.STEPS}
    assert json.loads((tmp_path / "ft" / "model.json").read_text())["scenario"]["file"] == str(files["town"].resolve())
    moved = files["town"].with_name("moved.json")
    files["town"].rename(moved)
    try:
        with pytest.raises(SystemExit, match=r"^ohio finetune: the city in the sidecar: scenario file not found: "
                                             r".*peak_town.json$"):
            main(argv)
    finally:
        moved.rename(files["town"])


def test_bench_times_the_lp_and_the_inverse_on_a_city(files, capsys):
    argv = ["bench", "routing", "--scenario", str(files["town"]), "--demand-scale", "2", "--vehicles", "600",
            "--behaviors", "demand_proportional", "greedy_dispatcher", "--episodes", "1", "--repeats", "1"]
    assert main([*argv, "--json"]) == 0
    printed = capsys.readouterr().out
    rows = {r["behavior"]: r for r in last_json(printed)["rows"]}
    assert f"--scenario {files['town']} --demand-scale 2 --vehicles 600" in printed     # the command to rerun it
    for r in rows.values():
        assert (r["scenario"], r["regions"], r["vehicles"]) == ("peak_town", 5, 600)
        assert r["transitions"] == routing_cities.STEPS and r["inverse_s"] > 0
    assert rows["demand_proportional"]["not_lp_optimal"] == 0     # the edges LP's flows, certified on non-metric times
    assert rows["greedy_dispatcher"]["residual_lp_solves"] == rows["greedy_dispatcher"]["not_lp_optimal"]
    with pytest.raises(SystemExit, match=r"^ohio bench routing: .*peak_town.json: travel times break the triangle "
                                         r"inequality .*use 'edges'"):
        main([*argv, "--formulation", "transport"])
    with pytest.raises(SystemExit, match="drop --regions"):
        main([*argv, "--regions", "5"])


def test_experiment_refuses_transport_on_a_non_metric_city_before_running(files, tmp_path):
    with pytest.raises(SystemExit, match=r"^ohio experiment routing: .*peak_town.json: travel times break the "
                                         r"triangle inequality \(t\(1, 3\) = 15 > t\(1, 0\) \+ t\(0, 3\) = 4 steps\)"):
        main(["experiment", "routing", "--scenario", str(files["grid"]), str(files["town"]), "--lp-formulation",
              "transport", *TINY, "--out", str(tmp_path / "o")])
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("options, message", [
    (["--regions", "5"], "--regions build synthetic ones: drop them"),
    (["--scaling", "5"], "--scaling build synthetic ones"),
    (["--vehicles", "0"], "vehicles must be an integer >= 1"),
    (["--demand-scale", "-1"], "demand_scale must be a finite number > 0"),
])
def test_experiment_refuses_settings_that_do_not_fit_scenario_files(files, options, message):
    with pytest.raises(SystemExit, match=message):
        main(["experiment", "routing", "--scenario", str(files["town"]), *options])


def test_demand_scale_needs_scenario_files():
    with pytest.raises(SystemExit, match="--demand-scale scales the --scenario files' requests"):
        main(["experiment", "routing", "--demand-scale", "2"])
    with pytest.raises(SystemExit, match="--demand-scale and --vehicles set the --scenario files' cities"):
        main(["bench", "routing", "--demand-scale", "2"])


def damage(files, tmp_path, how: str):
    bad = tmp_path / "bad.json"
    if how == "missing":
        return bad, "scenario file not found: " + str(bad)
    text = files["town"].read_text()
    if how == "truncated":
        bad.write_text(text[: len(text) // 2])
        return bad, f"{bad}: invalid JSON"
    bad.write_text(text.replace('"origin": 2', '"from": 2', 1))
    return bad, f"{bad}: demand\\[\\d+\\]: missing key 'origin'"


@pytest.mark.parametrize("how", ["missing", "truncated", "wrong key"])
@pytest.mark.parametrize("command", ["experiment", "bench"])
def test_a_missing_or_damaged_scenario_file_ends_the_command_with_one_line(files, tmp_path, how, command):
    """Named with the problem, before any city runs (the good file first)."""
    bad, message = damage(files, tmp_path, how)
    argv = [command, "routing", "--scenario", str(files["town"]), str(bad)]
    with pytest.raises(SystemExit, match=f"^ohio {command} routing: {message}"):
        main(argv + (["--out", str(tmp_path / "o")] if command == "experiment" else []))
    assert not (tmp_path / "o").exists()


def test_the_line_is_all_a_damaged_file_prints(files, tmp_path):
    bad, _ = damage(files, tmp_path, "wrong key")
    r = subprocess.run([sys.executable, "-m", "ohio_core.cli.main", "experiment", "routing", "--scenario", str(bad),
                        "--json"], capture_output=True, text=True, timeout=120)
    assert r.returncode == 1 and "Traceback" not in r.stderr
    (line,) = r.stderr.strip().splitlines()
    assert re.fullmatch(rf"ohio experiment routing: {re.escape(str(bad))}: demand\[\d+\]: missing key 'origin'", line)
    assert last_json(r.stdout) == {"error": r.stderr.strip()}

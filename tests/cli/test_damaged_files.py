"""Damaged inputs end an ``ohio`` command with one line naming the file and the problem, a non-zero
exit and no traceback; with ``--json`` the last line of stdout is ``{"error": that line}``.

A real model and dataset are made with tiny settings, copied and damaged: truncated, a byte
flipped where the decoders accept it silently (most of a model's or a dataset's bytes are
numbers), or the sidecar truncated. Each is caught by the size and SHA-256 the sidecar records;
with a sidecar written before that was recorded (``legacy``), by the decoder's own error (pickle,
torch's zip reader, h5py), which is reported naming the file.
"""

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from ohio_core.cli.main import main
from ohio_core.learning.policy import load_policy
from ohio_core.pipeline.dataset import load_dataset
from ohio_core.pipeline.sidecar import CHECK_KEY, InputError

ROOT = Path(__file__).resolve().parents[2]
OHIO = Path(sys.executable).parent / "ohio"   # the console script of this venv


@pytest.fixture(scope="module")
def made(tmp_path_factory) -> dict[str, Path]:
    """{"model": base path of MODEL.d3/.json, "dataset": base path of DATASET.h5/.json}."""
    root = tmp_path_factory.mktemp("made")
    bag, ds, model = root / "bag", root / "ds", root / "model"
    assert main(["collect", "--task", "reach", "--policy", "expert", "--episodes", "1", "--horizon", "40",
                 "--out", str(bag)]) == 0
    assert main(["relabel", str(bag), "--method", "analytical", "--workers", "1", "--out", str(ds)]) == 0
    assert main(["train", str(ds), "--algo", "bc", "--steps", "5", "--out", str(model)]) == 0
    return {"model": model, "dataset": ds}


def truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size * 2 // 3])


def flip_middle(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))


def break_zip_directory(path: Path) -> None:
    """Clear the signature of the zip end record inside a .d3 (torch's part of the pickle)."""
    data = bytearray(path.read_bytes())
    at = data.rfind(b"PK\x05\x06")
    assert at > 0
    data[at:at + 4] = bytes(4)
    path.write_bytes(bytes(data))


SUFFIX = {"model": ".d3", "dataset": ".h5"}


def damaged_copy(made: dict, tmp_path: Path, kind: str, part: str, damage, legacy: bool) -> tuple[Path, Path]:
    """(base path of a copy of the pair ``made[kind]``, its file ``part`` ("data" or "sidecar") damaged);
    ``legacy``: the sidecar without ``CHECK_KEY``."""
    src, base = made[kind], tmp_path / kind
    for ext in (SUFFIX[kind], ".json"):
        shutil.copyfile(src.with_name(src.name + ext), base.with_name(base.name + ext))
    sidecar = base.with_name(base.name + ".json")
    if legacy:
        meta = json.loads(sidecar.read_text())
        del meta[CHECK_KEY]
        sidecar.write_text(json.dumps(meta))
    target = sidecar if part == "sidecar" else base.with_name(base.name + SUFFIX[kind])
    damage(target)
    return base, target


def run_ohio(*argv: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(OHIO), *argv], cwd=ROOT, capture_output=True, text=True, timeout=600)


def assert_one_line(r: subprocess.CompletedProcess, prog: str, path: Path, problem: str, as_json: bool) -> None:
    assert r.returncode == 1, r.stderr
    assert "Traceback" not in r.stderr, r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1, r.stderr
    assert lines[0].startswith(f"{prog}: {path}: "), lines[0]
    assert re.search(problem, lines[0]), lines[0]
    if as_json:
        assert json.loads(r.stdout.strip().splitlines()[-1]) == {"error": lines[0]}
    else:
        assert r.stdout.strip() == ""


EVAL = ("eval", "--episodes", "1", "--horizon", "5")
TRAIN = ("train", "--algo", "bc", "--steps", "5")

# (command, pair, part damaged, damage, legacy sidecar, pattern of the problem)
CASES = {
    "model-truncated": (EVAL, "model", "data", truncate, False,
                        r"damaged model: \d+ bytes where its sidecar model\.json records \d+ \(truncated"),
    "model-bit-flipped": (EVAL, "model", "data", flip_middle, False,
                          r"damaged model: its content differs from the SHA-256 its sidecar model\.json records"),
    "model-truncated-legacy": (EVAL, "model", "data", truncate, True,
                               r"damaged or unreadable model \(UnpicklingError: "),
    "model-zip-legacy": (EVAL, "model", "data", break_zip_directory, True,
                         r"damaged or unreadable model \(RuntimeError: PytorchStreamReader failed"),
    "dataset-truncated": (TRAIN, "dataset", "data", truncate, False,
                          r"damaged dataset: \d+ bytes where its sidecar dataset\.json records \d+"),
    "dataset-truncated-legacy": (TRAIN, "dataset", "data", truncate, True,
                                 r"damaged or unreadable dataset \(OSError: Unable to synchronously open file"),
    "model-sidecar-truncated": (EVAL, "model", "sidecar", truncate, False,
                                r"damaged model sidecar, not valid JSON \("),
}


@pytest.mark.parametrize("case", list(CASES))
def test_a_damaged_file_gives_one_line_naming_it(made, tmp_path, case):
    (command, *options), kind, part, damage, legacy, problem = CASES[case]
    base, target = damaged_copy(made, tmp_path, kind, part, damage, legacy)
    out = ["--out", str(tmp_path / "out")] if command == "train" else []
    r = run_ohio(command, str(base), *options, *out, "--json")
    assert_one_line(r, f"ohio {command}", target, problem, as_json=True)
    assert not list(tmp_path.glob("out*"))


def test_without_json_stdout_stays_empty(made, tmp_path):
    base, target = damaged_copy(made, tmp_path, "model", "data", flip_middle, False)
    assert_one_line(run_ohio(*EVAL[:1], str(base), *EVAL[1:]), "ohio eval", target, "SHA-256", as_json=False)


@pytest.mark.parametrize(("load", "kind", "part", "damage", "legacy", "problem"), [
    (load_policy, "model", "data", flip_middle, False, "its content differs from the SHA-256"),
    (load_dataset, "dataset", "data", flip_middle, False, "its content differs from the SHA-256"),
    (load_dataset, "dataset", "data", truncate, True, "(OSError: "),
    (load_dataset, "dataset", "sidecar", truncate, False, "damaged dataset sidecar, not valid JSON ("),
], ids=["model-bit-flipped", "dataset-bit-flipped", "dataset-truncated-legacy", "dataset-sidecar-truncated"])
def test_loaders_raise_an_input_error_naming_the_file(made, tmp_path, load, kind, part, damage, legacy, problem):
    base, target = damaged_copy(made, tmp_path, kind, part, damage, legacy)
    with pytest.raises(InputError) as exc:
        load(base)
    assert exc.value.path == target and problem in exc.value.problem and str(exc.value).startswith(f"{target}: ")


def test_the_intact_files_load(made):
    assert load_policy(made["model"]).action_dim == 6
    assert load_dataset(made["dataset"])[1]["transitions"] == 8

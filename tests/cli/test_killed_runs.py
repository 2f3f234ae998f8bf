"""A killed ``ohio relabel`` leaves no process behind; SIGTERM stops it the way Ctrl-C does; the
temporary files of a killed write are removed by the next write of the same name.

The relabel runs in a session of its own (``start_new_session``): its workers and the
multiprocessing resource tracker stay in that session after their parent dies, so the session's
processes are exactly what the run left behind. Waits poll with generous deadlines; nothing here
asserts how fast anything is.
"""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ohio_core.data.bags import write_bag
from ohio_core.data.collect import iter_episodes
from ohio_core.pipeline.sidecar import write_pair
from processes import kill_session, session_processes, wait_for_empty_session

ROOT = Path(__file__).resolve().parents[2]
OHIO = Path(sys.executable).parent / "ohio"   # the console script of this venv
BAGS = 12   # two workers take several bag-times to get through them after the first bag is done
DEADLINE_S = 300.0   # for the first bag (worker start-up on a slow, busy machine)
GONE_S = 30.0        # for the session to empty after the kill


@pytest.fixture(scope="module")
def bag_dir(tmp_path_factory) -> Path:
    logs = list(iter_episodes("reach", "expert", episodes=3, seed=11, horizon=50, k=5))
    root = tmp_path_factory.mktemp("bags")
    for i in range(BAGS):
        write_bag(root / f"b{i:02d}", logs, storage="mcap", custom_data={"ohio.collect": json.dumps({"task": "reach"})})
    return root


def relabel_running(bag_dir: Path, out: Path, err: Path) -> subprocess.Popen:
    """``ohio relabel`` with two workers, returned once the first bag is done (the workers run bags)."""
    with open(err, "wb") as stderr:
        proc = subprocess.Popen([str(OHIO), "relabel", str(bag_dir), "--method", "cem", "--workers", "2",
                                 "--out", str(out)], cwd=ROOT, stdout=subprocess.DEVNULL, stderr=stderr,
                                start_new_session=True)
    deadline = time.monotonic() + DEADLINE_S
    while f" 1/{BAGS} ".encode() not in err.read_bytes():
        if proc.poll() is not None or time.monotonic() > deadline:
            kill_session(proc.pid)
            pytest.fail(f"relabel ended or stalled before its first bag (rc {proc.poll()}):\n"
                        f"{err.read_text()[-3000:]}")
        time.sleep(0.05)
    return proc


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM], ids=["SIGKILL", "SIGTERM"])
def test_a_killed_relabel_leaves_no_process_behind(tmp_path, bag_dir, sig):
    err = tmp_path / "stderr.txt"
    proc = relabel_running(bag_dir, tmp_path / "ds", err)
    try:
        running = session_processes(proc.pid)
        workers = [pid for pid, cmd in running.items() if "multiprocessing.spawn" in cmd]
        assert len(workers) == 2, running
        os.kill(proc.pid, sig)
        proc.wait(timeout=120)
        left = wait_for_empty_session(proc.pid, GONE_S)
        assert not left, f"left running after {sig.name} of the relabel: {left}"
    finally:
        kill_session(proc.pid)
    if sig == signal.SIGTERM:   # stopped as on Ctrl-C: one line, the SIGTERM status, nothing written
        text = err.read_text()
        assert proc.returncode == 143, text[-3000:]
        assert "Traceback" not in text and text.rstrip().endswith("terminated"), text[-3000:]
        assert not list(tmp_path.glob("ds*")) and not list(tmp_path.glob(".ds*"))
    else:
        assert proc.returncode == -signal.SIGKILL


def test_the_next_write_removes_the_temporary_files_a_killed_write_left(tmp_path):
    """Only ``.NAME.tmpPID`` of the names written, and only where process PID is gone."""
    code = ("import os, sys; from pathlib import Path; from ohio_core.pipeline.sidecar import write_pair\n"
            "def half(tmp):\n    tmp.write_bytes(b'x' * 1000); os._exit(9)\n"
            "out = Path(sys.argv[1]); write_pair(out.with_suffix('.h5'), out.with_suffix('.json'), half, {})\n")
    killed = subprocess.Popen([sys.executable, "-c", code, str(tmp_path / "ds")], cwd=ROOT)
    assert killed.wait(timeout=120) == 9
    dead = killed.pid
    stale = [tmp_path / f".ds.h5.tmp{dead}", tmp_path / f".ds.json.tmp{dead}"]
    stale[1].write_text("{")   # as if killed between the two temporary files' renames
    assert stale[0].read_bytes() == b"x" * 1000
    live = subprocess.Popen([sys.executable, "-c", "import sys; sys.stdin.read()"], stdin=subprocess.PIPE)
    try:
        kept = [tmp_path / f".ds.h5.tmp{live.pid}",     # a write still running
                tmp_path / f".other.h5.tmp{dead}",       # another name
                tmp_path / ".ds.h5.tmpx1", tmp_path / f".ds.h5x.tmp{dead}"]
        for p in kept:
            p.write_bytes(b"y")
        write_pair(tmp_path / "ds.h5", tmp_path / "ds.json", lambda tmp: tmp.write_bytes(b"data"), {"format": "t"})
        assert [p for p in stale if p.exists()] == []
        assert [p for p in kept if not p.exists()] == []
        assert (tmp_path / "ds.h5").read_bytes() == b"data" and json.loads((tmp_path / "ds.json").read_text())["format"] == "t"
    finally:
        live.communicate(b"", timeout=60)

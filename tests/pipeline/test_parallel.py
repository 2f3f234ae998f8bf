"""ohio_core.pipeline.parallel: inline, a local process pool and a Ray cluster give the same outcomes.

The functions mapped are stdlib ones (``json.loads``, ``math.factorial``, ``operator.call``,
``os._exit``, ``time.sleep``): spawned workers and Ray workers import them by name, which a
function defined here would not allow. The Ray tests start a head node of their own, bound to the loopback
interface, and stop it afterwards.
"""

import json
import math
import multiprocessing
import operator
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import pytest

from ohio_core.pipeline.parallel import Outcome, ParallelError, map_items
from processes import kill_session, session_processes

ROOT = Path(__file__).resolve().parents[2]
RAY = Path(sys.executable).parent / "ray"   # the CLI of the ray package in this venv

TEXTS = ["1", "[2, 3]", "{bad", '"x"', "null", '{"a": 4}']
BAD = 2   # index of the text json.loads rejects


def run(fn, items, **kw) -> list[Outcome]:
    """All outcomes, sorted by index; each item exactly once."""
    outcomes = sorted(map_items(fn, items, progress=False, **kw), key=lambda o: o.index)
    assert [o.index for o in outcomes] == list(range(len(items)))
    assert [o.item for o in outcomes] == list(items)
    return outcomes


def check_json(outcomes: list[Outcome]) -> None:
    for o in outcomes:
        if o.index == BAD:
            assert o.value is None
            assert o.error is not None and o.error.startswith("JSONDecodeError: Expecting property name")
            assert o.error_type == "JSONDecodeError" and o.message.startswith("Expecting property name")
        else:
            assert o.error_type is None and o.message is None
            assert o.error is None, o.error
            assert o.value == json.loads(o.item)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# --- local ------------------------------------------------------------------------------


def test_inline_and_pool_agree():
    inline = run(json.loads, TEXTS, workers=1)
    pool = run(json.loads, TEXTS, workers=2)
    check_json(inline)
    check_json(pool)
    assert [(o.value, o.error) for o in pool] == [(o.value, o.error) for o in inline]


def test_pool_more_items_than_in_flight():
    items = [*range(12), -1, 20]   # 14 items, at most 4 in flight with 2 workers
    outcomes = run(math.factorial, items, workers=2)
    assert [o.value for o in outcomes] == [math.factorial(n) if n >= 0 else None for n in items]
    assert [o.error is not None for o in outcomes] == [n < 0 for n in items]
    assert outcomes[12].error.startswith("ValueError: ")


def test_default_workers_and_one_item():
    assert [o.value for o in run(math.factorial, [5, 3, 4])] == [120, 6, 24]
    assert [o.value for o in run(math.factorial, [6], workers=8)] == [720]
    assert run(math.factorial, []) == []
    with pytest.raises(ValueError, match="workers"):
        list(map_items(math.factorial, [1], workers=0))


def test_where_items_run():
    here = os.getpid()
    assert [o.value for o in run(operator.call, [os.getpid] * 2, workers=1)] == [here] * 2
    assert [o.value for o in run(operator.call, [os.getpid], workers=4)] == [here]   # one item: inline
    pids = {o.value for o in run(operator.call, [os.getpid] * 4, workers=2)}
    assert here not in pids and 1 <= len(pids) <= 2


def test_dead_worker_fails_its_items_and_a_new_pool_takes_the_rest():
    # os._exit kills the worker process: every item fails, none is lost, the call returns
    outcomes = run(os._exit, [3] * 6, workers=2)
    assert all(o.value is None and o.error.startswith("BrokenProcessPool: ") for o in outcomes)
    assert all(o.error_type == "BrokenProcessPool" for o in outcomes)


def test_interrupt_stops_the_pool():
    main = threading.main_thread().ident
    timer = threading.Timer(1.5, signal.pthread_kill, (main, signal.SIGINT))
    timer.start()
    try:
        with pytest.raises(KeyboardInterrupt):
            list(map_items(time.sleep, [60] * 4, workers=2, progress=False))
    finally:
        timer.cancel()
    for _ in range(100):   # terminated workers are gone at once; a running sleep would last 60 s
        if not multiprocessing.active_children():
            break
        time.sleep(0.1)
    assert not multiprocessing.active_children()


def test_workers_die_with_a_killed_parent():
    """SIGKILL of the process running map_items (no clean-up runs there): its workers, and with them
    the multiprocessing resource tracker, go too. It runs in a session of its own, which they stay
    in after their parent is gone."""
    code = ("import sys, time; from ohio_core.pipeline.parallel import map_items\n"
            "for o in map_items(time.sleep, [0, 600, 600, 600], workers=2, progress=False):\n"
            "    print('done', o.index, flush=True)\n")
    proc = subprocess.Popen([sys.executable, "-c", code], cwd=ROOT, stdout=subprocess.PIPE, text=True,
                            start_new_session=True)
    try:
        assert proc.stdout.readline() == "done 0\n"   # a worker started and took the next item: a 600 s sleep
        workers = [pid for pid in session_processes(proc.pid)
                   if b"multiprocessing.spawn" in Path(f"/proc/{pid}/cmdline").read_bytes()]
        assert len(workers) == 2
        proc.kill()
        proc.wait(timeout=60)
        deadline = time.monotonic() + 30
        while (left := session_processes(proc.pid)) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert left == {}
    finally:
        kill_session(proc.pid, timeout_s=5)


def test_importing_does_not_import_ray():
    code = "import sys, ohio_core.pipeline.parallel; print('ray' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False"


# --- Ray --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def ray_head():
    """Address of a Ray head (2 CPUs) started for these tests, on 127.0.0.1 only.

    ``ray start`` runs in a session of its own, which all the head's processes (and its workers)
    stay in; teardown kills that session. ``ray stop`` would also stop any other Ray instance of
    the machine (it has no option to pick one)."""
    import ray   # a missing ray fails here: the Ray path is part of the stack
    from ray._private import ray_constants

    temp_dir = tempfile.mkdtemp(prefix="ray", dir="/tmp")   # socket paths must stay < 107 chars
    # Ray replaces a loopback node address by the machine's outward one unless this variable is 0
    # (despite its name, on Linux too). The head's processes inherit it; the driver (this process)
    # reads it when ray is imported, hence the constant as well.
    env = dict(os.environ, RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER="0", RAY_USAGE_STATS_ENABLED="0")
    port = free_port()
    start = [str(RAY), "start", "--head", "--node-ip-address=127.0.0.1", f"--port={port}", "--num-cpus=2",
             "--include-dashboard=false", f"--temp-dir={temp_dir}", "--disable-usage-stats"]
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
        mp.setenv("RAY_USAGE_STATS_ENABLED", "0")
        mp.setattr(ray_constants, "ENABLE_RAY_CLUSTER", False)
        proc = subprocess.Popen(start, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                start_new_session=True)
        try:
            out, _ = proc.communicate(timeout=120)
            assert proc.returncode == 0, f"ray start failed:\n{out[-4000:]}"
            yield f"127.0.0.1:{port}"
        finally:
            if ray.is_initialized():
                ray.shutdown()
            kill_session(proc.pid)   # the session's id is its leader's pid
            shutil.rmtree(temp_dir, ignore_errors=True)


def test_ray_outcomes_match_inline(ray_head):
    import ray

    outcomes = run(json.loads, TEXTS, ray_address=ray_head)
    check_json(outcomes)
    assert [(o.value, o.error) for o in outcomes] == [(o.value, o.error) for o in run(json.loads, TEXTS, workers=1)]
    assert not ray.is_initialized()   # this call connected, so it disconnected too

    # connected by the caller: used as it is and left connected
    ray.init(address=ray_head, log_to_driver=False, configure_logging=False)
    try:
        items = [*range(7), -2]   # more items than 2 x 2 CPUs in flight
        outcomes = run(math.factorial, items, ray_address=ray_head)
        assert [o.value for o in outcomes] == [math.factorial(n) for n in range(7)] + [None]
        assert outcomes[-1].error.startswith("ValueError: ")
        pids = {o.value for o in run(operator.call, [os.getpid] * 3, ray_address=ray_head)}
        assert os.getpid() not in pids   # ran in Ray workers
        assert ray.is_initialized()
    finally:
        ray.shutdown()


def test_ray_unreachable_address():
    address = f"127.0.0.1:{free_port()}"   # nothing listens there
    with pytest.raises(ParallelError, match=f"cannot connect to Ray at {address}: ConnectionRefusedError"):
        list(map_items(json.loads, TEXTS, ray_address=address, progress=False))


def test_relabel_on_ray_equals_the_local_run(ray_head, tmp_path, capsys):
    """``ohio relabel --ray ADDRESS``: the same per-bag jobs on the cluster, the same dataset."""
    import numpy as np

    from ohio_core.cli.main import main
    from ohio_core.pipeline.bag_relabel import RelabelConfig, relabel_bags
    from ohio_core.pipeline.dataset import load_dataset

    bags = [ROOT / "tests/golden/bags" / name for name in ("clean_mcap", "clean_sqlite3", "split_mcap")]
    local = relabel_bags(bags, RelabelConfig(), workers=1, progress=False)
    remote = relabel_bags(bags, RelabelConfig(), ray_address=ray_head, progress=False)
    for name in ("observations", "actions", "rewards", "timeouts", "episode"):
        np.testing.assert_array_equal(getattr(remote.data, name), getattr(local.data, name), err_msg=name)
    assert remote.account["messages"] == local.account["messages"] and remote.account["segments_written"] == 24
    out = tmp_path / "ds"
    assert main(["relabel", *map(str, bags), "--ray", ray_head, "--out", str(out), "--json"]) == 0
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["segments_written"] == 24
    _, meta = load_dataset(out)
    assert meta["transitions"] == 24

"""Runs side by side never share a ROS domain: each holds its domain ID with a lock until it exits,
in Python (``ohio_core.ros_env``) and in ``run.sh`` (the same lock files)."""

import fcntl
import os
import subprocess
import sys
from pathlib import Path

import pytest

from ohio_core.ros_env import DOMAINS, claim_domain, local_ros_env, lock_path

ROOT = Path(__file__).resolve().parents[1]
HOLDER = ("import sys; from ohio_core.ros_env import claim_domain\n"
          "print(claim_domain(sys.argv[1], int(sys.argv[2])), flush=True); sys.stdin.read()\n")


def hold(lock_dir: Path, start: int) -> tuple[subprocess.Popen, int]:
    """A process that claims a domain from ``start`` and holds it until its stdin closes."""
    proc = subprocess.Popen([sys.executable, "-c", HOLDER, str(lock_dir), str(start)], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True)
    return proc, int(proc.stdout.readline())


def release(proc: subprocess.Popen) -> None:
    proc.stdin.close()
    assert proc.wait(timeout=30) == 0


def test_processes_side_by_side_get_different_domains_and_a_freed_one_is_taken_again(tmp_path):
    a, da = hold(tmp_path, 0)
    b, db = hold(tmp_path, 0)
    try:
        assert (da, db) == (DOMAINS[0], DOMAINS[1])
        assert lock_path(da, tmp_path).is_file()
    finally:
        release(a)
    c, dc = hold(tmp_path, 0)
    try:
        assert dc == DOMAINS[0]
    finally:
        release(b)
        release(c)


def test_run_sh_takes_the_same_locks(tmp_path):
    """run.sh's claim skips domains locked the way ``claim_domain`` locks them, and the other way round."""
    script = (f"source <(sed -n '/^claim_ros_domain()/,/^}}/p' {ROOT / 'run.sh'}); "
              "claim_ros_domain; echo $ROS_DOMAIN_ID")
    env = dict(os.environ, TMPDIR=str(tmp_path))
    locks = []
    for d in DOMAINS[:-1]:                                   # every domain but the last held here
        f = open(lock_path(d, tmp_path), "a")
        fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        locks.append(f)
    try:
        out = subprocess.run(["bash", "-c", script], env=env, capture_output=True, text=True, check=True)
        assert int(out.stdout) == DOMAINS[-1]
        proc = subprocess.Popen(["bash", "-c", script + "; cat >/dev/null"], env=env, stdin=subprocess.PIPE,
                                stdout=subprocess.PIPE, text=True)
        assert int(proc.stdout.readline()) == DOMAINS[-1]    # run.sh holds the last one while it runs
        try:
            got = subprocess.run([sys.executable, "-c", "from ohio_core.ros_env import claim_domain; "
                                  f"claim_domain({str(tmp_path)!r})"], capture_output=True, text=True)
            assert got.returncode != 0 and "every ROS domain ID 10..99 is held by another run" in got.stderr
        finally:
            release(proc)
    finally:
        for f in locks:
            f.close()


def test_a_chosen_domain_is_kept_and_discovery_stays_local():
    env = local_ros_env({"ROS_DOMAIN_ID": "42"})
    assert env == {"ROS_DOMAIN_ID": "42", "ROS_AUTOMATIC_DISCOVERY_RANGE": "LOCALHOST"}


def test_one_process_claims_one_domain(tmp_path):
    assert claim_domain(tmp_path, 5) == claim_domain(tmp_path, 70) == DOMAINS[5]


@pytest.mark.parametrize("unset", ["del", ""])
def test_an_unset_domain_is_claimed(tmp_path, unset):
    env = dict(os.environ, TMPDIR=str(tmp_path), ROS_DOMAIN_ID=unset)
    if unset == "del":
        del env["ROS_DOMAIN_ID"]
    code = ("import os; from ohio_core.ros_env import local_ros_env; e = local_ros_env(); "
            "print(e['ROS_DOMAIN_ID'], e['ROS_AUTOMATIC_DISCOVERY_RANGE'], os.environ['ROS_DOMAIN_ID'])")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    domain, scope, in_environ = out.stdout.split()
    assert int(domain) in DOMAINS and scope == "LOCALHOST" and in_environ == domain
    assert lock_path(int(domain), tmp_path).is_file()

"""The ROS 2 environment of the node processes this project starts: DDS on this machine only, in a
domain that no other run of the project on this machine uses.

``local_ros_env(env)`` sets ``ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST`` and, unless the caller chose
one, a ``ROS_DOMAIN_ID`` from ``DOMAINS`` (10..99, inside ROS 2's safe range) claimed by
``claim_domain``: an exclusive lock on ``<tmp>/ohio-ros-domain-<id>.lock`` that this process holds
until it exits. ``run.sh`` takes the same locks (``flock``), so a test run, a benchmark and the demo
started side by side never share a domain. This module never imports rclpy.
"""

from __future__ import annotations

import fcntl
import os
import tempfile
from pathlib import Path

DOMAINS = range(10, 100)
LOCK_NAME = "ohio-ros-domain-{}.lock"

_claimed: dict = {}          # lock directory -> (domain, open lock file), held for the process lifetime


def lock_path(domain: int, lock_dir: str | Path | None = None) -> Path:
    return Path(lock_dir or tempfile.gettempdir()) / LOCK_NAME.format(domain)


def claim_domain(lock_dir: str | Path | None = None, start: int | None = None) -> int:
    """A domain ID no other process holds, locked until this process exits (the same one on every call).

    Tries ``DOMAINS`` from ``start`` (default: the process ID modulo their number) on, wrapping around."""
    key = str(Path(lock_dir or tempfile.gettempdir()).resolve())
    if key in _claimed:
        return _claimed[key][0]
    first = os.getpid() if start is None else int(start)
    for i in range(len(DOMAINS)):
        domain = DOMAINS[(first + i) % len(DOMAINS)]
        f = open(lock_path(domain, lock_dir), "a")
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            f.close()
            continue
        _claimed[key] = (domain, f)
        return domain
    raise RuntimeError(f"every ROS domain ID {DOMAINS.start}..{DOMAINS.stop - 1} is held by another run "
                       f"(locks {lock_path('*', lock_dir)}); set ROS_DOMAIN_ID to choose one")


def local_ros_env(env: dict | None = None) -> dict:
    """``env`` (default ``os.environ``, changed in place) with DDS discovery on this machine and a domain
    ID of this process's own unless ``ROS_DOMAIN_ID`` is already set; returns it."""
    env = os.environ if env is None else env
    env["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"
    if not env.get("ROS_DOMAIN_ID"):
        env["ROS_DOMAIN_ID"] = str(claim_domain())
    return env

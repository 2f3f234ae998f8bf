"""The processes of a session (``start_new_session=True`` children and what they spawn), from /proc."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path


def session_processes(sid: int) -> dict[int, str]:
    """{pid: command line} of the live processes in session ``sid``: /proc/PID/stat's state (field 3)
    is not Z and its session (field 6) is ``sid``."""
    found = {}
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit():
                stat = (entry / "stat").read_text()
                fields = stat[stat.rindex(")") + 2:].split()
                if int(fields[3]) == sid and fields[0] != "Z":
                    found[int(entry.name)] = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except (OSError, ValueError, IndexError):   # gone meanwhile
            pass
    return found


def wait_for_empty_session(sid: int, timeout_s: float) -> dict[int, str]:
    """The session's processes once it is empty or ``timeout_s`` have passed."""
    deadline = time.monotonic() + timeout_s
    while (left := session_processes(sid)) and time.monotonic() < deadline:
        time.sleep(0.1)
    return left


def kill_session(sid: int, timeout_s: float = 10.0) -> None:
    """SIGKILL to every process of session ``sid`` but this one (as ``ray stop --force`` sends to
    every Ray process); returns once none is left or after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while (pids := set(session_processes(sid)) - {os.getpid()}) and time.monotonic() < deadline:
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        time.sleep(0.1)

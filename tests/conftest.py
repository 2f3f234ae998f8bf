"""Shared fixtures. The project is installed (editable) into the venv; the only folder pytest adds to
sys.path is tests/support (the shared helpers: pyproject's pythonpath)."""

import os
import signal

# MuJoCo picks its OpenGL backend at import: headless EGL, as the ohio command does.
os.environ.setdefault("MUJOCO_GL", "egl")
# ROS 2 (DDS) traffic of the tests and of the node processes they start stays on this machine,
# in a domain claimed by this test process unless the caller chose one (./run.sh does), so
# concurrent runs do not see each other. Set before any rclpy context exists; subprocesses inherit it.
from ohio_core.ros_env import local_ros_env  # noqa: E402

local_ros_env()

# A shell that starts a job in the background (`cmd &`, nohup, some CI runners) sets SIGINT to
# "ignore", which Python then keeps and every process it starts inherits: Ctrl-C tests would see no
# KeyboardInterrupt and nodes would not stop on SIGINT. Tests run with Python's default handler
# (children exec with SIGINT at its default again).
if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)

import numpy as np  # noqa: E402
import pytest  # noqa: E402


@pytest.fixture
def rng() -> np.random.Generator:
    """A seeded generator, so that randomized tests are reproducible."""
    return np.random.default_rng(0)

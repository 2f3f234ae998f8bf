"""Facts about the one robot description both Pinocchio and MuJoCo load (``urdf/panda.urdf``)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np

ARM_JOINTS = tuple(f"panda_joint{i}" for i in range(1, 8))
FINGER_JOINTS = ("panda_finger_joint1", "panda_finger_joint2")
TCP_FRAME = "panda_hand_tcp"
#: Finger opening (m, per finger) at which the fingers are locked in the arm model.
FINGER_LOCK = 0.04
#: A comfortable configuration in front of the robot (also the nullspace rest posture).
Q_HOME = np.array([0.0, -0.3, 0.0, -2.2, 0.0, 2.0, np.pi / 4])


def description_dir() -> Path:
    """Directory holding ``panda.urdf`` and its meshes.

    Order: ``$OHIO_URDF_DIR``, the source tree (``<repo>/urdf``), then the installed
    share directory (``<prefix>/share/ohio/urdf``).
    """
    candidates = []
    if os.environ.get("OHIO_URDF_DIR"):
        candidates.append(Path(os.environ["OHIO_URDF_DIR"]))
    candidates.append(Path(__file__).resolve().parents[1] / "urdf")
    candidates.append(Path(sys.prefix) / "share" / "ohio" / "urdf")
    for c in candidates:
        if (c / "panda.urdf").is_file():
            return c
    raise FileNotFoundError(
        "panda.urdf not found; looked in " + ", ".join(str(c) for c in candidates)
        + " (set OHIO_URDF_DIR to the folder holding panda.urdf)")


def urdf_path() -> Path:
    return description_dir() / "panda.urdf"

"""Bags as a robot driver records them (no task state), made from simulator trajectories.

``write_driver_bag`` writes, for each episode of a ``Trajectories``, ``/joint_states`` at
``js_per_period`` samples per control period (the extra samples interpolated linearly between
rows, so reading them back by interpolation is exact), in a shuffled joint order with extra
joints, and the commanded torques on ``/forward_effort_controller/commands`` without a layout
label (the ros2_control forward command controller convention). Episodes follow each other after
``gap_s`` seconds. Options drop velocities or efforts, or jitter the joint-state stamps.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from rosbags.rosbag2 import StoragePlugin, Writer

from ohio_core.data.bags import typestore

BASE_NS = 1_700_000_000 * 10**9
ARM = [f"panda_joint{i}" for i in range(1, 8)]
NAMES = ["panda_joint3", "panda_finger_joint1", "panda_joint1", "panda_joint7", "panda_joint2", "panda_joint5",
         "panda_finger_joint2", "panda_joint4", "panda_joint6"]
COMMANDS = "/forward_effort_controller/commands"


def write_driver_bag(path: Path, traj, js_per_period: int = 2, velocities: bool = True, efforts: str = "measured",
                     commands: bool = True, gap_s: float = 1.0, jitter_ns: int = 0, storage: str = "mcap",
                     period: float = 0.02, seed: int = 0) -> dict:
    """Write the bag; returns {"messages": n, "row_ns": bag time of each row of ``traj``}.

    ``efforts``: "measured" (the torque of the period just ended, as ``ohio collect`` writes),
    "empty" (an empty effort array) or "zero"."""
    ts = typestore()
    T = ts.types
    JS, F64MA = T["sensor_msgs/msg/JointState"], T["std_msgs/msg/Float64MultiArray"]
    Header, Time = T["std_msgs/msg/Header"], T["builtin_interfaces/msg/Time"]
    Layout = T["std_msgs/msg/MultiArrayLayout"]
    rng = np.random.default_rng(seed)
    order = [NAMES.index(j) for j in ARM]
    p_ns = int(round(period * 1e9))
    writer = Writer(path, version=9, storage_plugin=StoragePlugin.MCAP if storage == "mcap" else StoragePlugin.SQLITE3)
    writer.open()
    c_js = writer.add_connection("/joint_states", "sensor_msgs/msg/JointState", typestore=ts)
    c_cmd = writer.add_connection(COMMANDS, "std_msgs/msg/Float64MultiArray", typestore=ts) if commands else None
    out = []
    n_msgs = 0
    start = BASE_NS
    for e in np.unique(traj.episode):
        rows = np.flatnonzero(traj.episode == e)
        q, qd, tau = traj.q[rows], traj.qd[rows], traj.tau[rows]
        row_ns = start + p_ns * np.arange(len(rows))
        out.append(row_ns)
        msgs = []
        for i in range(len(rows)):
            for s in range(js_per_period if i < len(rows) - 1 else 1):
                w = s / js_per_period
                j = min(i + 1, len(rows) - 1)
                t = int(row_ns[i] + round(w * p_ns))
                if jitter_ns and (s or 0 < i < len(rows) - 1):      # the piece's ends stay on the grid
                    t += int(rng.integers(-jitter_ns, jitter_ns + 1))
                pos, vel = (1 - w) * q[i] + w * q[j], (1 - w) * qd[i] + w * qd[j]
                eff = tau[i - 1] if (i > 0 and s == 0) else (tau[i] if s else np.zeros(7))
                full = np.zeros((3, len(NAMES)))
                full[0, order], full[1, order], full[2, order] = pos, vel, eff
                msgs.append((t, 0, JS(header=Header(stamp=Time(sec=t // 10**9, nanosec=t % 10**9), frame_id=""),
                                      name=list(NAMES), position=full[0],
                                      velocity=full[1] if velocities else np.zeros(0),
                                      effort={"measured": full[2], "empty": np.zeros(0),
                                              "zero": np.zeros(len(NAMES))}[efforts])))
            if commands:
                msgs.append((int(row_ns[i]), 1, F64MA(layout=Layout(dim=[], data_offset=0), data=tau[i].copy())))
        for t, kind, msg in sorted(msgs, key=lambda m: (m[0], m[1])):
            conn = c_js if kind == 0 else c_cmd
            writer.write(conn, t, ts.serialize_cdr(msg, msg.__msgtype__))
            n_msgs += 1
        start = int(row_ns[-1] + int(gap_s * 1e9))
    writer.close()
    return {"messages": n_msgs, "row_ns": np.concatenate(out)}

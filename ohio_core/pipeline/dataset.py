"""High-level datasets on disk: a d3rlpy file plus a JSON sidecar that says where it came from.

``<out>.h5`` is a d3rlpy ``ReplayBuffer`` dump (load with ``load_dataset``); ``<out>.json`` records
the controller config, k, the inverse method, the source bags, the account of the relabel run and
the per-transition residuals. Both are written under temporary names and renamed into place, the
sidecar last: a dataset without its sidecar is incomplete.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ohio_core.pipeline.relabel import HighLevelData
from ohio_core.pipeline.sidecar import pair_paths, read_sidecar, write_pair

FORMAT = "ohio_hl_dataset_v1"


def paths(out: str | Path) -> tuple[Path, Path]:
    return pair_paths(out, ".h5")


def to_mdp_dataset(data: HighLevelData):
    from ohio_core.pipeline.d3 import import_d3rlpy

    d3rlpy = import_d3rlpy()

    timeouts = data.timeouts.copy()
    if len(timeouts) and data.terminals[-1] == 0:
        timeouts[-1] = 1.0          # d3rlpy drops steps after the last episode end
    return d3rlpy.dataset.MDPDataset(
        observations=data.observations, actions=data.actions, rewards=data.rewards,
        terminals=data.terminals, timeouts=timeouts,
        action_space=d3rlpy.constants.ActionSpace.CONTINUOUS)


def save_dataset(data: HighLevelData, out: str | Path, sidecar: dict) -> tuple[Path, Path]:
    """Write ``data`` with ``sidecar`` (which must name the ``task``; ``level`` defaults to
    ``goal``); the observation layout and sizes are added here."""
    if "task" not in sidecar:
        raise ValueError("the dataset sidecar must name the task (reach, lift)")
    if len(data.rewards) == 0:
        raise ValueError("no transitions to write: every segment was dropped (see the account)")
    h5, js = paths(out)
    dataset = to_mdp_dataset(data)

    def dump(tmp: Path) -> None:
        with open(tmp, "w+b") as f:    # h5py reads back while writing
            dataset.dump(f)

    meta = {"level": "goal", **sidecar}
    meta.update({"format": FORMAT, "obs_layout": [list(x) for x in data.obs_layout],
                 "transitions": int(len(data.rewards)), "account": data.account,
                 "observation_dim": int(data.observations.shape[1]), "action_dim": int(data.actions.shape[1]),
                 "episodes": int(len(np.unique(data.episode))),
                 "residual_n_m": np.round(data.residual, 9).tolist()})
    write_pair(h5, js, dump, meta)
    return h5, js


def load_dataset(path: str | Path):
    """(d3rlpy ReplayBuffer, sidecar dict); refuses a dataset without its sidecar."""
    from ohio_core.pipeline.d3 import import_d3rlpy

    d3rlpy = import_d3rlpy()

    h5, js = paths(path)
    meta = read_sidecar(h5, js, "dataset", FORMAT)
    with open(h5, "rb") as f:
        buffer = d3rlpy.dataset.ReplayBuffer.load(f, d3rlpy.dataset.InfiniteBuffer())
    return buffer, meta

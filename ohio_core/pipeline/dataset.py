"""High-level datasets on disk: a d3rlpy file plus a JSON sidecar that says where it came from.

``<out>.h5`` is a d3rlpy ``ReplayBuffer`` dump (load with ``load_dataset``); ``<out>.json`` records
the controller config, k, the inverse method, the source bags, the account of the relabel run and
the per-transition residuals. Both are written under temporary names and renamed into place, the
sidecar last: a dataset without its sidecar is incomplete.

Every action is continuous: the action space and size are given to d3rlpy whenever a dataset is
built or loaded (it would guess them from the first piece of episode, and take whole-number actions,
e.g. all zeros, for discrete ones). The sidecar counts what the file holds, and the file is read back
before it is renamed into place and refused unless it holds exactly that:

- ``transitions``: high-level steps (s_t, a_t, r_t), one row each (the account's segments or
  transitions written);
- ``pieces``: pieces of episode (d3rlpy episodes), each ending in a terminal state or a timeout;
- ``transitions_with_next_state``: the steps d3rlpy trains on (d3rlpy's ``transition_count``): every
  step of a piece that ends in a terminal state, all but the last of one that times out.

d3rlpy stores no piece without a transition (one step that times out): the relabelers drop those
under ``relabel.SINGLE_STEP_PIECE``, and data still holding one fail the read-back check.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ohio_core import lazy
from ohio_core.pipeline.relabel import SINGLE_STEP_PIECE, HighLevelData
from ohio_core.pipeline.sidecar import pair_paths, read_data, read_sidecar, write_pair

FORMAT = "ohio_hl_dataset_v1"
COUNTS = ("transitions", "pieces", "transitions_with_next_state")


class DatasetMismatchError(ValueError):
    """A dataset file does not hold what its data, account or sidecar say."""


def paths(out: str | Path) -> tuple[Path, Path]:
    return pair_paths(out, ".h5")


def to_mdp_dataset(data: HighLevelData):
    d3rlpy = lazy.d3rlpy()

    return d3rlpy.dataset.MDPDataset(
        observations=data.observations, actions=data.actions, rewards=data.rewards,
        terminals=data.terminals, timeouts=closed_timeouts(data),
        action_space=d3rlpy.constants.ActionSpace.CONTINUOUS, action_size=int(data.actions.shape[1]))


def closed_timeouts(data: HighLevelData) -> np.ndarray:
    """The timeouts with the last step closing its piece (d3rlpy drops steps after the last episode end)."""
    timeouts = np.asarray(data.timeouts, np.float32).copy()
    if len(timeouts) and data.terminals[-1] == 0:
        timeouts[-1] = 1.0
    return timeouts


def expected_counts(data: HighLevelData) -> dict:
    """``COUNTS`` (module docstring) of ``data`` as d3rlpy stores it."""
    terminal = np.asarray(data.terminals) > 0
    ends = terminal | (closed_timeouts(data) > 0)
    return {"transitions": int(len(data.rewards)), "pieces": int(ends.sum()),
            "transitions_with_next_state": int(len(data.rewards) - np.sum(ends & ~terminal))}


def stored_counts(episodes) -> dict:
    """``COUNTS`` of the d3rlpy episodes read from a file."""
    return {"transitions": int(sum(e.size() for e in episodes)), "pieces": len(episodes),
            "transitions_with_next_state": int(sum(e.transition_count for e in episodes))}


def _single_step_hint(data: HighLevelData) -> str:
    """Why d3rlpy stored fewer steps than ``data`` hold: its pieces of one step that end without a terminal state."""
    ends = np.flatnonzero((np.asarray(data.terminals) > 0) | (closed_timeouts(data) > 0))
    lone = int(np.sum((np.diff(np.r_[-1, ends]) == 1) & (np.asarray(data.terminals)[ends] == 0)))
    return (f" ({lone} pieces of episode are a single step that ends without a terminal state: d3rlpy does not "
            f"store them; drop and count them under {SINGLE_STEP_PIECE!r})") if lone else ""


def account_written(account: dict) -> int | None:
    """Steps the account says were written (summed over its parts where only they say); None if it does not say."""
    for key in ("segments_written", "transitions_written"):
        if key in account:
            return int(account[key])
    parts = account.get("parts")
    parts = list(parts.values()) if isinstance(parts, dict) else parts
    counts = [account_written(p) for p in parts or [] if isinstance(p, dict)]
    return sum(counts) if parts and len(counts) == len(parts) and None not in counts else None


def read_episodes(h5: Path) -> list:
    """The d3rlpy episodes stored in ``h5``."""
    d3rlpy = lazy.d3rlpy()
    with open(h5, "rb") as f:
        return list(d3rlpy.dataset.load(d3rlpy.dataset.Episode, f))


def continuous_buffer(episodes, action_dim: int):
    """A d3rlpy ``ReplayBuffer`` of ``episodes`` with continuous actions of ``action_dim`` (never guessed)."""
    d3rlpy = lazy.d3rlpy()
    return d3rlpy.dataset.ReplayBuffer(d3rlpy.dataset.InfiniteBuffer(), episodes=episodes,
                                       action_space=d3rlpy.constants.ActionSpace.CONTINUOUS,
                                       action_size=int(action_dim))


def check_counts(got: dict, want: dict, where: Path, what: str, hint: str = "") -> None:
    """Raise ``DatasetMismatchError`` where ``got`` (the file) and ``want`` differ on a count both give."""
    diff = [f"{got[k]} {k} ({what}: {want[k]})" for k in COUNTS if k in want and k in got and got[k] != want[k]]
    if diff:
        raise DatasetMismatchError(f"{where}: the file holds " + ", ".join(diff) + hint)


def verify_written(tmp: Path, data: HighLevelData, where: Path) -> None:
    """Read the file written for ``data`` back: the same counts, steps and piece ends, or ``DatasetMismatchError``."""
    episodes = read_episodes(tmp)
    check_counts(stored_counts(episodes), expected_counts(data), where, "the data written", _single_step_hint(data))
    stored = {name: np.concatenate([getattr(e, name) for e in episodes]) for name in ("observations", "actions")}
    stored["rewards"] = np.concatenate([e.rewards for e in episodes]).reshape(-1)
    for name, values in stored.items():
        if not np.array_equal(values, getattr(data, name), equal_nan=True):
            raise DatasetMismatchError(f"{where}: the file's {name} differ from the data written")
    ends = np.flatnonzero((np.asarray(data.terminals) > 0) | (closed_timeouts(data) > 0))
    if [bool(e.terminated) for e in episodes] != (np.asarray(data.terminals)[ends] > 0).tolist():
        raise DatasetMismatchError(f"{where}: the file's terminal states differ from the data written")


def save_dataset(data: HighLevelData, out: str | Path, sidecar: dict) -> tuple[Path, Path]:
    """Write ``data`` with ``sidecar`` (which must name the ``task``; ``level`` defaults to
    ``goal``); the observation layout and sizes are added here."""
    if "task" not in sidecar:
        raise ValueError("the dataset sidecar must name the task (reach, lift)")
    if len(data.rewards) == 0:
        raise ValueError("no transitions to write: every segment was dropped (see the account)")
    h5, js = paths(out)
    written = account_written(data.account)
    if written is not None and written != len(data.rewards):
        raise DatasetMismatchError(f"{h5}: the account says {written} transitions written, the data hold "
                                   f"{len(data.rewards)}")
    if expected_counts(data)["transitions_with_next_state"] == 0:
        raise DatasetMismatchError(f"{h5}: nothing to store: every piece of episode is one step without a terminal "
                                   f"state{_single_step_hint(data)}")
    dataset = to_mdp_dataset(data)

    def dump(tmp: Path) -> None:
        with open(tmp, "w+b") as f:    # h5py reads back while writing
            dataset.dump(f)
        verify_written(tmp, data, h5)

    meta = {"level": "goal", **sidecar}
    meta.update({"format": FORMAT, "obs_layout": [list(x) for x in data.obs_layout],
                 **expected_counts(data), "account": data.account,
                 "observation_dim": int(data.observations.shape[1]), "action_dim": int(data.actions.shape[1]),
                 "episodes": int(len(np.unique(data.episode))),
                 "residual_n_m": np.round(data.residual, 9).tolist()})
    write_pair(h5, js, dump, meta)
    return h5, js


def load_dataset(path: str | Path):
    """(d3rlpy ReplayBuffer, sidecar dict); refuses a dataset without its sidecar or that does not hold
    what its sidecar counts."""
    h5, js = paths(path)
    meta = read_sidecar(h5, js, "dataset", FORMAT)
    episodes = read_data(h5, "dataset", lambda: read_episodes(h5))
    check_counts(stored_counts(episodes), meta, h5, "its sidecar")
    return continuous_buffer(episodes, meta["action_dim"]), meta

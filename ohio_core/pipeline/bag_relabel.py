"""Relabel many bags: one streaming job per bag, run in parallel, one account for the run.

``relabel_bag`` reads one bag chunk by chunk (``data.bag_read.BagStream``) and relabels each chunk
as it comes, so a worker holds one chunk of messages and the (much smaller) high-level transitions
made so far. ``relabel_bags`` runs it over many bags with ``pipeline.parallel.map_items``: local
processes by default, or an existing Ray cluster (``ray_address``). A bag that fails is reported
with its error; with ``skip_bad`` the others still make the dataset, without it the run stops
with that error.

Rows hold their torques with g(q) (``data.gravity``); for a deployment controller with
``gravity_compensation: driver`` it is taken out again before the inverse, so both compare like
with like.

Without torques in a bag (``effort_source: none`` or empty measured efforts) the goals can only
come from state matching: ``method="auto"`` switches to it and says so; a method that needs
torques is refused.

A bag that records the k it was collected with (``ohio collect`` writes it to the metadata's
``ohio.collect``) is refused for any other k unless ``force_k``: a goal held for k periods relabeled
over another k mixes goals in most segments (the residual shows it; the dataset would be wrong).
"""

from __future__ import annotations

import dataclasses
import functools
import json
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import numpy as np

from controllers.base import make_controller
from controllers.description import DEFAULT_ROBOT, load_robot
from controllers.robot import ArmModel
from controllers.config import ConfigError, OSCConfig, QPConfig, config_from_dict
from ohio_core.data.account import BagAccount, Drops, RunAccount, SegmentCounts
from ohio_core.data.bag_common import BagError
from ohio_core.data.bag_read import BagStream
from ohio_core.data.bag_source import bag_custom_data, is_bag_folder
from ohio_core.data.bag_storage import BAG_FILES
from ohio_core.data.gravity import for_controller
from ohio_core.data.rows_common import ReadOptions
from ohio_core.data.topics import TopicMap
from ohio_core.inverse import METHODS
from ohio_core.pipeline.parallel import map_items
from ohio_core.pipeline.relabel import OUT_OF_RANGE, HighLevelData, concat, relabel, residual_stats

#: methods that need no logged torques
TORQUE_FREE = ("state_matching", "naive")
#: residual p95 (N m) above which a bag relabeled for the controller that recorded it is reported: that
#: controller reproduces its own torques exactly (~1e-12 N m), so a wrong k, config or model shows here
RESIDUAL_WARNING = 1.0
#: what the account says where the deployment controller leaves g(q) to the driver (``data.gravity``)
GRAVITY_REMOVED = "g(q) taken out of the torques: the deployment controller leaves it to the driver"
#: behavior policies of ``ohio collect`` whose episodes may hold torques no controller computed
TORQUE_LEVEL_POLICIES = ("flat", "mix")


class RelabelError(RuntimeError):
    """A relabel run cannot go on (a bad bag without ``skip_bad``, nothing left to write, ...)."""


@dataclass(frozen=True)
class RelabelConfig:
    """Everything a per-bag job needs (picklable; validated on construction)."""

    controller: OSCConfig | QPConfig = field(default_factory=OSCConfig)
    k: int = 5
    method: str = "auto"
    max_residual: float = float("inf")  # drop segments above this residual (N m); default: keep every solved one
    out_of_range: str = "clip"          # goals outside the controller's range: clip (and count) or drop
    joint_limit_margin: float = 0.05    # rad beyond the URDF limits before a segment is dropped
    topic_map: TopicMap = field(default_factory=TopicMap)
    read: ReadOptions | None = None     # None: defaults with the controller's control period
    task: str | None = None             # None: read from the bags (``ohio collect`` writes it)
    torque_sigma: tuple | None = None   # method "ml": the torque noise std (N m), one value or one per joint
    force_k: bool = False               # relabel with ``k`` even where a bag records another
    recorded_gravity: bool = True       # take the commands' g(q) convention the stack's recorder wrote
                                        # into a bag (False: the topic map's, as given with --topics)
    robot: str = DEFAULT_ROBOT          # the deployed arm: a name of config/robots or a robot file

    def __post_init__(self):
        if not isinstance(self.k, int) or self.k < 1:
            raise ValueError(f"k must be a positive integer, got {self.k!r}")
        if self.method not in METHODS:
            raise ValueError(f"unknown inverse method {self.method!r}; expected one of {list(METHODS)}")
        if self.out_of_range not in OUT_OF_RANGE:
            raise ValueError(f"out_of_range must be one of {list(OUT_OF_RANGE)}, got {self.out_of_range!r}")
        if (self.method == "ml") != (self.torque_sigma is not None):
            raise ValueError("method 'ml' needs the torque noise (torque_sigma, --torque-sigma), and only it uses it"
                             if self.method == "ml" else
                             f"torque_sigma is for method 'ml' only, not {self.method!r}")
        robot = load_robot(self.robot)
        n = robot.n
        if self.torque_sigma is not None:
            sigma = tuple(float(v) for v in np.atleast_1d(self.torque_sigma))
            if len(sigma) not in (1, n) or not all(np.isfinite(v) and v > 0 for v in sigma):
                raise ValueError(f"torque_sigma must be one value or {n} (one per joint), all finite and > 0 (N m), "
                                 f"got {sigma}")
            object.__setattr__(self, "torque_sigma", sigma)
        if not self.max_residual > 0 or not self.joint_limit_margin >= 0:
            raise ValueError("max_residual must be > 0 and joint_limit_margin >= 0")
        if len(self.topic_map.arm_joints) != n:
            raise ValueError(f"the topic map names {len(self.topic_map.arm_joints)} arm joints, robot {robot.name} "
                             f"has {robot.n}: set arm_joints in the topic map")
        if self.read is None:
            object.__setattr__(self, "read", ReadOptions(control_period=self.controller.control_period))
        elif abs(self.read.control_period - self.controller.control_period) > 1e-12:
            raise ValueError(f"ReadOptions.control_period ({self.read.control_period} s) differs from the controller's "
                             f"({self.controller.control_period} s)")


@dataclass
class BagResult:
    """One bag's transitions (None when it failed) and account."""

    bag: str
    data: HighLevelData | None
    account: BagAccount
    task: str | None = None


_CONTROLLERS: dict = {}


@functools.lru_cache(maxsize=8)
def _arm_model(robot: str) -> ArmModel:
    """The deployed arm's model, with gravity (what g(q) conversions evaluate), one per process."""
    return ArmModel(robot)


def _controller(config, robot: str = DEFAULT_ROBOT):
    key = (json.dumps(config.to_dict(), sort_keys=True), str(robot))
    if key not in _CONTROLLERS:
        _CONTROLLERS[key] = make_controller(config, _arm_model(robot))
    return _CONTROLLERS[key]


def _collect_info(path: Path, key: str = "ohio.collect") -> dict:
    """The settings ``ohio collect`` (``key`` ohio.collect) or the stack's recorder node (ohio.record)
    wrote into a bag's metadata ({} if none, or not a JSON object)."""
    info = bag_custom_data(path).get(key)
    try:
        value = json.loads(info) if info else {}
    except (ValueError, TypeError):
        return {}
    return value if isinstance(value, dict) else {}


def recorded_task(path: Path) -> str | None:
    """The task ``ohio collect`` recorded in a bag's metadata (None if not said)."""
    task = _collect_info(path).get("task")
    return task if isinstance(task, str) else None


def check_robot(path: Path, config: RelabelConfig) -> None:
    """A ``BagError`` where ``ohio collect`` recorded the bag on another robot than ``config.robot``
    (its bags before robots were configurable are the Panda's; other bags do not say)."""
    info = _collect_info(path) or _collect_info(path, "ohio.record")
    recorded, robot = info.get("robot", DEFAULT_ROBOT), load_robot(config.robot)
    if info and recorded != robot.name:
        raise BagError(f"{path}: recorded on robot {recorded!r}, relabeling is for {robot.name!r} "
                       f"(pass --robot {recorded})")


def bag_topic_map(path: Path, config: RelabelConfig) -> TopicMap:
    """``config.topic_map``, with the commands' gravity convention the stack's recorder wrote into the
    bag (its controller's ``gravity_compensation``: ``driver`` commands lack g(q)) where
    ``config.recorded_gravity``."""
    mode = _collect_info(path, "ohio.record").get("gravity_compensation")
    if not config.recorded_gravity or mode not in ("controller", "driver"):
        return config.topic_map
    return dataclasses.replace(config.topic_map, commanded_effort_includes_gravity=mode == "controller")


def recorded_k(path: Path) -> int | None:
    """The k (control periods per goal) ``ohio collect`` recorded in a bag's metadata (None if not said);
    a recorded value that is not a positive integer is a ``BagError``."""
    info = _collect_info(path)
    if "k" not in info:
        return None
    k = info["k"]
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise BagError(f"{path}: the metadata's ohio.collect records k = {k!r}, not a positive integer")
    return k


def recorded_controller(path: Path, config: OSCConfig | QPConfig) -> str:
    """Whether ``ohio collect`` recorded the bag with ``config``: 'same', 'different' or 'unknown'.
    'unknown' also where torque-level episodes may be in the bag (``flat``, ``mix``): the controller
    did not compute their torques."""
    info = _collect_info(path)
    recorded = info.get("controller")
    if not isinstance(recorded, dict) or info.get("policy") in TORQUE_LEVEL_POLICIES:
        return "unknown"
    try:
        return "same" if config_from_dict(recorded).to_dict() == config.to_dict() else "different"
    except ConfigError:
        return "different"


def _k_refused(path: Path, k: int | None, config: RelabelConfig) -> str | None:
    """Why ``config`` may not relabel a bag recorded with ``k`` (None: it may)."""
    if k is None or k == config.k or config.force_k:
        return None
    return (f"{path}: recorded with k = {k}, relabeling asked for k = {config.k}; use --k {k}, or --force-k to "
            f"relabel with k = {config.k} anyway")


def check_k(path: Path, config: RelabelConfig) -> int | None:
    """The bag's recorded k; a ``BagError`` when it differs from ``config.k`` without ``config.force_k``."""
    k = recorded_k(path)
    refused = _k_refused(path, k, config)
    if refused:
        raise BagError(refused)
    return k


def relabel_bag(bag: str | Path, config: RelabelConfig) -> BagResult:
    """Read ``bag`` chunk by chunk and relabel every chunk for ``config.controller`` (module docstring)."""
    path = Path(bag)
    k_recorded = check_k(path, config)
    check_robot(path, config)
    controller = _controller(config.controller, config.robot)
    stream = BagStream(path, bag_topic_map(path, config), config.read, _arm_model(config.robot))
    parts, drops, method = [], Drops(), config.method
    for chunk in stream:
        chunk.tau = for_controller(chunk.tau, chunk.q, config.controller.gravity_compensation,
                                   _arm_model(config.robot))
        if len(chunk) and not np.isfinite(chunk.tau).any():
            if method == "auto":
                method = "state_matching"
            elif method not in TORQUE_FREE:
                raise BagError(f"{path}: the bag has no torques ({stream.account.efforts or 'none'}); "
                               f"method {method!r} needs them: use --method state_matching (or auto)")
        noise = {"sigma": np.asarray(config.torque_sigma)} if method == "ml" else {}
        data = relabel(chunk, controller, config.k, method, max_residual=config.max_residual,
                       out_of_range=config.out_of_range, joint_limit_margin=config.joint_limit_margin, **noise)
        drops.merge(data.drops)
        parts.append(data)
    segments = SegmentCounts()
    for p in parts:
        segments.add(p.account)
    task = config.task or recorded_task(path) or (None if config.topic_map.task_state is not None else "arm")
    data = concat(parts) if parts and sum(len(p.rewards) for p in parts) else None
    stats = residual_stats(data.residual if data is not None else np.zeros(0))
    recorded = recorded_controller(path, config.controller)
    warning = None
    if recorded == "same" and stats["count"] and stats["p95"] > RESIDUAL_WARNING:
        warning = (f"residual p95 {stats['p95']:.3g} N m, relabeled for the controller that recorded the bag (which "
                   f"reproduces its own torques exactly): check k, the controller config and the robot model")
    account = BagAccount(read=stream.account, segments=segments, method=method, k=config.k, k_recorded=k_recorded,
                         segments_dropped_time_ranges_s=drops.ranges_s(stream.account.start_ns),
                         recorded_controller=recorded, residual_n_m=stats, warning=warning,
                         gravity=GRAVITY_REMOVED if config.controller.gravity_compensation == "driver" else None)
    if data is not None:
        data.account = account.to_dict()
    return BagResult(str(path), data, account, task)


@dataclass
class RunResult:
    """What ``relabel_bags`` made: the transitions of all good bags, and the accounts."""

    data: HighLevelData | None
    bags: list[BagResult]
    skipped: dict[str, str]          # bag -> error
    task: str | None
    account: RunAccount


def relabel_bags(bags: list[str | Path], config: RelabelConfig, workers: int | None = None,
                 ray_address: str | None = None, skip_bad: bool = False, progress: bool = True) -> RunResult:
    """``relabel_bag`` over every bag in parallel (module docstring); results in the bags' order."""
    bags = [str(b) for b in bags]
    if not bags:
        raise RelabelError("no bags given")
    for b in bags:                  # a k other than recorded is the caller's error, not a bad bag: never skipped
        try:
            refused = _k_refused(Path(b), recorded_k(Path(b)), config)
        except BagError:
            continue                    # an unreadable record is the bag's: its job reports it
        if refused:
            raise RelabelError(refused)
    outcomes = sorted(map_items(partial(relabel_bag, config=config), bags, workers=workers,
                                ray_address=ray_address, progress=progress, desc="bags"),
                      key=lambda o: o.index)
    results, skipped = [], {}
    for o in outcomes:
        if o.error is not None:
            if not skip_bad:
                raise RelabelError(f"{o.item}: {_failure(o)} (use --skip-bad to relabel the other bags)")
            skipped[o.item] = _failure(o)
        else:
            results.append(o.value)
    tasks = {r.task for r in results if r.data is not None}
    if len(tasks) > 1:
        raise RelabelError(f"the bags record different tasks {sorted(map(str, tasks))}; relabel them separately")
    parts = [r.data for r in results if r.data is not None]
    data = concat(parts) if parts else None
    account = total_account(results, skipped, config)
    if data is not None:
        data.account = account.to_dict()
    return RunResult(data, results, skipped, tasks.pop() if tasks else None, account)


def _failure(outcome) -> str:
    """Why a bag failed: a ``BagError``'s message without the bag path it starts with (the caller names
    the bag); any other exception with its type, since it is not a bad bag but a defect."""
    if outcome.error_type != BagError.__name__:
        return outcome.error
    text, bag = outcome.message, outcome.item
    return text[len(bag) + 2:] if text.startswith(bag + ": ") else text


def total_account(results: list[BagResult], skipped: dict[str, str], config: RelabelConfig) -> RunAccount:
    """The run's account: totals over the bags, and each bag's own."""
    residual = np.concatenate([r.data.residual for r in results if r.data is not None] or [np.zeros(0)])
    return RunAccount.total([r.account for r in results], skipped, config.method, config.k, residual_stats(residual))


def expand_bags(paths: list[str | Path]) -> list[Path]:
    """Bags named directly, or found in folders: every sub-folder holding a metadata.yaml or the data
    files of one split recording without it (``data.bag_source.split_files``: read as one bag),
    then the other .mcap/.db3 files and ROS 1 .bag files one by one, sorted; a path that is neither is an error."""
    out: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir() and not is_bag_folder(p):
            data = sorted(f for f in p.rglob("*") if f.suffix in BAG_FILES and f.is_file())
            found = sorted({m.parent for m in p.rglob("metadata.yaml")} |
                           {f.parent for f in data if is_bag_folder(f.parent)})
            loose = [f for f in data if not any(f.is_relative_to(b) for b in found)]
            if not found and not loose:
                raise BagError(f"{p}: no bags in this folder (no metadata.yaml, .mcap, .db3 or .bag below it)")
            out += found + loose
        else:
            out.append(p)
    return out

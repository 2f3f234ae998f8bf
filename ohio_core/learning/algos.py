"""Offline RL algorithms (d3rlpy) by name, with typed training settings and per-task defaults.

=========  ==================================================================================
name       d3rlpy algorithm
=========  ==================================================================================
``iql``    Implicit Q-Learning (expectile value, advantage-weighted policy); the default
``cql``    Conservative Q-Learning
``calql``  Calibrated Q-Learning (CQL with the conservative term bounded by the Monte-Carlo return)
``td3bc``  TD3+BC (TD3 with a behavior-cloning term)
``bc``     behavior cloning (deterministic policy, mean-squared error)
=========  ==================================================================================

Every algorithm standardizes observations with statistics fitted on the dataset and saved with
the model (``StandardObservationScaler``); actions are already normalized to [-1, 1]. With
``action_scaling="minmax"`` each action dimension is also mapped from the dataset's own range onto
[-1, 1] for training (``MinMaxActionScaler``, saved with the model and inverted when it acts): goals
relabeled for a controller with a wider output range use a small part of [-1, 1], and the scaling
gives them back the whole of it. ``ignore_observations`` names observation parts (``OBS_LAYOUT``
names, e.g. ``q``) every network is blind to: their standardization gets mean 0 and scale
``IGNORED_SCALE``, so they enter the networks as values below 1e-9 whatever the state
(``observation_scaler``). A goal policy that sees the joint positions q meets, under a deployment
controller with another redundancy resolution (the QP), arm configurations the data never held.

Networks (``TrainConfig.network``): ``mlp`` (every network an MLP of ``hidden`` widths) or, for
routing goals (one action per region), ``region`` (``routing.region_net``: one network shared by
all regions, of width ``hidden[0]``).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from ohio_core import lazy
from ohio_core.routing import region_net
from ohio_core.routing.env import ObsLayout

ALGOS = ("iql", "cql", "calql", "td3bc", "bc")
NETWORKS = ("mlp", "region")
ACTION_SCALINGS = ("none", "minmax")
#: standardization scale of an ignored observation part: x' = x / 1e12, below 1e-9 for |x| < 1000
IGNORED_SCALE = 1e12

#: per task: updates. Lift and door have twice the horizon and a gripper phase.
TASK_STEPS = {"reach": 10_000, "lift": 20_000, "door": 20_000}
DEFAULT_STEPS = 10_000


@dataclass(frozen=True)
class TrainConfig:
    """What ``learning.train.train`` needs; validated on construction."""

    algo: str = "iql"
    steps: int = DEFAULT_STEPS
    seed: int = 0
    batch_size: int = 256
    epochs: int = 20                 # loss-curve points (d3rlpy epochs of steps // epochs updates)
    gamma: float = 0.99
    threads: int = 1                 # torch threads (one is as fast as two for these networks)
    hidden: tuple = (128, 128)        # hidden layer widths of every network
    network: str = "mlp"              # NETWORKS (module docstring)
    temperature: float = 3.0          # IQL: policy weights exp(temperature * advantage)
    action_scaling: str = "none"      # ACTION_SCALINGS (module docstring)
    ignore_observations: tuple = ()   # observation parts the networks are blind to (module docstring)

    def __post_init__(self):
        if self.algo not in ALGOS:
            raise ValueError(f"unknown algorithm {self.algo!r}; expected one of {list(ALGOS)}")
        for name in ("steps", "batch_size", "epochs", "threads"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"TrainConfig.{name} must be >= 1, got {getattr(self, name)}")
        if not 0 < self.gamma <= 1:
            raise ValueError(f"TrainConfig.gamma must be in (0, 1], got {self.gamma}")
        if not 0 < self.temperature < float("inf"):
            raise ValueError(f"TrainConfig.temperature must be > 0 and finite, got {self.temperature}")
        if self.action_scaling not in ACTION_SCALINGS:
            raise ValueError(f"unknown action scaling {self.action_scaling!r}; expected one of {list(ACTION_SCALINGS)}")
        if self.network not in NETWORKS:
            raise ValueError(f"unknown network {self.network!r}; expected one of {list(NETWORKS)}")
        if not self.hidden or any(int(h) < 1 for h in self.hidden):
            raise ValueError(f"TrainConfig.hidden must be positive layer widths, got {self.hidden}")
        object.__setattr__(self, "hidden", tuple(int(h) for h in self.hidden))
        parts = self.ignore_observations
        if isinstance(parts, str) or len(set(parts)) != len(parts):
            raise ValueError(f"TrainConfig.ignore_observations must be distinct part names, got {parts!r}")
        object.__setattr__(self, "ignore_observations", tuple(str(n) for n in self.ignore_observations))

    @property
    def steps_per_epoch(self) -> int:
        return max(1, self.steps // min(self.epochs, self.steps))

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["hidden"] = list(self.hidden)
        d["ignore_observations"] = list(self.ignore_observations)
        return d

    @classmethod
    def for_task(cls, task: str | None, **overrides) -> "TrainConfig":
        """Defaults for ``task`` (number of updates), then ``overrides`` (None values ignored)."""
        kw = {"steps": TASK_STEPS.get(task, DEFAULT_STEPS)}
        kw.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**kw)


def _encoders(config: TrainConfig, obs_layout) -> tuple:
    """(policy encoder, value and Q encoder) factories for ``config.network``."""
    d3rlpy = lazy.d3rlpy()
    if config.network == "mlp":
        enc = d3rlpy.models.VectorEncoderFactory(hidden_units=list(config.hidden))
        return enc, enc
    try:
        layout = ObsLayout.from_list(obs_layout or [])
    except ValueError as exc:
        raise ValueError(f"the region network needs a routing observation: {exc}") from None
    kw = {"regions": layout.regions, "lookahead": layout.lookahead, "hidden": config.hidden[0]}
    return region_net.RegionEncoderFactory(**kw), region_net.RegionEncoderFactory(**kw, pool=True)


def observation_scaler(config: TrainConfig, obs_layout, observations: np.ndarray | None):
    """d3rlpy's standardization x' = (x - mean) / std, fitted on ``observations`` by d3rlpy, or here
    (the same population statistics) when parts are ignored: their mean 0, their std ``IGNORED_SCALE``."""
    d3rlpy = lazy.d3rlpy()
    if not config.ignore_observations:
        return d3rlpy.preprocessing.StandardObservationScaler()
    starts, i = {}, 0
    for name, size in obs_layout or []:
        starts[str(name)] = slice(i, i + int(size))
        i += int(size)
    unknown = [n for n in config.ignore_observations if n not in starts]
    if unknown:
        raise ValueError(f"cannot ignore observation parts {unknown}: the dataset's observation has {list(starts)}")
    if observations is None:
        raise ValueError("ignoring observation parts needs the observations to standardize the others")
    x = np.asarray(observations, np.float64)
    mean, std = x.mean(0), x.std(0)
    for name in config.ignore_observations:
        mean[starts[name]], std[starts[name]] = 0.0, IGNORED_SCALE
    return d3rlpy.preprocessing.StandardObservationScaler(mean=mean, std=std)


#: the least range (in the dataset's action units) ``minmax_action_scaler`` maps onto [-1, 1]
MIN_ACTION_RANGE = 1e-3


def minmax_action_scaler(actions: np.ndarray):
    """d3rlpy's ``MinMaxActionScaler`` with each dimension's [min, max] of ``actions`` (what its own fit
    finds), where narrower than ``MIN_ACTION_RANGE`` widened to it about the centre (a dimension the data
    never vary, such as a flow a region never sends, would otherwise divide by zero)."""
    d3rlpy = lazy.d3rlpy()
    lo, hi = np.min(actions, axis=0), np.max(actions, axis=0)
    narrow = hi - lo < MIN_ACTION_RANGE
    centre = (lo + hi) / 2.0
    lo = np.where(narrow, centre - MIN_ACTION_RANGE / 2.0, lo)
    hi = np.where(narrow, centre + MIN_ACTION_RANGE / 2.0, hi)
    return d3rlpy.preprocessing.MinMaxActionScaler(minimum=lo, maximum=hi)


def build(config: TrainConfig, obs_layout=None, observations: np.ndarray | None = None,
          actions: np.ndarray | None = None):
    """The d3rlpy algorithm object for ``config``, on the CPU (``obs_layout``: the dataset's, for ``region`` and
    ``ignore_observations``; ``observations``: the dataset's, for ``ignore_observations``; ``actions``: the
    dataset's, for ``action_scaling="minmax"``)."""
    d3rlpy = lazy.d3rlpy()

    enc, pooled = _encoders(config, obs_layout)
    common = {"batch_size": config.batch_size, "gamma": config.gamma,
              "observation_scaler": observation_scaler(config, obs_layout, observations)}
    if config.action_scaling == "minmax":
        if actions is None:
            raise ValueError("action_scaling 'minmax' needs the dataset's actions")
        common["action_scaler"] = minmax_action_scaler(actions)
    critic = {"actor_encoder_factory": enc, "critic_encoder_factory": pooled}
    if config.algo == "iql":
        algo = d3rlpy.algos.IQLConfig(**common, **critic, value_encoder_factory=pooled, expectile=0.7,
                                      weight_temp=config.temperature, max_weight=100.0)
    elif config.algo == "cql":
        algo = d3rlpy.algos.CQLConfig(**common, **critic, conservative_weight=5.0)
    elif config.algo == "calql":
        algo = d3rlpy.algos.CalQLConfig(**common, **critic, conservative_weight=5.0)
    elif config.algo == "td3bc":
        algo = d3rlpy.algos.TD3PlusBCConfig(**common, **critic, alpha=2.5)
    else:
        algo = d3rlpy.algos.BCConfig(**common, encoder_factory=enc, learning_rate=1e-3, policy_type="deterministic")
    return algo.create(device="cpu:0")

"""
The routing policy node's step, without middleware: a state in, a desired distribution out.

Sources:

- a goal-level heuristic of ``ohio_core.routing.policies`` (``demand_proportional``,
  ``random_distribution``, ``uniform``), built for the regions and lookahead of the states it
  sees; episode e resets it with a generator on ``SeedSequence([seed, e, 1])``, as ``rollout``
  does, so the node's distributions are those of a rollout with the same seed;
- a trained routing goal model (``ohio_core.learning.policy.load_policy``; torch and d3rlpy
  are loaded only then): task ``routing``, level ``goal``, observation layout an ``ObsLayout``
  and one action per region, decoded with ``ohio_core.routing.datasets.decode_distribution``
  around the state's idle distribution (the action is the change of it), as the routing
  experiment evaluates models. A model is refused at start if its task, level or layout is not
  that of a routing goal model, and a state whose observation layout differs from the model's
  gets no distribution (an error).
"""

from dataclasses import dataclass

import numpy as np
from ohio_core.learning.policy import load_policy
from ohio_core.routing.datasets import decode_distribution, idle_distribution
from ohio_core.routing.env import LEVEL_GOAL, ObsLayout
from ohio_core.routing.policies import make_routing_policy
from ohio_ros.config import ParameterError
from ohio_ros.routing.config import ROUTING_HEURISTICS
from ohio_ros.routing.convert import RoutingState

ROUTING_TASK = 'routing'


class PolicyMismatch(ValueError):
    """A state does not fit the policy (another number of regions or observation layout)."""


@dataclass(frozen=True)
class _Fleet:
    """
    What the goal-level heuristics read of a scenario: a name and the number of regions.

    They act on the observation alone (``ohio_core.routing.policies``); ``vehicles`` is read
    only by the flows-level dispatcher, which this node does not run.
    """

    name: str
    regions: int
    vehicles: int = 0


class RoutingPolicy:
    """A source of desired distributions: ``reset(episode)`` and ``decide(state) -> weights``."""

    source = ''

    def reset(self, episode: int) -> None:
        """Start episode ``episode``."""

    def decide(self, state: RoutingState) -> np.ndarray:
        """Nonnegative weights (n,) for ``state``; PolicyMismatch if the state does not fit."""
        raise NotImplementedError


class HeuristicPolicy(RoutingPolicy):
    """A goal-level behavior heuristic by name."""

    def __init__(self, name: str, seed: int = 0):
        if name not in ROUTING_HEURISTICS:
            raise ParameterError(f"parameter 'heuristic' must be one of "
                                 f'{list(ROUTING_HEURISTICS)}, got {name!r}')
        self.name, self.seed = name, int(seed)
        self.source = f'heuristic {name}'
        self._policy = None
        self._shape = None
        self._rng = np.random.default_rng(np.random.SeedSequence([self.seed, 0, 1]))

    def reset(self, episode: int) -> None:
        """Start episode ``episode``: a fresh generator, as ``rollout`` seeds it."""
        self._rng = np.random.default_rng(np.random.SeedSequence([self.seed, int(episode), 1]))
        if self._policy is not None:
            self._policy.reset(self._rng)

    def decide(self, state: RoutingState) -> np.ndarray:
        """Return the heuristic's weights for the state's observation."""
        shape = (state.regions, state.lookahead)
        if self._shape != shape:
            fleet = _Fleet(f'routing_state_{state.regions}_regions', state.regions)
            self._policy = make_routing_policy(self.name, fleet, state.lookahead)
            if self._policy.level != LEVEL_GOAL:
                raise ParameterError(f'heuristic {self.name!r} does not act at the goal level')
            self._policy.reset(self._rng)
            self._shape = shape
        return np.asarray(self._policy(state.obs), dtype=float)


class ModelPolicy(RoutingPolicy):
    """A trained routing goal model (``.meta`` and ``.act(obs)``), checked at construction."""

    def __init__(self, policy, path: str = '<model>'):
        meta = getattr(policy, 'meta', None)
        where = f"parameter 'model_path' ({path})"
        if not isinstance(meta, dict):
            raise ParameterError(f'{where}: the model has no meta dict')
        missing = [k for k in ('task', 'level', 'obs_layout', 'action_dim') if k not in meta]
        if missing:
            raise ParameterError(f'{where}: model meta lacks {missing}')
        if meta['task'] != ROUTING_TASK:
            raise ParameterError(f"{where}: model task is {meta['task']!r}; the routing policy "
                                 f'node runs {ROUTING_TASK!r} models')
        if meta['level'] != LEVEL_GOAL:
            raise ParameterError(f"{where}: model level is {meta['level']!r}; the routing policy "
                                 f'node runs goal-level models (desired distributions)')
        try:
            obs_layout = ObsLayout.from_list(meta['obs_layout'])
        except ValueError as exc:
            raise ParameterError(f'{where}: model {exc}') from None
        layout, n = obs_layout.as_list(), obs_layout.regions
        if n < 2:
            raise ParameterError(f'{where}: model observation layout {layout} is not a routing '
                                 f'ObsLayout of n >= 2 regions')
        if int(meta['action_dim']) != n:
            raise ParameterError(f"{where}: model action_dim {meta['action_dim']} is not one "
                                 f'weight per region ({n})')
        self.policy, self.path, self.obs_layout, self.regions = policy, path, layout, n
        self.source = f'model {path} ({n} regions)'

    def decide(self, state: RoutingState) -> np.ndarray:
        """Return the decoded action of the model for the state's observation."""
        if state.obs_layout != self.obs_layout:
            raise PolicyMismatch(f'the state has observation layout {state.obs_layout}, the model '
                                 f'{self.path} expects {self.obs_layout}')
        q = idle_distribution(state.obs[state.layout.idle])
        return decode_distribution(self.policy.act(state.obs), q)


def load_model(path: str) -> ModelPolicy:
    """Load a trained routing goal model with ``ohio_core.learning.policy.load_policy``."""
    try:
        policy = load_policy(path)
    except ImportError as exc:      # torch or d3rlpy missing
        raise ParameterError(f"parameter 'model_path': cannot load models here ({exc})") from None
    except FileNotFoundError as exc:
        raise ParameterError(f"parameter 'model_path': {exc}") from None
    except (OSError, ValueError, KeyError) as exc:
        raise ParameterError(f"parameter 'model_path': cannot load {path}: "
                             f'{type(exc).__name__}: {exc}') from None
    return ModelPolicy(policy, path)

"""
Typed, validated configurations of the routing nodes, built from ROS parameters (no middleware).

The rebalancing node's LP is configured by the ``rebalancing.*`` parameters
(``controllers.rebalancing.RebalancingConfig``). See ``ohio_ros.config`` for what the node
configs share.
"""

import dataclasses
from dataclasses import dataclass

from controllers import validate
from controllers.config import ConfigError
from controllers.rebalancing import RebalancingConfig
from ohio_core.routing.scenario import LAYOUTS
from ohio_ros.config import choice, flag, NodeConfig, number, ParameterError, string

REBALANCING_PREFIX = 'rebalancing.'
ROUTING_POLICY_SOURCES = ('heuristic', 'model')
#: the goal-level behavior heuristics of ``ohio_core.routing.policies``
ROUTING_HEURISTICS = ('demand_proportional', 'random_distribution', 'uniform')


@dataclass(frozen=True)
class RoutingSimNodeConfig(NodeConfig):
    """
    routing_sim_node: the scenario, episodes and the step protocol.

    The scenario is the AMoD JSON file ``scenario_file`` or, if that is empty, the synthetic
    city of ``regions`` regions on a ``layout`` (``grid``/``geometric``) drawn from ``seed``
    (``regions`` and ``layout`` are not used with a file). ``horizon``: steps per episode (0: the
    file's ``tf``, 60 for a synthetic city); ``vehicles``: fleet size (0: the scenario's).
    Episode e draws its requests from ``episode_seed(seed, e)``, as ``rollout`` does.
    ``lookahead``: steps of future arrivals in the observation.
    ``step_timeout``: seconds to wait for the flows of a step; then the fleet holds (zero flows,
    counted as a stale step). ``wait_for_flows``: until the first flows arrive, the first state
    is published again every ``step_timeout`` instead (no stale steps while the loop starts).
    ``start_subscribers``: the first state waits until ``routing/state`` has this many
    subscribers. ``max_episodes``: stop stepping after this many episodes (0: never).
    ``report_path``: if set, a JSON summary of the episodes written at shutdown.
    """

    scenario_file: str = ''
    regions: int = 8
    layout: str = 'grid'
    seed: int = 0
    horizon: int = 0
    vehicles: int = 0
    lookahead: int = 4
    step_timeout: float = 2.0
    wait_for_flows: bool = True
    start_subscribers: int = 0
    max_episodes: int = 0
    diagnostics_period: float = 1.0
    report_path: str = ''

    def __post_init__(self):
        string('scenario_file', self.scenario_file)
        for name, low in (('regions', 2), ('seed', 0), ('horizon', 0), ('vehicles', 0),
                          ('lookahead', 0), ('start_subscribers', 0), ('max_episodes', 0)):
            object.__setattr__(self, name, number(name, getattr(self, name), low=low,
                                                  integer=True))
        choice('layout', self.layout, LAYOUTS)
        for name in ('step_timeout', 'diagnostics_period'):
            object.__setattr__(self, name, number(name, getattr(self, name), low=0.0,
                                                  low_open=True))
        flag('wait_for_flows', self.wait_for_flows)
        string('report_path', self.report_path)


@dataclass(frozen=True)
class RebalancingNodeConfig(NodeConfig):
    """
    rebalancing_node: which goal it may use, and for how long it waits for one.

    A goal made for the state of step s (same episode) may be used at step t while
    ``t - s <= max_goal_age_steps``; an older one is stale (zero flows). ``goal_wait``: seconds
    to wait after a state for the goal made for that state before the latest valid one is used.
    The LP is configured by ``rebalancing.*`` (``RebalancingConfig``: ``cost_weight``,
    ``solver``, ``formulation``).
    """

    max_goal_age_steps: int = 2
    goal_wait: float = 0.5
    diagnostics_period: float = 1.0

    def __post_init__(self):
        object.__setattr__(self, 'max_goal_age_steps',
                           number('max_goal_age_steps', self.max_goal_age_steps, low=0,
                                  integer=True))
        object.__setattr__(self, 'goal_wait', number('goal_wait', self.goal_wait, low=0.0))
        object.__setattr__(self, 'diagnostics_period',
                           number('diagnostics_period', self.diagnostics_period, low=0.0,
                                  low_open=True))


@dataclass(frozen=True)
class RoutingPolicyNodeConfig(NodeConfig):
    """
    routing_policy_node: where the desired distributions come from.

    ``policy``: ``heuristic`` (``heuristic``: ``demand_proportional``, ``random_distribution`` or
    ``uniform``; the random one draws episode e from ``SeedSequence([seed, e, 1])``, as
    ``rollout`` does) or ``model`` (a trained routing goal model at ``model_path``).
    """

    policy: str = 'heuristic'
    heuristic: str = 'demand_proportional'
    model_path: str = ''
    seed: int = 0

    def __post_init__(self):
        choice('policy', self.policy, ROUTING_POLICY_SOURCES)
        choice('heuristic', self.heuristic, ROUTING_HEURISTICS)
        string('model_path', self.model_path)
        if self.policy == 'model' and not self.model_path:
            raise ParameterError("parameter 'model_path' must name a model file when "
                                 "policy is 'model' (or set policy: heuristic)")
        if self.policy == 'heuristic' and self.model_path:
            raise ParameterError("parameter 'model_path' is set but policy is 'heuristic'")
        object.__setattr__(self, 'seed', number('seed', self.seed, low=0, integer=True))


def rebalancing_defaults() -> dict:
    """Map ``rebalancing.*`` parameter names to the defaults of ``RebalancingConfig``."""
    return {REBALANCING_PREFIX + f.name: f.default
            for f in dataclasses.fields(RebalancingConfig)}


def rebalancing_config(params: dict):
    """Build the RebalancingConfig of ``rebalancing.*`` parameters; errors name the parameter."""
    known = set(rebalancing_defaults())
    validate.unknown_keys((n for n in params if n.startswith(REBALANCING_PREFIX)), known,
                          ParameterError, what='parameter')
    data = {name[len(REBALANCING_PREFIX):]: value for name, value in params.items()
            if name in known and value is not None}
    try:
        return RebalancingConfig.from_dict(data)
    except (ConfigError, TypeError) as exc:
        msg = str(exc).replace('RebalancingConfig.', REBALANCING_PREFIX)
        raise ParameterError(f'rebalancing parameters: {msg}') from None

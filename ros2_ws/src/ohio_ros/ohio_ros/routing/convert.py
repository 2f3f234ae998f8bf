"""
Routing messages <-> numpy arrays: pure functions, no middleware (unit-tested without DDS).

Every routing topic is a ``std_msgs/Float64MultiArray`` with one dimension whose label names
the blocks of ``data`` in order, with their sizes: ``<kind>_v<version>:<block>=<size>,...``.

===============================  ================================================================
topic (label kind)               blocks
===============================  ================================================================
``routing/state``                ``episode=1,step=1,idle=n,obs.idle=n,obs.arrivals=L*n,
(``ohio_routing_state``)         obs.demand=n,obs.time=3``: idle vehicles per region after the
                                 step's matching, then the observation (``ObsLayout`` of
                                 ``ohio_core.routing.env``)
``routing/desired_distribution`` ``episode=1,step=1,weights=n``: nonnegative weights
(``ohio_routing_distribution``)  (normalized by the rebalancing node) made for that step's state
``routing/flows``                ``episode=1,step=1,flows=n*n``: integer vehicles from i to j,
(``ohio_routing_flows``)         row-major, for that step's state
``routing/step_info``            ``episode=1,step=1,reward=1,...`` (``STEP_INFO_FIELDS``): what a
(``ohio_routing_step``)          step earned, and how its flows came about
``routing/travel_time``          ``travel_time=n*n``: steps from i to j, row-major (latched)
(``ohio_routing_travel_time``)
===============================  ================================================================

Distributions and flows without a label (plain ``data``, as ``ros2 topic pub`` sends them) are
accepted: they carry no step, and the receiver takes them for its current one.
"""

from dataclasses import dataclass

import numpy as np
from ohio_core.routing.env import ObsLayout
from std_msgs.msg import Float64MultiArray, MultiArrayDimension, MultiArrayLayout

VERSION = 1
STATE = 'ohio_routing_state'
DISTRIBUTION = 'ohio_routing_distribution'
FLOWS = 'ohio_routing_flows'
STEP_INFO = 'ohio_routing_step'
TRAVEL_TIME = 'ohio_routing_travel_time'
OBS_PREFIX = 'obs.'

#: ``routing/step_info`` fields: the step's reward (= revenue - trip_cost - rebalancing_cost) and
#: its parts, trips requested and served, vehicles moved by the flows, ``hold`` (HOLD_*: how the
#: flows came about) and, after the step, the idle vehicles and those on their way (their sum is
#: the fleet)
STEP_INFO_FIELDS = ('episode', 'step', 'reward', 'revenue', 'trip_cost', 'rebalancing_cost',
                    'requests', 'served', 'moved', 'hold', 'idle_next', 'in_transit_next')
#: ``hold`` values: flows applied, flows rejected (held), no flows within the step timeout (held)
HOLD_NONE, HOLD_REJECTED, HOLD_TIMEOUT = 0, 1, 2


class MessageError(ValueError):
    """A routing message cannot be converted (bad layout label, sizes or values)."""


# -- labels ----------------------------------------------------------------------------------


def layout_label(kind: str, blocks) -> str:
    """``<kind>_v<VERSION>:<name>=<size>,...`` of ``blocks`` [(name, size), ...]."""
    return f'{kind}_v{VERSION}:' + ','.join(f'{name}={int(size)}' for name, size in blocks)


def parse_label(label: str) -> tuple[str, int, list]:
    """Split ``'ohio_routing_flows_v1:episode=1,...'`` into (kind, version, [(block, size)])."""
    head, sep, body = label.partition(':')
    kind, _, version = head.rpartition('_v')
    if not sep or not kind or not version.isdigit():
        raise MessageError(f'not a routing layout label: {label[:80]!r} '
                           '(expected <kind>_v<version>:<block>=<size>,...)')
    blocks = []
    for item in body.split(','):
        name, eq, size = item.strip().partition('=')
        if not name or not eq or not size.strip().isdigit():
            raise MessageError(f'routing layout label {label[:200]!r}: bad block {item!r} '
                               '(expected <name>=<size>)')
        blocks.append((name, int(size)))
    names = [n for n, _ in blocks]
    if len(set(names)) != len(names):
        raise MessageError(f'routing layout label {label[:200]!r} repeats a block name')
    return kind, int(version), blocks


def _label(msg: Float64MultiArray) -> str:
    return msg.layout.dim[0].label if msg.layout.dim else ''


def same_message(a: Float64MultiArray | None, b: Float64MultiArray | None) -> bool:
    """Whether two messages carry the same label and the same values."""
    if a is None or b is None:
        return False
    return _label(a) == _label(b) and np.array_equal(np.asarray(a.data), np.asarray(b.data))


def _message(kind: str, blocks) -> Float64MultiArray:
    """Build a labelled message of ``blocks`` [(name, values), ...] in order."""
    arrays = [(name, np.asarray(values, dtype=float).reshape(-1)) for name, values in blocks]
    data = np.concatenate([a for _, a in arrays]) if arrays else np.zeros(0)
    label = layout_label(kind, [(name, a.size) for name, a in arrays])
    layout = MultiArrayLayout(dim=[MultiArrayDimension(label=label, size=data.size,
                                                       stride=data.size)])
    return Float64MultiArray(layout=layout, data=data.tolist())


def _blocks(msg: Float64MultiArray, kind: str) -> list:
    """[(name, values), ...] of a labelled message of ``kind``; MessageError otherwise."""
    got, _, blocks = parse_label(_label(msg))
    if got != kind:
        raise MessageError(f'expected a {kind} message, got a {got} message')
    need = sum(size for _, size in blocks)
    data = np.asarray(msg.data, dtype=float)
    if data.size != need:
        raise MessageError(f'{kind} message has {data.size} values, its layout names {need}')
    out, start = [], 0
    for name, size in blocks:
        out.append((name, data[start:start + size]))
        start += size
    return out


def _counter(kind: str, name: str, values) -> int:
    if values.size != 1 or not np.isfinite(values[0]) or values[0] != np.rint(values[0]) \
            or values[0] < 0:
        raise MessageError(f'{kind}: {name!r} must be one integer >= 0, got {values.tolist()}')
    return int(values[0])


def _stamp(kind: str, blocks: dict) -> tuple[int, int]:
    for name in ('episode', 'step'):
        if name not in blocks:
            raise MessageError(f'{kind} message lacks the block {name!r}')
    return _counter(kind, 'episode', blocks['episode']), _counter(kind, 'step', blocks['step'])


# -- state -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class RoutingState:
    """One step of the simulator: idle vehicles after matching, and the observation."""

    episode: int
    step: int
    idle: np.ndarray            # (n,) int64
    obs: np.ndarray             # (ObsLayout.size,) float
    lookahead: int

    @property
    def regions(self) -> int:
        """Return n, the number of regions."""
        return int(self.idle.shape[0])

    @property
    def layout(self) -> ObsLayout:
        """Return the observation's layout."""
        return ObsLayout(self.regions, self.lookahead)

    @property
    def obs_layout(self) -> list:
        """Return [[block, size], ...] of the observation (as model sidecars record it)."""
        return self.layout.as_list()

    @property
    def stamp(self) -> tuple[int, int]:
        """Return (episode, step)."""
        return self.episode, self.step


def state_msg(state: RoutingState) -> Float64MultiArray:
    """``routing/state`` message of a RoutingState."""
    obs = np.asarray(state.obs, dtype=float)
    blocks = [('episode', [state.episode]), ('step', [state.step]), ('idle', state.idle)]
    layout = state.layout
    if obs.shape != (layout.size,):
        raise ValueError(f'observation has shape {obs.shape}, its layout needs ({layout.size},)')
    for name, _ in layout.as_list():
        blocks.append((OBS_PREFIX + name, obs[getattr(layout, name)]))
    return _message(STATE, blocks)


def state_from_msg(msg: Float64MultiArray) -> RoutingState:
    """Read a ``routing/state`` message; MessageError if unusable."""
    blocks = _blocks(msg, STATE)
    named = dict(blocks)
    episode, step = _stamp(STATE, named)
    if 'idle' not in named:
        raise MessageError("routing state lacks the block 'idle'")
    idle = named['idle']
    n = idle.size
    if n < 2 or not np.isfinite(idle).all() or (idle != np.rint(idle)).any() or (idle < 0).any():
        raise MessageError(f'routing state: idle must be n >= 2 integers >= 0, '
                           f'got {idle.tolist()}')
    obs_blocks = [(name[len(OBS_PREFIX):], values) for name, values in blocks
                  if name.startswith(OBS_PREFIX)]
    sizes = [[name, values.size] for name, values in obs_blocks]
    arrivals = dict(sizes).get('arrivals')
    lookahead = None if arrivals is None else arrivals // n
    if lookahead is None or sizes != ObsLayout(n, lookahead).as_list():
        raise MessageError(f'routing state: observation blocks {sizes} are not the ObsLayout of '
                           f'{n} regions (idle, arrivals, demand, time)')
    obs = np.concatenate([values for _, values in obs_blocks])
    if not np.isfinite(obs).all():
        raise MessageError('routing state: the observation is not finite')
    return RoutingState(episode, step, idle.astype(np.int64), obs, lookahead)


# -- desired distribution --------------------------------------------------------------------


def distribution_msg(weights, episode: int, step: int) -> Float64MultiArray:
    """``routing/desired_distribution`` message: weights made for the state (episode, step)."""
    return _message(DISTRIBUTION, [('episode', [episode]), ('step', [step]),
                                   ('weights', weights)])


def _payload(msg: Float64MultiArray, kind: str, block: str, what: str):
    """(values, (episode, step) or None): all data of an unlabeled message, else its ``block``."""
    if not _label(msg):
        return np.asarray(msg.data, dtype=float), None
    named = dict(_blocks(msg, kind))
    stamp = _stamp(kind, named)
    if block not in named:
        raise MessageError(f"{what} lacks the block '{block}'")
    return named[block], stamp


def distribution_from_msg(msg: Float64MultiArray):
    """
    (weights (n,), (episode, step) or None) of a desired-distribution message.

    A message without a label is plain weights (no step). Weights must be finite and >= 0
    (MessageError naming what is wrong); the receiver checks n against the state.
    """
    weights, stamp = _payload(msg, DISTRIBUTION, 'weights', 'desired distribution')
    if weights.size < 2:
        raise MessageError(f'desired distribution needs n >= 2 weights, got {weights.size}')
    if not np.isfinite(weights).all():
        raise MessageError(f'desired distribution is not finite: {weights.tolist()}')
    if (weights < 0).any():
        raise MessageError(f'desired distribution has negative weights: {weights.tolist()}')
    return weights, stamp


# -- flows -----------------------------------------------------------------------------------


def flows_msg(flows, episode: int, step: int) -> Float64MultiArray:
    """``routing/flows`` message: flows (n, n) for the state (episode, step), row-major."""
    flows = np.asarray(flows)
    if flows.ndim != 2 or flows.shape[0] != flows.shape[1]:
        raise ValueError(f'flows must have shape (n, n), got {flows.shape}')
    return _message(FLOWS, [('episode', [episode]), ('step', [step]), ('flows', flows)])


def flows_from_msg(msg: Float64MultiArray, regions: int):
    """
    (flows (n, n) float, (episode, step) or None) of a flows message, shaped for ``regions``.

    A message without a label is plain n * n values (no step). Values are returned as sent:
    whether they are feasible (finite integers >= 0 within the idle vehicles) is the
    simulator's check (``ohio_core.routing.sim.check_flows``).
    """
    values, stamp = _payload(msg, FLOWS, 'flows', 'flows message')
    if values.size != regions * regions:
        raise MessageError(f'flows message has {values.size} values, expected {regions} x '
                           f'{regions} = {regions * regions}')
    return values.reshape(regions, regions), stamp


# -- step info -------------------------------------------------------------------------------


def step_info_msg(info: dict) -> Float64MultiArray:
    """``routing/step_info`` message of ``info`` {field: number} (every STEP_INFO_FIELDS)."""
    return _message(STEP_INFO, [(name, [float(info[name])]) for name in STEP_INFO_FIELDS])


def step_info_from_msg(msg: Float64MultiArray) -> dict:
    """{field: float} of a step-info message (the fields its label names)."""
    return {name: float(values[0]) for name, values in _blocks(msg, STEP_INFO)
            if values.size == 1}


# -- travel times ----------------------------------------------------------------------------


def travel_time_msg(travel_time) -> Float64MultiArray:
    """``routing/travel_time`` message: steps (n, n) from i to j, row-major."""
    return _message(TRAVEL_TIME, [('travel_time', np.asarray(travel_time))])


def travel_time_from_msg(msg: Float64MultiArray) -> np.ndarray:
    """(n, n) int64 travel times; MessageError unless n * n integers >= 1."""
    named = dict(_blocks(msg, TRAVEL_TIME))
    tt = named.get('travel_time')
    if tt is None:
        raise MessageError("travel-time message lacks the block 'travel_time'")
    n = int(round(np.sqrt(tt.size)))
    if n < 2 or n * n != tt.size or not np.isfinite(tt).all() or (tt != np.rint(tt)).any() \
            or (tt < 1).any():
        raise MessageError(f'travel times must be n x n integers >= 1, got {tt.size} values')
    return tt.reshape(n, n).astype(np.int64)

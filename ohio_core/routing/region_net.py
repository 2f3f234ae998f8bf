"""Region-shared networks for routing policies: one small network applied to every region.

A routing observation (``routing.env.ObsLayout``) is a set of regions, each with the same
local features x_i = (idle_i, arrivals_{1..L, i}, demand_i), plus the time. A plain MLP on the
flat vector has to learn each region separately and overfits noisy data; here the same weights
serve every region (a deep set, Zaheer et al. 2017):

    h_i = phi([x_i, time])                    per region, shared weights
    g   = mean_i h_i                          fleet-wide context
    z_i = psi([h_i, g])                       per region, shared weights (size ``feature``)

The policy encoder returns the z_i side by side (n * feature; the d3rlpy head maps them to the n
actions); the value encoder returns [mean_i z_i, max_i z_i]. The Q encoder appends the action's
entry a_i to x_i (action i belongs to region i, as in ``routing.datasets.encode_distribution``),
then pools the same way, so Q(s, a) is learned from every region's (x_i, a_i) at once.

``RegionEncoderFactory`` is a d3rlpy encoder factory. The networks subclass torch's and d3rlpy's classes, so
they are defined by ``networks()`` on first use (an attribute of this module such as ``RegionEncoderFactory``
calls it): importing the module loads neither torch nor d3rlpy. ``networks()`` registers the factory with
d3rlpy, so saved models load (``learning.policy.load_policy`` calls it first).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from types import SimpleNamespace

from ohio_core import lazy
from ohio_core.routing.env import ObsLayout

#: the networks ``networks()`` defines, also found as attributes of this module
NETWORKS = ("RegionSet", "RegionEncoder", "RegionEncoderWithAction", "RegionEncoderFactory")


@functools.cache
def networks() -> SimpleNamespace:
    """The torch modules and the d3rlpy encoder factory (module docstring), defined on the first call, which
    loads torch and d3rlpy (importing this module does not), with the factory registered with d3rlpy."""
    torch, d3rlpy = lazy.torch(), lazy.d3rlpy()
    nn = torch.nn

    def _mlp(sizes: list[int]) -> nn.Sequential:
        layers: list[nn.Module] = []
        for a, b in zip(sizes[:-1], sizes[1:]):
            layers += [nn.Linear(a, b), nn.ReLU()]
        return nn.Sequential(*layers)

    class RegionSet(nn.Module):
        """(B, obs) [+ (B, n) action] -> z (B, n, feature) (module docstring)."""

        def __init__(self, regions: int, lookahead: int, hidden: int, feature: int, action: bool):
            super().__init__()
            self.layout = ObsLayout(regions, lookahead)
            local = 2 + lookahead + 3 + (1 if action else 0)
            self.phi = _mlp([local, hidden, hidden])
            self.psi_h, self.psi_g = nn.Linear(hidden, hidden), nn.Linear(hidden, hidden, bias=False)
            self.psi_out = _mlp([hidden, feature])

        def local(self, obs: torch.Tensor, action: torch.Tensor | None = None) -> torch.Tensor:
            """x_i (B, n, 2 + L + 3 [+ 1]): the region's blocks, the time, the region's action."""
            blocks = self.layout.split(obs)
            B, n = obs.shape[0], self.layout.regions
            parts = [blocks["idle"].unsqueeze(-1), blocks["arrivals"].transpose(1, 2), blocks["demand"].unsqueeze(-1),
                     blocks["time"].unsqueeze(1).expand(B, n, 3)]
            return torch.cat(parts + ([action.unsqueeze(-1)] if action is not None else []), -1)

        def forward(self, obs: torch.Tensor, action: torch.Tensor | None = None) -> torch.Tensor:
            h = self.phi(self.local(obs, action))
            g = self.psi_g(h.mean(1, keepdim=True))             # psi's first layer on [h_i, g], split
            return self.psi_out(torch.relu(self.psi_h(h) + g))

    class RegionEncoder(d3rlpy.models.torch.Encoder):
        def __init__(self, regions: int, lookahead: int, hidden: int, feature: int, pool: bool):
            super().__init__()
            self.net, self.pool = RegionSet(regions, lookahead, hidden, feature, action=False), pool

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            z = self.net(x)
            return torch.cat([z.mean(1), z.amax(1)], -1) if self.pool else z.flatten(1)

    class RegionEncoderWithAction(d3rlpy.models.torch.EncoderWithAction):
        def __init__(self, regions: int, lookahead: int, hidden: int, feature: int):
            super().__init__()
            self.net = RegionSet(regions, lookahead, hidden, feature, action=True)

        def forward(self, x: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
            z = self.net(x, action)
            return torch.cat([z.mean(1), z.amax(1)], -1)

    @dataclass()
    class RegionEncoderFactory(d3rlpy.models.EncoderFactory):
        """Region-shared encoders for an observation of ``regions`` regions and ``lookahead`` steps.

        ``pool``: the state encoder returns pooled features (for V) instead of per-region ones (for
        the policy); the state-action encoder always pools."""

        regions: int = 1
        lookahead: int = 0
        hidden: int = 64
        feature: int = 16
        pool: bool = False

        def _check(self, observation_shape) -> None:
            size = ObsLayout(self.regions, self.lookahead).size
            if tuple(observation_shape) != (size,):
                raise ValueError(f"region encoder for {self.regions} regions and lookahead {self.lookahead} expects "
                                 f"observations of size {size}, got shape {tuple(observation_shape)}")

        def create(self, observation_shape) -> RegionEncoder:
            self._check(observation_shape)
            return RegionEncoder(self.regions, self.lookahead, self.hidden, self.feature, self.pool)

        def create_with_action(self, observation_shape, action_size: int,
                               discrete_action: bool = False) -> RegionEncoderWithAction:
            self._check(observation_shape)
            if discrete_action or action_size != self.regions:
                raise ValueError(f"region encoder needs one continuous action per region ({self.regions}), "
                                 f"got {action_size}{' discrete' if discrete_action else ''}")
            return RegionEncoderWithAction(self.regions, self.lookahead, self.hidden, self.feature)

        @staticmethod
        def get_type() -> str:
            return "ohio_region"

    defined = SimpleNamespace(RegionSet=RegionSet, RegionEncoder=RegionEncoder,
                              RegionEncoderWithAction=RegionEncoderWithAction,
                              RegionEncoderFactory=RegionEncoderFactory)
    for cls in vars(defined).values():
        cls.__qualname__ = cls.__name__     # pickled by reference as ``<this module>.<name>``
    d3rlpy.models.register_encoder_factory(RegionEncoderFactory)
    return defined


def __getattr__(name: str):
    """``region_net.RegionEncoderFactory`` and the other ``NETWORKS``, from ``networks()``."""
    if name in NETWORKS:
        return getattr(networks(), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

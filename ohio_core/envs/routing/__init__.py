"""Fleet rebalancing (autonomous mobility on demand): scenarios, simulator and gymnasium envs.

``scenario`` (regions, demand, prices, fleet; synthetic cities and the public AMoD JSON format),
``sim`` (vehicle bookkeeping, trip matching, the flat policies' flow projection) and ``env``
(``RoutingEnv``: a desired distribution of idle vehicles per step, turned into flows by a
rebalancing controller passed in; ``FlatRoutingEnv``: per-edge flows; ``rollout`` and its log).
"""

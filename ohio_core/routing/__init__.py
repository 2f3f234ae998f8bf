"""Fleet rebalancing (autonomous mobility on demand): the whole routing domain in one package.

The city and its simulation: ``scenario`` (regions, demand, prices, fleet; synthetic cities),
``scenario_io`` (the public AMoD JSON format), ``city`` (which city a run uses, as result.json and
model sidecars record it), ``sim`` (vehicle bookkeeping, trip matching) and
``env`` (``RoutingEnv``: a desired distribution of idle vehicles per step, turned into flows by a
rebalancing controller passed in; ``FlatRoutingEnv``: per-edge flows; ``rollout`` and its log).
``policies``: the behavior heuristics. The offline side: ``inverse`` (the rebalancing LP's closed-form
inverse), ``datasets`` (relabeled and flat datasets, the action encodings), ``region_net`` (networks
shared by the regions), ``experiment`` (OHIO against the flat policy) and ``bench``. The LP itself is
a controller: ``controllers.rebalancing``.
"""

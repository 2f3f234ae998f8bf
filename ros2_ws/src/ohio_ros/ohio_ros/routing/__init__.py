"""The routing nodes: fleet simulator, rebalancing LP and routing policy, with their configs."""

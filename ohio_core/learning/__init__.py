"""Offline training (d3rlpy), trained policies on disk, and evaluation in the simulator."""

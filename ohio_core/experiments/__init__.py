"""Experiments that measure the method against baselines."""

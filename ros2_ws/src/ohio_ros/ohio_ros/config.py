"""
What the typed node configurations share (no middleware here).

Each node config is a frozen dataclass whose field names are the node's parameter names
(``NodeConfig``); ``from_params`` checks types and ranges and raises ``ParameterError`` naming the
parameter. The checks are those of ``controllers.validate``, with the parameter's name in the
message. The arm nodes' configs are in ``ohio_ros.arm.config``, the routing nodes' in
``ohio_ros.routing.config``.
"""

import dataclasses

from controllers import validate


#: the rclpy executors a node may be spun by (``ohio_ros.runtime.make_executor``)
EXECUTORS = ('events', 'single_threaded', 'multi_threaded')
#: what an ``executor`` parameter may name: ``EXECUTORS`` or ``auto`` (``resolve_executor``)
EXECUTOR_CHOICES = ('auto',) + EXECUTORS


class ParameterError(ValueError):
    """A node parameter has a wrong type or value; the message names the parameter."""


def label(name: str) -> str:
    """How an error message names the parameter ``name``."""
    return f'parameter {name!r}'


def number(name, value, **bounds):
    """``value`` of parameter ``name`` as a number within ``bounds`` (``validate.number``)."""
    return validate.number(label(name), value, ParameterError, **bounds)


def choice(name, value, choices):
    """``value`` of parameter ``name``, one of ``choices``."""
    return validate.choice(label(name), value, choices, ParameterError)


def string(name, value):
    """``value`` of parameter ``name``, a string."""
    return validate.string(label(name), value, ParameterError)


def flag(name, value):
    """``value`` of parameter ``name``, a bool."""
    return validate.flag(label(name), value, ParameterError)


def resolve_executor(kind: str, use_sim_time: bool) -> str:
    """
    Name the executor (one of ``EXECUTORS``) that an ``executor`` parameter of ``kind`` selects.

    ``auto``: ``events`` on the wall clock, ``single_threaded`` on simulated time, where rclpy
    7.1's EventsExecutor now and then missed the timer a ``/clock`` step made due (a lockstep
    simulator, which waits for that tick's command, then stalled until its timeout).
    """
    if kind == 'auto':
        return 'single_threaded' if use_sim_time else 'events'
    return choice('executor', kind, EXECUTORS)


class NodeConfig:
    """Base: ``from_params`` / ``defaults`` shared by the node configs."""

    @classmethod
    def defaults(cls) -> dict:
        """Parameter name -> default value (what a node declares)."""
        return {f.name: list(f.default) if isinstance(f.default, tuple) else f.default
                for f in dataclasses.fields(cls)}

    @classmethod
    def from_params(cls, params: dict):
        """Build from {parameter name: value}; unknown names are an error naming them."""
        validate.unknown_keys(params, (f.name for f in dataclasses.fields(cls)), ParameterError,
                              what='parameter')
        return cls(**params)

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


#: what the ``executor`` parameter of a node may name (``ohio_ros.runtime.make_executor``)
EXECUTORS = ('events', 'single_threaded', 'multi_threaded')


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

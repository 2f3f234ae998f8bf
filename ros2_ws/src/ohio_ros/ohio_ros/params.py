"""Declare a node's parameters from a defaults mapping and read them back as plain values."""

from array import array

from ohio_ros.config import ParameterError
from rcl_interfaces.msg import ParameterDescriptor
from rclpy.node import Node

#: parameters every rclpy node has; never reported as unknown
_BUILTIN = ('use_sim_time', 'start_type_description_service')


def declare(node: Node, defaults: dict) -> dict:
    """
    Declare ``defaults`` (name -> value, None: no default) and return name -> value.

    Parameters are dynamically typed (a YAML ``1`` is accepted where ``1.0`` is meant); the
    typed node configs check the values. Integer arrays come back as lists of ints.
    """
    out = {}
    for name, default in defaults.items():
        descriptor = ParameterDescriptor(name=name, dynamic_typing=True)
        if default is None:
            node.declare_parameter(name, None, descriptor)
        else:
            node.declare_parameter(name, default, descriptor)
        value = node.get_parameter(name).value
        out[name] = list(value) if isinstance(value, (array, list, tuple)) else value
    return out


def check_unknown(node: Node, known) -> None:
    """
    Raise ParameterError for parameter overrides (params file, -p) the node never declared.

    A typo in a parameters file then stops the node instead of silently keeping a default.
    """
    overrides = getattr(node, '_parameter_overrides', None) or {}
    allowed = set(known) | set(_BUILTIN)
    unknown = sorted(n for n in overrides
                     if n not in allowed and not n.startswith('qos_overrides.'))
    if unknown:
        raise ParameterError(f'unknown parameter(s) {unknown} for node {node.get_name()!r}; '
                             f'known: {sorted(known)}')

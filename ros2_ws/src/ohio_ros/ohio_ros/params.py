"""Declare a node's parameters from a defaults mapping and read them back as plain values."""

from array import array

from ohio_ros.config import CONFIG_TYPES, controller_config, controller_defaults
from ohio_ros.config import CONTROLLER_PREFIX, ParameterError
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


def declare_controller(node: Node, required=None) -> tuple:
    """
    Declare ``controller.type`` and that type's ``controller.*`` fields.

    ``required`` (name -> what to set) are declared without a default: unset, a ParameterError.
    Returns the typed controller config (``OSCConfig``/``QPConfig``) and the names declared.
    """
    required = required or {}
    type_name = CONTROLLER_PREFIX + 'type'
    kind = declare(node, {type_name: 'osc'})[type_name]
    if kind not in CONFIG_TYPES:
        raise ParameterError(f'parameter {type_name!r} must be one of {sorted(CONFIG_TYPES)}, '
                             f'got {kind!r}')
    defaults = {k: None if k in required else v
                for k, v in controller_defaults(kind).items() if k != type_name}
    values = declare(node, defaults)
    for name, hint in required.items():
        if values.get(name) is None:
            raise ParameterError(f'parameter {name!r} must be set for node {node.get_name()!r} '
                                 f'(it has no default): {hint}')
    values[type_name] = kind
    return controller_config(values), list(values)

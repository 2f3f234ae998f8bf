"""Declare the arm nodes' ``controller.*`` parameters and build the controller config of them."""

from controllers.config import CONFIG_TYPES
from ohio_ros.arm.config import controller_config, controller_defaults, CONTROLLER_PREFIX
from ohio_ros.config import ParameterError
from ohio_ros.params import declare
from rclpy.node import Node


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

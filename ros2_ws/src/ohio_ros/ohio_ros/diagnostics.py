"""Periodic ``/diagnostics`` status of a node."""

from diagnostic_msgs.msg import DiagnosticArray
from ohio_ros import convert, names, qos


def publish_periodically(node, name: str, period: float, report):
    """
    Publish ``report() -> (level, message, values)`` as status ``name`` every ``period`` seconds.

    Stamped with the node's clock; returns the timer.
    """
    publisher = node.create_publisher(DiagnosticArray, names.DIAGNOSTICS, qos.RELIABLE)

    def publish() -> None:
        level, message, values = report()
        stamp = node.get_clock().now().nanoseconds
        publisher.publish(convert.diagnostic_array(stamp, name, level, message, values))

    return node.create_timer(period, publish)

"""``/diagnostics``: status messages <-> plain values, and a node's periodic status."""

from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from ohio_ros import names, qos
from rclpy.time import Time

LEVELS = {'ok': DiagnosticStatus.OK, 'warn': DiagnosticStatus.WARN,
          'error': DiagnosticStatus.ERROR, 'stale': DiagnosticStatus.STALE}


def _text(v) -> str:
    if isinstance(v, bool):
        return 'true' if v else 'false'
    if isinstance(v, float):
        return f'{v:.6g}'
    return str(v)


def diagnostic_array(stamp: int, name: str, level: str, message: str, values: dict,
                     hardware_id: str = '') -> DiagnosticArray:
    """diagnostic_msgs/DiagnosticArray with one status; ``values`` become key/value strings."""
    status = DiagnosticStatus(level=LEVELS[level], name=name, message=message,
                              hardware_id=hardware_id,
                              values=[KeyValue(key=k, value=_text(v)) for k, v in values.items()])
    msg = DiagnosticArray(status=[status])
    msg.header.stamp = Time(nanoseconds=stamp).to_msg()
    return msg


def diagnostic_values(msg: DiagnosticArray) -> dict:
    """{status name: {key: value string}} of a DiagnosticArray (for tools and tests)."""
    return {s.name: {kv.key: kv.value for kv in s.values} for s in msg.status}


def publish_periodically(node, name: str, period: float, report):
    """
    Publish ``report() -> (level, message, values)`` as status ``name`` every ``period`` seconds.

    Stamped with the node's clock; returns the timer.
    """
    publisher = node.create_publisher(DiagnosticArray, names.DIAGNOSTICS, qos.RELIABLE)

    def publish() -> None:
        level, message, values = report()
        stamp = node.get_clock().now().nanoseconds
        publisher.publish(diagnostic_array(stamp, name, level, message, values))

    return node.create_timer(period, publish)

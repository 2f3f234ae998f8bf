"""Process entry of every node: init, build, spin, clean shutdown, exit status."""

import os
from pathlib import Path
import sys

from controllers.config import ConfigError
from ohio_ros.config import ParameterError
import rclpy
from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor
from rclpy.impl.implementation_singleton import rclpy_implementation as _rclpy

EXIT_PARAMETERS = 2
RCLError = _rclpy.RCLError


def use_installed_description() -> None:
    """
    Point ohio_core at the robot description installed in ohio_ros's share directory.

    Only where ``OHIO_URDF_DIR`` is unset and the package is installed (colcon, ROS 2); from
    the source tree ohio_core finds ``urdf/`` itself.
    """
    if os.environ.get('OHIO_URDF_DIR'):
        return
    try:
        from ament_index_python.packages import get_package_share_directory
        share = Path(get_package_share_directory('ohio_ros')) / 'urdf'
    except (ImportError, LookupError, OSError, ValueError):
        return
    if (share / 'panda.urdf').is_file():
        os.environ['OHIO_URDF_DIR'] = str(share)


def set_realtime_priority(priority: int) -> str | None:
    """
    Run every thread of this process under SCHED_FIFO at ``priority`` (1..98).

    Threads started later inherit it. Returns None on success, else why it was not possible
    (the node then keeps the default scheduling, as ros2_control does without permission).
    """
    try:
        param = os.sched_param(priority)
        for tid in os.listdir('/proc/self/task'):
            os.sched_setscheduler(int(tid), os.SCHED_FIFO, param)
    except (AttributeError, OSError) as exc:
        return f'{type(exc).__name__}: {exc}'
    return None


def run(node_factory, name: str, args=None) -> int:
    """
    Create the node with ``node_factory()``, spin it until shutdown, close it.

    Returns 0 after a normal shutdown (Ctrl-C, SIGTERM) and EXIT_PARAMETERS when the node's
    parameters are invalid (the error names the parameter).
    """
    use_installed_description()
    rclpy.init(args=sys.argv if args is None else args)
    node = None
    try:
        try:
            node = node_factory()
        except (ParameterError, ConfigError, FileNotFoundError) as exc:
            rclpy.logging.get_logger(name).fatal(f'invalid configuration: {exc}')
            print(f'{name}: invalid configuration: {exc}', file=sys.stderr, flush=True)
            return EXIT_PARAMETERS
        executor = SingleThreadedExecutor()
        executor.add_node(node)
        try:
            executor.spin()
        except (KeyboardInterrupt, ExternalShutdownException):
            pass
        except RCLError:
            if node.context.ok():      # not a shutdown racing the executor: a real failure
                raise
        return 0
    finally:
        if node is not None:
            close = getattr(node, 'close', None)
            if close is not None:
                close()
            node.destroy_node()
        rclpy.try_shutdown()

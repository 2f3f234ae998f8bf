"""
Process entry of every node: init, build, spin, ordered shutdown, exit status.

A stop request (SIGINT or SIGTERM) never raises inside the executor and never shuts the
context down under it (rclpy's own signal handlers do both: a KeyboardInterrupt can land inside
``take_message``, and the context can become invalid while the executor builds its wait set).
The first request is recorded and wakes the executor, which stops between two callbacks; the
node then shuts down in the order rclpy requires: stop spinning, close the node (e.g. the
recorder's bag), destroy its entities and the node, shut the context down. Every stop request
ends with exit status 0; later ones are ignored. The middleware's part of the teardown (destroy
the node, shut the context down) is bounded: it hung in ``rcl_node_fini`` in about 1 of 100
stops on a loaded machine, and then, after ``TEARDOWN_TIMEOUT`` s, every thread's stack goes to
stderr and the process exits with status 1 (the node's own ``close`` has run by then).
"""

import faulthandler
import os
from pathlib import Path
import signal
import sys
import threading

from ament_index_python.packages import get_package_share_directory
from controllers.config import ConfigError
from ohio_ros.config import EXECUTORS, ParameterError
import rclpy
from rclpy.executors import (Executor, ExternalShutdownException, MultiThreadedExecutor,
                             SingleThreadedExecutor)
from rclpy.experimental import EventsExecutor
from rclpy.signals import SignalHandlerOptions
from rclpy.task import Future

EXIT_PARAMETERS = 2
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)
#: seconds the middleware teardown may take before the process gives up on it (stacks, status 1)
TEARDOWN_TIMEOUT = 20.0
#: seconds an EventsExecutor waits for an event before the stop request is checked again
STOP_POLL = 0.05


def use_installed_description() -> None:
    """
    Point ohio_core at the robot descriptions installed in ohio_ros's share directory.

    Where the package is installed (colcon, ROS 2): the Panda's URDF where ``OHIO_URDF_DIR`` is
    unset, and the robot files (``config/robots``) appended to ``OHIO_ROBOT_PATH``. From the source
    tree ohio_core finds ``urdf/`` and ``config/robots`` itself.
    """
    try:
        share = Path(get_package_share_directory('ohio_ros'))
    except (LookupError, OSError, ValueError):
        return
    if not os.environ.get('OHIO_URDF_DIR') and (share / 'urdf' / 'panda.urdf').is_file():
        os.environ['OHIO_URDF_DIR'] = str(share / 'urdf')
    robots = share / 'config' / 'robots'
    path = os.environ.get('OHIO_ROBOT_PATH', '')
    if robots.is_dir() and str(robots) not in path.split(os.pathsep):
        os.environ['OHIO_ROBOT_PATH'] = os.pathsep.join(filter(None, [path, str(robots)]))


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


def make_executor(kind: str = 'single_threaded', context=None):
    """
    Build the rclpy executor ``kind`` names (``ohio_ros.config.EXECUTORS``) on ``context``.

    ``events`` is rclpy's EventsExecutor (``rclpy.experimental``): it dispatches callbacks from
    C++ as events arrive instead of rebuilding a wait set in Python for each, which costs a node
    that takes joint states at 500 Hz much less CPU and runs its timer closer to time.
    """
    if kind == 'events':
        return EventsExecutor(context=context)
    if kind == 'single_threaded':
        return SingleThreadedExecutor(context=context)
    if kind == 'multi_threaded':
        return MultiThreadedExecutor(context=context)
    raise ValueError(f'executor must be one of {list(EXECUTORS)}, got {kind!r}')


def _ignore(_signum, _frame) -> None:
    """Python-level handler of a stop signal: nothing (``StopRequest`` acts on it)."""


class StopRequest:
    """
    The first SIGINT/SIGTERM of the process, as a flag that also ends ``spin``.

    Python's C-level handler writes the signal number to a wakeup pipe from whichever thread
    the signal hit (a DDS thread too); a watcher thread reads it, records the request and
    completes the future the executor spins on, which wakes it from ``rcl_wait``. The
    Python-level handlers do nothing, so no exception is raised in the main thread. Later
    requests are ignored, up to the process's exit: ``close`` sets the signals to SIG_IGN
    (Python resets its own handlers to SIG_DFL while the interpreter finalizes, where a second
    Ctrl-C would kill the process with SIGINT).
    """

    def __init__(self):
        self.signal: int | None = None
        self._future: Future | None = None
        self._lock = threading.Lock()
        for sig in STOP_SIGNALS:
            signal.signal(sig, _ignore)
        self._read, self._write = os.pipe()
        os.set_blocking(self._write, False)
        self._previous_fd = signal.set_wakeup_fd(self._write, warn_on_full_buffer=False)
        self._thread = threading.Thread(target=self._watch, name='stop_request', daemon=True)
        self._thread.start()

    def _watch(self) -> None:
        with os.fdopen(self._read, 'rb', buffering=0) as pipe:
            while data := pipe.read(64):
                for signum in data:
                    if signum in STOP_SIGNALS:
                        self._request(signum)

    def _request(self, signum: int) -> None:
        with self._lock:
            if self.signal is None:
                self.signal = signum
                if self._future is not None:
                    self._future.set_result(signum)

    def spin(self, executor) -> None:
        """
        Spin ``executor`` until the first stop request (at once if one came already).

        An EventsExecutor spins one event at a time, the request checked every ``STOP_POLL`` s
        at the latest: its ``spin_until_future_complete`` (rclpy 7.1) runs no timers, and a
        future completed from another thread blocks that thread.
        """
        if not isinstance(executor, Executor):
            while self.signal is None and executor.context.ok():
                executor.spin_once(timeout_sec=STOP_POLL)
            return
        future = Future()
        with self._lock:
            if self.signal is not None:
                return
            self._future = future
        try:
            executor.spin_until_future_complete(future)
        finally:
            with self._lock:
                self._future = None

    def close(self) -> None:
        """Stop watching; from now on the stop signals are ignored."""
        for sig in STOP_SIGNALS:
            signal.signal(sig, signal.SIG_IGN)
        signal.set_wakeup_fd(self._previous_fd)
        os.close(self._write)
        self._thread.join(timeout=5.0)


def run(node_factory, name: str, args=None) -> int:
    """
    Create the node with ``node_factory()``, spin it until a stop request, shut it down.

    The node's ``executor_kind`` attribute, where it has one, names its executor
    (``make_executor``; default ``single_threaded``).

    Returns 0 after a stop request (Ctrl-C, SIGTERM; also one that came while the node was
    being built) or an external shutdown of the context, and EXIT_PARAMETERS when the node's
    parameters are invalid (the error names the parameter).
    """
    use_installed_description()
    stop = StopRequest()
    rclpy.init(args=sys.argv if args is None else args,
               signal_handler_options=SignalHandlerOptions.NO)
    node = executor = None
    try:
        try:
            node = node_factory()
        except (ParameterError, ConfigError, FileNotFoundError) as exc:
            rclpy.logging.get_logger(name).fatal(f'invalid configuration: {exc}')
            print(f'{name}: invalid configuration: {exc}', file=sys.stderr, flush=True)
            return EXIT_PARAMETERS
        executor = make_executor(getattr(node, 'executor_kind', 'single_threaded'))
        executor.add_node(node)
        try:
            stop.spin(executor)
        except ExternalShutdownException:
            pass
        return 0
    finally:
        if executor is not None:
            executor.shutdown()
        try:
            if node is not None:
                try:
                    close = getattr(node, 'close', None)
                    if close is not None:
                        close()
                finally:
                    faulthandler.dump_traceback_later(TEARDOWN_TIMEOUT, exit=True)
                    node.destroy_node()
        finally:
            faulthandler.dump_traceback_later(TEARDOWN_TIMEOUT, exit=True)
            rclpy.try_shutdown()
            faulthandler.cancel_dump_traceback_later()
            stop.close()

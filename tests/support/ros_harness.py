"""Helpers of the ROS 2 tests: a spinning rclpy context, a probe node, node subprocesses.

DDS stays on this machine: ``tests/conftest.py`` sets ``ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST``
and a domain id of this test process (unless the caller set one), and subprocesses inherit them.
Every wait is bounded (generous timeouts for a slow, busy machine) and no test asserts on time.
"""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from pathlib import Path

import rclpy
from rclpy.executors import SingleThreadedExecutor

#: generous bound of every wait for a message or a process (s)
TIMEOUT = 60.0


def wait_for(predicate, timeout: float = TIMEOUT, what: str = "condition", poll: float = 0.01):
    """Poll ``predicate`` until it returns a true value; fail with ``what`` after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(poll)


class Spinner:
    """An rclpy context spinning a set of nodes in a background thread."""

    def __init__(self):
        self.context = rclpy.Context()
        rclpy.init(context=self.context)
        self.executor = SingleThreadedExecutor(context=self.context)
        self._nodes = []
        self._thread = threading.Thread(target=self._spin, daemon=True)
        self._thread.start()

    def _spin(self):
        while self.context.ok():
            try:
                self.executor.spin_once(timeout_sec=0.05)
            except Exception:  # shutdown racing the executor
                if self.context.ok():
                    raise

    def add(self, node):
        self._nodes.append(node)
        self.executor.add_node(node)
        return node

    def close(self):
        """Stop spinning, then close (``node.close()``) and destroy the nodes; once."""
        if not self._nodes and not self.context.ok():
            return
        self.context.try_shutdown()
        self._thread.join(timeout=10)
        for node in self._nodes:
            close = getattr(node, "close", None)
            if close is not None:
                close()
            node.destroy_node()
        self._nodes = []


class Inbox:
    """Messages received on one topic, with thread-safe access."""

    def __init__(self):
        self._lock = threading.Lock()
        self.messages = []

    def __call__(self, msg):
        with self._lock:
            self.messages.append(msg)

    def __len__(self):
        with self._lock:
            return len(self.messages)

    def last(self):
        with self._lock:
            return self.messages[-1] if self.messages else None

    def all(self):
        with self._lock:
            return list(self.messages)

    def clear(self):
        with self._lock:
            self.messages.clear()


def probe(spinner: Spinner, name: str = "probe", subscriptions=(), publishers=()):
    """A plain node subscribing ``(type, topic)`` pairs into Inboxes and publishing others.

    Returns (node, {topic: Inbox}, {topic: publisher}).
    """
    from rclpy.node import Node
    from rclpy.qos import QoSProfile, ReliabilityPolicy

    node = Node(name, context=spinner.context)
    qos = QoSProfile(depth=100, reliability=ReliabilityPolicy.RELIABLE)
    inboxes = {}
    for msg_type, topic in subscriptions:
        inboxes[topic] = Inbox()
        node.create_subscription(msg_type, topic, inboxes[topic], qos)
    pubs = {topic: node.create_publisher(msg_type, topic, qos) for msg_type, topic in publishers}
    spinner.add(node)
    return node, inboxes, pubs


class Processes:
    """Node subprocesses with their output in files; stopped with SIGINT, killed if they hang."""

    def __init__(self, log_dir: Path):
        self.log_dir = Path(log_dir)
        self.procs: dict[str, tuple[subprocess.Popen, Path]] = {}

    def start(self, name: str, cmd: list[str], env: dict | None = None) -> subprocess.Popen:
        log = self.log_dir / f"{name}.log"
        with open(log, "wb") as out:
            # faulthandler: SIGABRT (sent to a process that hangs) writes every thread's stack to the log
            proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                    env=dict(os.environ, PYTHONFAULTHANDLER="1", **(env or {})))
        self.procs[name] = (proc, log)
        return proc

    def output(self, name: str) -> str:
        return self.procs[name][1].read_text(errors="replace")

    def alive(self, name: str) -> bool:
        return self.procs[name][0].poll() is None

    def stop(self, timeout: float = 30.0) -> dict[str, int]:
        """SIGINT to all, wait (bounded); a straggler gets SIGABRT (its stacks go to its log), then
        SIGKILL; the exit codes (-6 or -9 for a process that hung)."""
        for proc, _ in self.procs.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGINT)
        codes = {}
        for name, (proc, _) in self.procs.items():
            try:
                codes[name] = proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                proc.send_signal(signal.SIGABRT)
                try:
                    codes[name] = proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    codes[name] = proc.wait(timeout=10)
        return codes

    def report(self) -> str:
        """Every process's output tail (for assertion messages)."""
        return "\n".join(f"--- {name}\n{self.output(name)[-6000:]}" for name in self.procs)

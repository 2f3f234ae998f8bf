"""A stop request never crashes a node: SIGINT or SIGTERM while messages flood in ends every node
with exit status 0 and no traceback, and the recorder's bag is closed with every message it counted.

With rclpy's own signal handling a KeyboardInterrupt landed wherever the main thread was (inside
``take_message`` it became "Unable to convert call argument '0' to Python object") and the context
was shut down under the spinning executor ("the given context is not valid"); ``ohio_ros.runtime``
records the request and stops spinning between two callbacks. The race needs a node that is busy
receiving when the signal comes: every node is stopped only once its own output shows messages
flowing through it, and many times.
"""

import ast
import re
import signal
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest
from diagnostic_msgs.msg import DiagnosticArray
from geometry_msgs.msg import PoseStamped
from ohio_core.data import topics as tp
from rosbags.highlevel import AnyReader
from sensor_msgs.msg import JointState
from std_msgs.msg import Float64MultiArray

from ohio_ros.arm import convert
from ohio_ros.arm.recorder_node import DIAGNOSTICS_NAME as RECORDER_STATUS
from ros_harness import TIMEOUT, Processes, Spinner, probe, wait_for
from ros_launch import LAUNCH_DIR, command_line, executable_command, read_launch

pytestmark = pytest.mark.ros

#: what a crashed or noisy stop leaves in a node's output
CRASH_MARKS = ("Traceback", "Exception ignored", "was never awaited", "Error:")
#: recorders stopped at once in each round of the flood test, and the rounds
RECORDERS, ROUNDS = 4, 2
#: the stop requests a recorder gets, by turns: one signal, or a second one while it shuts down
STOPS = ((signal.SIGINT,), (signal.SIGTERM,), (signal.SIGINT, signal.SIGINT), (signal.SIGTERM, signal.SIGINT))
FLOODED = (tp.JOINT_STATES, tp.TASK_STATE, tp.EFFORT_COMMANDS)
CLOSED = re.compile(r"recorder: bag (\S+) closed: (\{.*\})")


def crashes(procs: Processes) -> dict:
    """{process: lines of its output that show a crash or an ignored exception}."""
    out = {name: [line for line in procs.output(name).splitlines() if any(m in line for m in CRASH_MARKS)]
           for name in procs.procs}
    return {name: lines for name, lines in out.items() if lines}


def recorder_statuses(inbox) -> dict:
    """{bag path: messages written per topic} from the latest ``recorder: bag`` status of each recorder."""
    latest = {}
    for msg in inbox.all():
        for status in msg.status:
            if status.name == RECORDER_STATUS:
                values = {kv.key: kv.value for kv in status.values}
                latest[status.message.removeprefix("recording into ")] = {
                    k: int(v) for k, v in values.items() if k.startswith("/")}
    return latest


def check_bag(output: str):
    """The bag the recorder said it closed holds exactly the messages it counted; its counts."""
    found = CLOSED.findall(output)
    assert len(found) == 1, output[-3000:]
    path, counts = found[0][0], ast.literal_eval(found[0][1])
    with AnyReader([Path(path)]) as reader:
        in_bag = {c.topic: 0 for c in reader.connections}
        for conn, _, _ in reader.messages():
            in_bag[conn.topic] += 1
    assert {t: n for t, n in in_bag.items() if n} == {t: n for t, n in counts.items() if n}, (path, counts)
    return counts


class Flood:
    """Publishes joint states, task states and effort commands from a thread as fast as it can."""

    def __init__(self, pubs):
        self.pubs, self.stop, self.sent = pubs, threading.Event(), 0
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        js = convert.joint_state_msg(tp.ARM_JOINTS, np.zeros(7), np.zeros(7), np.zeros(7), 1)
        row = convert.task_state_msg(np.zeros(len(tp.TASK_STATE_FIELDS)))
        cmd = convert.effort_command_msg(np.zeros(7), convert.effort_layout(tp.ARM_JOINTS))
        while not self.stop.is_set():
            self.pubs[tp.JOINT_STATES].publish(js)
            self.pubs[tp.TASK_STATE].publish(row)
            self.pubs[tp.EFFORT_COMMANDS].publish(cmd)
            self.sent += 1

    def close(self):
        self.stop.set()
        self.thread.join(timeout=10)


def test_recorders_stopped_while_flooded_exit_0_with_complete_bags(tmp_path):
    """RECORDERS recorders at once, flooded; each stopped (STOPS by turns) once its status shows it
    writing every flooded topic; ROUNDS rounds."""
    spinner = Spinner()
    _, inbox, pubs = probe(spinner, subscriptions=[(DiagnosticArray, "/diagnostics")],
                           publishers=[(JointState, tp.JOINT_STATES), (Float64MultiArray, tp.TASK_STATE),
                                       (Float64MultiArray, tp.EFFORT_COMMANDS)])
    flood = Flood(pubs)
    try:
        for r in range(ROUNDS):
            procs = Processes(tmp_path / f"round{r}")
            procs.log_dir.mkdir()
            bags = {f"recorder{i}": str(procs.log_dir / f"bag{i}") for i in range(RECORDERS)}
            try:
                for name, bag in bags.items():
                    procs.start(name, [*executable_command("recorder_node"), "--ros-args", "-r", f"__node:={name}",
                                       "-p", f"output:={bag}"])

                def all_writing():
                    assert all(procs.alive(n) for n in procs.procs), procs.report()
                    latest = recorder_statuses(inbox["/diagnostics"])
                    return all(all(latest.get(bag, {}).get(t, 0) > 0 for t in FLOODED) for bag in bags.values())
                wait_for(all_writing, what="every recorder writing the flooded topics")
                for i, (proc, _) in enumerate(procs.procs.values()):
                    for sig in STOPS[(i + r) % len(STOPS)]:
                        proc.send_signal(sig)
                codes = {name: proc.wait(timeout=TIMEOUT) for name, (proc, _) in procs.procs.items()}
            finally:
                procs.stop()
            assert codes == {name: 0 for name in bags}, procs.report()
            assert not crashes(procs), crashes(procs)
            for name in bags:
                counts = check_bag(procs.output(name))
                assert all(counts[t] > 0 for t in FLOODED), counts
    finally:
        flood.close()
        spinner.close()
    assert flood.sent > 0


@pytest.mark.parametrize("stop", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_closed_loop_stopped_while_running_exits_0(tmp_path, stop):
    """The four nodes of sim_arm.launch.py (simulator at 500 Hz, controller, policy, recorder), stopped
    together while the loop runs: each exits 0 without a traceback, the bag holds what it counted."""
    launch = read_launch(LAUNCH_DIR / "sim_arm.launch.py", {"record": "true", "bag": str(tmp_path / "run")})
    procs = Processes(tmp_path)
    spinner = Spinner()
    try:
        _, inbox, _ = probe(spinner, subscriptions=[(Float64MultiArray, tp.TASK_STATE), (PoseStamped, tp.EE_GOAL),
                                                    (DiagnosticArray, "/diagnostics")])
        for node in launch.nodes:
            if node.enabled:
                procs.start(node.name, command_line(node, tmp_path))

        def loop_running():
            assert all(procs.alive(n) for n in procs.procs), procs.report()
            written = next(iter(recorder_statuses(inbox["/diagnostics"]).values()), {})
            # every node is up and busy (a node still importing its modules has no handler yet): the
            # loop is closed (task states flow once the controller's commands do), the policy sends
            # goals, the recorder writes
            return len(inbox[tp.TASK_STATE]) >= 10 and len(inbox[tp.EE_GOAL]) >= 2 and \
                all(written.get(t, 0) > 0 for t in FLOODED)
        wait_for(loop_running, timeout=180, what="the closed loop running and recorded")
        for proc, _ in procs.procs.values():
            proc.send_signal(stop)
        codes = {name: proc.wait(timeout=TIMEOUT) for name, (proc, _) in procs.procs.items()}
    finally:
        spinner.close()
        procs.stop()
    assert codes == {"mujoco_sim": 0, "controller": 0, "policy": 0, "recorder": 0}, procs.report()
    assert not crashes(procs), crashes(procs)
    check_bag(procs.output("recorder"))


#: a node that asks its own process to stop from inside a subscription callback, then goes on
#: working in that callback: the executor must let the callback finish and stop after it
SELF_STOPPING = """
import os, signal, sys
from ohio_ros.runtime import run
from rclpy.node import Node
from std_msgs.msg import Float64MultiArray

class SelfStopping(Node):
    def __init__(self):
        super().__init__('self_stopping')
        self.executor_kind = '{executor}'
        self.taken = 0
        self.pub = self.create_publisher(Float64MultiArray, 'flood', 10)
        self.create_subscription(Float64MultiArray, 'flood', self.on_message, 10)
        self.create_timer(0.001, lambda: self.pub.publish(Float64MultiArray(data=[1.0] * 64)))

    def on_message(self, msg):
        self.taken += 1
        if self.taken == 20:
            os.kill(os.getpid(), signal.{signal})
            total = sum(sum(msg.data) for _ in range(20000))
            print(f'callback finished: {{total:g}}', flush=True)

    def close(self):
        print(f'closed after {{self.taken}} messages', flush=True)

sys.exit(run(SelfStopping, 'self_stopping'))
"""


@pytest.mark.parametrize("executor", ["single_threaded", "events"])
@pytest.mark.parametrize("stop", ["SIGINT", "SIGTERM"])
def test_a_stop_request_inside_a_callback_lets_it_finish(stop, executor):
    """Deterministic: the request comes while the executor runs a callback (as it came inside
    take_message). The callback completes, the node closes and exits 0, nothing is printed; under
    rclpy's EventsExecutor too (``runtime.make_executor``, the node's ``executor_kind``)."""
    done = subprocess.run([sys.executable, "-c", SELF_STOPPING.format(signal=stop, executor=executor)],
                          capture_output=True, text=True, timeout=TIMEOUT, stdin=subprocess.DEVNULL)
    out = done.stdout + done.stderr
    assert done.returncode == 0, out
    assert "callback finished: 1.28e+06" in done.stdout, out
    taken = int(re.search(r"closed after (\d+) messages", done.stdout).group(1))
    assert taken >= 20, out
    assert not [line for line in out.splitlines() if any(m in line for m in CRASH_MARKS)], out


#: a node whose middleware teardown never returns (destroy_node blocks, as rcl_node_fini did now
#: and then on a loaded machine)
HANGING_TEARDOWN = """
import os, signal, sys, time
from ohio_ros import runtime
from rclpy.node import Node

class HangingTeardown(Node):
    def __init__(self):
        super().__init__('hanging_teardown')
        self.create_timer(0.05, lambda: os.kill(os.getpid(), signal.SIGINT))

    def close(self):
        print('closed', flush=True)

    def destroy_node(self):
        time.sleep(3600)

runtime.TEARDOWN_TIMEOUT = 1.0
sys.exit(runtime.run(HangingTeardown, 'hanging_teardown'))
"""


def test_a_hanging_middleware_teardown_ends_with_the_stacks_and_status_1():
    """Bounded: after the node's close, a teardown that does not return within TEARDOWN_TIMEOUT
    ends the process with status 1 and every thread's stack on stderr, not a hang until SIGKILL."""
    done = subprocess.run([sys.executable, "-c", HANGING_TEARDOWN], capture_output=True, text=True,
                          timeout=TIMEOUT, stdin=subprocess.DEVNULL)
    assert done.returncode == 1, done.stdout + done.stderr
    assert done.stdout.splitlines() == ["closed"]
    assert "Timeout" in done.stderr and "in destroy_node" in done.stderr, done.stderr

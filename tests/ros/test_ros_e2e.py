"""End to end over DDS: sim_arm.launch.py's nodes (MuJoCo simulator, controller, scripted
reach policy, recorder) started as launch_ros starts them close the loop on simulated time; the
arm reaches the target, every command stays within the torque limits, and the recorded bag holds
every message the recorder counted and (in lockstep) goes through the relabel pipeline.
"""

import ast
import json
import re

import numpy as np
import pytest
from controllers.base import make_controller
from controllers.config import OSCConfig
from controllers.robot import ArmModel
from ohio_core.data import topics as tp
from ohio_core.data.bags import read_bag
from ohio_core.pipeline.relabel import relabel
from diagnostic_msgs.msg import DiagnosticArray
from sensor_msgs.msg import JointState
from std_msgs.msg import Float64MultiArray

from ohio_ros import diagnostics
from ohio_ros.arm import convert
from ohio_ros.arm.recorder_node import DIAGNOSTICS_NAME as RECORDER_STATUS
from ros_harness import Processes, Spinner, probe, wait_for
from ros_launch import LAUNCH_DIR, command_line, read_launch

pytestmark = pytest.mark.ros

#: messages of each topic a row needs that the recorder must have written before the stop
ROWS_WANTED = 50
ROW_TOPICS = (tp.TASK_STATE, tp.EFFORT_COMMANDS, tp.JOINT_STATES)
#: joint states (500 Hz) the probe takes after it saw the success flag, for the check of the reach
STATES_AFTER = 250


def recorded(inbox) -> dict:
    """Messages the recorder has written per topic, by its latest status on /diagnostics (its own
    count: it matches each topic on its own, later than the probe may)."""
    for msg in reversed(inbox.all()):
        values = diagnostics.diagnostic_values(msg).get(RECORDER_STATUS)
        if values is not None:
            return {k: int(v) for k, v in values.items() if k.startswith("/")}
    return {}


def closed_counts(procs: Processes) -> dict:
    """The messages per topic the recorder said it wrote when it closed the bag."""
    found = re.findall(r"recorder: bag \S+ closed: (\{.*\})", procs.output("recorder"))
    assert len(found) == 1, procs.report()
    return ast.literal_eval(found[0])


#: what each node logs once it is up (before the unpaced simulator may start)
UP_LINES = {"controller": "controller at 50 Hz", "policy": "every 5 control periods", "recorder": "recording"}


def start_lockstep(procs: Processes, nodes: dict, tmp_path, report, subscribers: int) -> None:
    """Start the launch file's nodes for a lockstep run. Unpaced, the simulator would run through
    episodes while the others still start up: start it once they are up, with generous waits, a
    report, and ``subscribers`` task-state subscribers to wait for."""
    others = [name for name in nodes if name != "mujoco_sim"]
    for name in others:
        procs.start(name, command_line(nodes[name], tmp_path))
    for name in others:
        wait_for(lambda: UP_LINES[name] in procs.output(name), what=f"{name} up")
    procs.start("mujoco_sim", command_line(nodes["mujoco_sim"], tmp_path) + [
        "-p", "lockstep_timeout:=30.0", "-p", f"report_path:={report}", "-p", f"start_subscribers:={subscribers}"])


def test_closed_loop_reaches_the_target_and_records_a_bag(tmp_path):
    """At wall-clock pace. What the bag's rows pair (a command in each control period) depends on
    how the machine keeps the 50 Hz pace, so the bag is checked for what does not: it holds every
    message the recorder counted, and rows; the rows themselves are checked in lockstep below."""
    bag = tmp_path / "run"
    launch = read_launch(LAUNCH_DIR / "sim_arm.launch.py", {"record": "true", "bag": str(bag)})
    assert [n.name for n in launch.nodes if n.enabled] == ["mujoco_sim", "controller", "policy", "recorder"]
    model = ArmModel()
    tau_max = model.tau_max
    reader = convert.TaskStateReader()
    index = convert.JointIndex(tp.ARM_JOINTS)
    procs = Processes(tmp_path)
    spinner = Spinner()
    try:
        _, inbox, _ = probe(spinner, subscriptions=[(Float64MultiArray, "/ohio/task_state"),
                                                    (Float64MultiArray, "/effort_controller/commands"),
                                                    (JointState, "/joint_states"),
                                                    (DiagnosticArray, "/diagnostics")])
        for node in launch.nodes:
            if node.enabled:
                procs.start(node.name, command_line(node, tmp_path))

        success = []

        def success_recorded():
            assert all(procs.alive(n) for n in procs.procs), procs.report()
            msg = inbox["/ohio/task_state"].last()
            row = None if msg is None else reader(msg)
            if not success and row is not None and row[tp.TS["success"]] == 1.0:
                # in whichever episode: launched together, the policy may still be starting while the
                # simulator runs episode 0 (the arm then holds still)
                success.append((row, len(inbox["/joint_states"])))
            counts = recorded(inbox["/diagnostics"])
            enough = all(counts.get(t, 0) >= ROWS_WANTED for t in ROW_TOPICS)
            # joint states around the success: the probe takes them behind the 50 Hz task states
            # (one message per topic per wait), so those of the success's moment may still come
            return success[0] if success and enough and len(inbox["/joint_states"]) >= success[0][1] + STATES_AFTER \
                else None
        row, seen = wait_for(success_recorded, timeout=180,
                             what="the reach task's success flag in /ohio/task_state and the recorder's messages")
        target = row[tp.TS["target_x"]:tp.TS["target_z"] + 1]
        # independently of the simulator's flag: forward kinematics of the joint states it sent, from
        # before the success was seen until STATES_AFTER later (a later episode may move the target)
        states = inbox["/joint_states"].all()[max(seen - 100, 0):seen + STATES_AFTER]
        distances = [np.linalg.norm(model.tcp_pose(convert.joint_state_arrays(m, index)[0])[0] - target)
                     for m in states]
        assert min(distances) < 0.02
        commands = inbox["/effort_controller/commands"].all()
        assert commands
        assert all(len(m.data) == 7 and np.all(np.abs(m.data) <= tau_max) for m in commands)
    finally:
        spinner.close()
        codes = procs.stop()
    assert codes == {"mujoco_sim": 0, "controller": 0, "policy": 0, "recorder": 0}, procs.report()

    written = closed_counts(procs)
    assert all(written[t] >= ROWS_WANTED for t in ROW_TOPICS), written
    traj = read_bag(bag)
    account = traj.meta["account"]
    assert {t: account["messages"][t] for t in ROW_TOPICS} == {t: written[t] for t in ROW_TOPICS}, account
    assert account["rows"] > 0 and account["episodes"] >= 1, account
    assert np.all(np.abs(traj.tau) <= tau_max)


def test_as_fast_as_possible_in_lockstep_episodes_succeed_and_the_bag_relabels(tmp_path):
    """Simulator unpaced, waiting for a command in every control period; all on simulated time. Every
    period has its command whatever the machine's load, so the recorded bag's rows can be checked:
    rows with success, relabeled into goals."""
    report = tmp_path / "sim_report.json"
    bag = tmp_path / "run"
    launch = read_launch(LAUNCH_DIR / "sim_arm.launch.py",
                         {"real_time_factor": "0", "lockstep": "true", "publish_rate": "50.0",
                          "record": "true", "bag": str(bag)})
    model = ArmModel()
    reader = convert.TaskStateReader()
    procs = Processes(tmp_path)
    spinner = Spinner()
    try:
        _, inbox, _ = probe(spinner, subscriptions=[(Float64MultiArray, "/ohio/task_state"),
                                                    (DiagnosticArray, "/diagnostics")])
        nodes = {n.name: n for n in launch.nodes if n.enabled}
        start_lockstep(procs, nodes, tmp_path, report, subscribers=3)     # the policy, the recorder, the probe

        def three_episodes_recorded():
            assert all(procs.alive(n) for n in procs.procs), procs.report()
            msg = inbox["/ohio/task_state"].last()
            return msg is not None and reader(msg)[tp.TS["episode"]] >= 3 and \
                recorded(inbox["/diagnostics"]).get(tp.TASK_STATE, 0) >= ROWS_WANTED
        wait_for(three_episodes_recorded, timeout=180, what="three episodes in lockstep, recorded")
        sim = procs.procs["mujoco_sim"][0]
        sim.send_signal(2)                        # stop the simulator first: its report counts the waits
        sim.wait(timeout=60)
    finally:
        spinner.close()
        codes = procs.stop()
    assert set(codes.values()) == {0}, procs.report()
    data = json.loads(report.read_text())
    assert data["lockstep_timeouts"] == 0 and data["commands_rejected"] == 0
    # episodes 1 and 2: in episode 0 the goal topic may still be being discovered while the
    # unpaced simulation runs
    assert [e["success"] for e in data["episodes"][1:3]] == [True, True], data

    traj = read_bag(bag)
    account = traj.meta["account"]
    assert account["messages"][tp.TASK_STATE] == closed_counts(procs)[tp.TASK_STATE], account
    assert account["rows"] > 20 and account["episodes"] >= 1, account
    assert traj.success.any()
    data = relabel(traj, make_controller(OSCConfig(), model), k=5, method="auto")
    assert len(data.actions) > 0 and np.all(np.abs(data.actions) <= 1.0)


@pytest.mark.parametrize("robot, joints", [("ur5", 6)])
def test_the_launch_file_runs_another_arm(tmp_path, robot, joints):
    """``robot:=NAME`` reaches every node: the simulator builds that arm, the controller and the
    policy its model; in lockstep the scripted reach succeeds and every command has one torque per
    joint of that arm, within its limits."""
    report = tmp_path / "sim_report.json"
    launch = read_launch(LAUNCH_DIR / "sim_arm.launch.py",
                         {"robot": robot, "real_time_factor": "0", "lockstep": "true", "publish_rate": "50.0"})
    tau_max = ArmModel(robot).tau_max
    reader = convert.TaskStateReader()
    procs = Processes(tmp_path)
    spinner = Spinner()
    try:
        _, inbox, _ = probe(spinner, subscriptions=[(Float64MultiArray, "/ohio/task_state"),
                                                    (Float64MultiArray, "/effort_controller/commands")])
        nodes = {n.name: n for n in launch.nodes if n.enabled}
        assert set(nodes) == {"mujoco_sim", "controller", "policy"}
        start_lockstep(procs, nodes, tmp_path, report, subscribers=2)     # the policy and the probe

        def two_episodes():
            assert all(procs.alive(n) for n in procs.procs), procs.report()
            msg = inbox["/ohio/task_state"].last()
            return msg is not None and reader(msg)[tp.TS["episode"]] >= 2
        wait_for(two_episodes, timeout=180, what=f"two episodes of the {robot} in lockstep")
        sim = procs.procs["mujoco_sim"][0]
        sim.send_signal(2)
        sim.wait(timeout=60)
    finally:
        spinner.close()
        codes = procs.stop()
    assert set(codes.values()) == {0}, procs.report()
    data = json.loads(report.read_text())
    assert data["commands_rejected"] == 0 and data["episodes"][1]["success"], data
    commands = inbox["/effort_controller/commands"].all()
    assert commands and all(len(m.data) == joints and np.all(np.abs(m.data) <= tau_max) for m in commands)

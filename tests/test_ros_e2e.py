"""End to end over DDS: sim_arm.launch.py's nodes (MuJoCo simulator, controller, scripted
reach policy, recorder) started as launch_ros starts them close the loop on simulated time; the
arm reaches the target, every command stays within the torque limits, and the recorded bag
goes through the relabel pipeline.
"""

import json

import numpy as np
import pytest
from controllers.base import make_controller
from controllers.config import OSCConfig
from controllers.robot import PandaModel
from ohio_core.data import topics as tp
from ohio_core.data.bags import read_bag
from ohio_core.pipeline.relabel import relabel
from diagnostic_msgs.msg import DiagnosticArray
from sensor_msgs.msg import JointState
from std_msgs.msg import Float64MultiArray

from ohio_ros import convert
from ohio_ros.recorder_node import DIAGNOSTICS_NAME as RECORDER_STATUS
from ros_harness import Processes, Spinner, probe, wait_for
from ros_launch import LAUNCH_DIR, command_line, read_launch

pytestmark = pytest.mark.ros

#: messages of each topic a row needs that the recorder must have written before the stop
ROWS_WANTED = 50


def test_closed_loop_reaches_the_target_and_records_a_bag(tmp_path):
    bag = tmp_path / "run"
    launch = read_launch(LAUNCH_DIR / "sim_arm.launch.py", {"record": "true", "bag": str(bag)})
    assert [n.name for n in launch.nodes if n.enabled] == ["mujoco_sim", "controller", "policy", "recorder"]
    model = PandaModel()
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

        success, recorded_then = [], []

        def recorded():
            """Messages the recorder has written per topic, by its latest status (its own count: it
            may have matched each topic later than the probe did)."""
            for msg in reversed(inbox["/diagnostics"].all()):
                values = convert.diagnostic_values(msg).get(RECORDER_STATUS)
                if values is not None:
                    return {k: int(v) for k, v in values.items() if k.startswith("/")}
            return {}

        def success_recorded():
            assert all(procs.alive(n) for n in procs.procs), procs.report()
            msg = inbox["/ohio/task_state"].last()
            row = None if msg is None else reader(msg)
            if not success and row is not None and row[tp.TS["success"]] == 1.0 and row[tp.TS["episode"]] == 0:
                success.append(row)
                inbox["/diagnostics"].clear()           # only statuses received after it count
            counts = recorded()
            if success and counts and not recorded_then:
                recorded_then.append(counts.get(tp.TASK_STATE, 0))
            # the bag's rows pair task states, commands and joint states: wait until the recorder has
            # written enough of each, and ROWS_WANTED more task states after its first status received
            # once the probe saw the success (the arm then holds the target: the bag holds success rows)
            enough = recorded_then and counts.get(tp.TASK_STATE, 0) >= recorded_then[0] + ROWS_WANTED \
                and counts.get(tp.EFFORT_COMMANDS, 0) >= ROWS_WANTED and counts.get(tp.JOINT_STATES, 0) >= ROWS_WANTED
            return (success[0],) if enough else None
        (row,) = wait_for(success_recorded, timeout=180,
                          what="the reach task's success flag in /ohio/task_state, then the recorder's bag")
        target = row[tp.TS["target_x"]:tp.TS["target_z"] + 1]
        # independently of the simulator's flag: forward kinematics of the joint states it sent
        states = inbox["/joint_states"].all()
        distances = [np.linalg.norm(model.tcp_pose(convert.joint_state_arrays(m, index)[0])[0] - target)
                     for m in states[-100:]]
        assert min(distances) < 0.02
        commands = inbox["/effort_controller/commands"].all()
        assert commands
        assert all(len(m.data) == 7 and np.all(np.abs(m.data) <= tau_max) for m in commands)
    finally:
        spinner.close()
        codes = procs.stop()
    assert codes == {"mujoco_sim": 0, "controller": 0, "policy": 0, "recorder": 0}, procs.report()

    traj = read_bag(bag)
    account = traj.meta["account"]
    assert account["rows"] > 20 and account["episodes"] >= 1, account
    assert traj.success.any()
    data = relabel(traj, make_controller(OSCConfig(), model), k=5, method="auto")
    assert len(data.actions) > 0 and np.all(np.abs(data.actions) <= 1.0)


def test_as_fast_as_possible_in_lockstep_episodes_succeed(tmp_path):
    """Simulator unpaced, waiting for a command in every control period; all on simulated time."""
    report = tmp_path / "sim_report.json"
    launch = read_launch(LAUNCH_DIR / "sim_arm.launch.py",
                         {"real_time_factor": "0", "lockstep": "true", "publish_rate": "50.0"})
    reader = convert.TaskStateReader()
    procs = Processes(tmp_path)
    spinner = Spinner()
    try:
        _, inbox, _ = probe(spinner, subscriptions=[(Float64MultiArray, "/ohio/task_state")])
        nodes = {n.name: n for n in launch.nodes if n.enabled}
        # unpaced, the simulator would run through episodes while the policy still starts up:
        # start it once the controller and the policy are up
        for name in ("controller", "policy"):
            procs.start(name, command_line(nodes[name], tmp_path))
        for name, line in (("controller", "controller at 50 Hz"), ("policy", "every 5 control periods")):
            wait_for(lambda: line in procs.output(name), what=f"{name} up")
        procs.start("mujoco_sim", command_line(nodes["mujoco_sim"], tmp_path) + [
            "-p", "lockstep_timeout:=30.0", "-p", f"report_path:={report}",     # generous waits, a report
            "-p", "start_subscribers:=2"])                                     # the policy and the probe

        def three_episodes_done():
            assert all(procs.alive(n) for n in procs.procs), procs.report()
            msg = inbox["/ohio/task_state"].last()
            return msg is not None and reader(msg)[tp.TS["episode"]] >= 3
        wait_for(three_episodes_done, timeout=180, what="three episodes in lockstep")
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

"""Launch files, read statically (launch/launch_ros are not installable here, so ``ros2 launch``
itself is not run), and the package that installs them: every executable is an entry point of
setup.py, every parameters file exists and is keyed by the node's name with parameters that
node declares; then each launch file's nodes are started as launch_ros would start them.
"""

import importlib
import subprocess
import time

import numpy as np
import pytest
import yaml
from controllers.config import CONFIG_TYPES
from controllers.description import Q_HOME
from controllers.robot import ArmModel
from diagnostic_msgs.msg import DiagnosticArray
from geometry_msgs.msg import PoseStamped
from ohio_core.data import topics as tp
from sensor_msgs.msg import JointState
from std_msgs.msg import Float64MultiArray

from ohio_ros import diagnostics
from ohio_ros.arm import config as cfg
from ohio_ros.arm import convert
from ohio_ros.arm.sim_config import SimNodeConfig
from ohio_ros.routing import config as routing_cfg
from ros_harness import Processes, Spinner, probe, wait_for
from ros_launch import LAUNCH_DIR, PACKAGE, REPO, LaunchReadError, command_line, entry_points, read_launch

LAUNCH_FILES = sorted(LAUNCH_DIR.glob("*.launch.py"))
NODE_CONFIGS = {"controller_node": cfg.ControllerNodeConfig, "policy_node": cfg.PolicyNodeConfig,
                "mujoco_sim_node": SimNodeConfig, "recorder_node": cfg.RecorderNodeConfig,
                "routing_sim_node": routing_cfg.RoutingSimNodeConfig, "rebalancing_node": routing_cfg.RebalancingNodeConfig,
                "routing_policy_node": routing_cfg.RoutingPolicyNodeConfig}
WITH_CONTROLLER_PARAMS = {"controller_node", "policy_node"}


def known_parameters(executable: str) -> set:
    names = set(NODE_CONFIGS[executable].defaults()) | {"use_sim_time"}
    if executable in WITH_CONTROLLER_PARAMS:
        for kind in CONFIG_TYPES:
            names |= set(cfg.controller_defaults(kind))
    if executable == "rebalancing_node":
        names |= set(routing_cfg.rebalancing_defaults())
    return names


def flatten(params: dict, prefix: str = "") -> dict:
    out = {}
    for k, v in params.items():
        if isinstance(v, dict):
            out.update(flatten(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def test_there_are_the_four_launch_files():
    assert {p.name for p in LAUNCH_FILES} == {"sim_arm.launch.py", "real_arm.launch.py", "record.launch.py",
                                              "routing.launch.py"}


#: launch arguments without a default, and a value for reading the file
REQUIRED_ARGUMENTS = {"real_arm.launch.py": {"gravity_compensation": "driver"},
                      "record.launch.py": {"gravity_compensation": "driver"}}


@pytest.mark.parametrize("path", LAUNCH_FILES, ids=lambda p: p.name)
def test_launch_file_is_consistent(path):
    launch = read_launch(path, REQUIRED_ARGUMENTS.get(path.name))
    scripts = entry_points()
    assert launch.nodes, "no Node actions"
    executables = {n.name: n.executable for n in launch.nodes}
    for node in launch.nodes:
        assert node.package == "ohio_ros"
        assert node.executable in scripts, f"{node.executable} is not a console script of setup.py"
        module, func = scripts[node.executable].split(":")
        assert callable(getattr(importlib.import_module(module), func))
        files = [p for p in node.parameters if not isinstance(p, dict)]
        assert files, f"{node.name}: no parameters file"
        known = known_parameters(node.executable)
        for f in files:
            assert f.is_file(), f"{node.name}: parameters file {f} does not exist"
            data = yaml.safe_load(f.read_text())
            # a file may hold the sections of several nodes of the launch file (one per node name)
            sections = {}
            for key in data:
                name = key.removeprefix("/**/").removeprefix("/")
                assert key == "/**" or name in executables, (
                    f"{f.name}: key {key!r} names no node of {path.name} ({sorted(executables)})")
                sections[key] = node.executable if key == "/**" else executables[name]
            assert f"/**/{node.name}" in data or f"/{node.name}" in data or node.name in data or "/**" in data, (
                f"{f.name}: no section for node {node.name!r}")
            for key, executable in sections.items():
                params = flatten(data[key]["ros__parameters"])
                unknown = set(params) - known_parameters(executable)
                assert not unknown, f"{f.name}: {key}: unknown parameters {sorted(unknown)}"
        for p in node.parameters:
            if isinstance(p, dict):
                assert set(p) <= known, f"{node.name}: unknown parameters {sorted(set(p) - known)}"


def test_launch_arguments_are_checked():
    with pytest.raises(LaunchReadError, match="no launch argument"):
        read_launch(LAUNCH_DIR / "sim_arm.launch.py", {"tsk": "lift"})
    launch = read_launch(LAUNCH_DIR / "sim_arm.launch.py", {"task": "lift", "record": "true", "bag": "/tmp/b"})
    by_name = {n.name: n for n in launch.nodes}
    assert by_name["recorder"].enabled and by_name["recorder"].parameters[1]["output"] == "/tmp/b"
    assert by_name["policy"].parameters[1]["task"] == "lift" and by_name["policy"].parameters[1]["use_sim_time"] is True
    assert not any(n.enabled for n in read_launch(LAUNCH_DIR / "sim_arm.launch.py").nodes if n.name == "recorder")
    assert read_launch(LAUNCH_DIR / "sim_arm.launch.py").nodes[2].parameters[1]["model_path"] == ""


def test_real_arm_has_no_simulator_and_remaps_the_driver_topics():
    launch = read_launch(LAUNCH_DIR / "real_arm.launch.py",
                         {"joint_states": "/franka/joint_states", "effort_commands": "/fr3/effort/commands",
                          "gravity_compensation": "driver"})
    assert {n.executable for n in launch.nodes} == {"controller_node", "policy_node"}
    ctl = next(n for n in launch.nodes if n.name == "controller")
    assert dict(ctl.remappings) == {"/joint_states": "/franka/joint_states",
                                    "effort_controller/commands": "/fr3/effort/commands"}
    assert ctl.parameters[1] == {"use_sim_time": False, "robot": "panda", "controller.gravity_compensation": "driver",
                                 "torque_rate_limit": 1000.0}
    launch = read_launch(LAUNCH_DIR / "real_arm.launch.py", {"gravity_compensation": "driver", "robot": "ur5"})
    assert {n.name: n.parameters[1]["robot"] for n in launch.nodes} == {"controller": "ur5", "policy": "ur5"}


def test_real_arm_launch_requires_gravity_compensation_and_the_sim_states_its_own():
    """A Franka's driver adds g(q) to every effort command: the real-arm launch has no default that
    could double it, and refuses a value that is neither choice; the simulated arm says 'controller'."""
    with pytest.raises(LaunchReadError, match=r"\['gravity_compensation'\] have no default and no value"):
        read_launch(LAUNCH_DIR / "real_arm.launch.py", {"policy": "scripted"})
    with pytest.raises(LaunchReadError, match=r"'gravity_compensation' must be one of \['driver', 'controller'\]"):
        read_launch(LAUNCH_DIR / "real_arm.launch.py", {"gravity_compensation": "yes"})
    for mode in ("driver", "controller"):
        ctl = next(n for n in read_launch(LAUNCH_DIR / "real_arm.launch.py", {"gravity_compensation": mode}).nodes
                   if n.name == "controller")
        assert ctl.parameters[1]["controller.gravity_compensation"] == mode
        assert ctl.parameters[1]["torque_rate_limit"] == 1000.0      # a Franka stops above 1000 N m/s
    sim = next(n for n in read_launch(LAUNCH_DIR / "sim_arm.launch.py").nodes if n.name == "controller")
    assert sim.parameters[1]["controller.gravity_compensation"] == "controller"
    # the shared parameters file does not set it: a node started from it alone refuses to start
    shipped = yaml.safe_load((PACKAGE / "config" / "controller.yaml").read_text())
    assert "gravity_compensation" not in shipped["/**/controller"]["ros__parameters"]["controller"]


def test_package_manifest_and_install_rules():
    xml = (PACKAGE / "package.xml").read_text()
    for dep in ("rclpy", "sensor_msgs", "geometry_msgs", "std_msgs", "rosgraph_msgs", "diagnostic_msgs",
                "launch", "launch_ros", "ohio_core", "controllers", "ament_flake8", "ament_pep257"):
        assert f">{dep}</" in xml, dep
    assert "<build_type>ament_python</build_type>" in xml
    assert (PACKAGE / "resource" / "ohio_ros").is_file()
    setup = (PACKAGE / "setup.py").read_text()
    for rule in ("launch/*.launch.py", "config/*.yaml", "urdf/panda.urdf", "urdf/meshes/collision/*.stl"):
        assert rule in setup, rule
    assert (PACKAGE / "launch").resolve() == LAUNCH_DIR and (PACKAGE / "urdf").resolve() == REPO / "urdf"
    for core in ("ohio_core", "controllers"):
        pkg = REPO / "ros2_ws" / "src" / core
        assert (pkg / core).resolve() == REPO / core and (pkg / "package.xml").is_file()


# -- the nodes started as the launch files start them ----------------------------------------


@pytest.mark.ros
def test_invalid_parameters_stop_the_node_with_the_parameter_named(tmp_path):
    node = next(n for n in read_launch(LAUNCH_DIR / "sim_arm.launch.py").nodes if n.name == "controller")
    for extra, name in ((["-p", "goal_timeout:=-1.0"], "goal_timeout"), (["-p", "goal_timout:=1.0"], "goal_timout"),
                        (["-p", "controller.kp:=-3.0"], "controller.kp"), (["-p", "executor:=static"], "executor")):
        r = subprocess.run(command_line(node, tmp_path) + extra, capture_output=True, text=True, timeout=120)
        assert r.returncode == 2, r.stderr[-2000:]
        assert name in r.stderr


@pytest.mark.ros
def test_controller_node_without_gravity_compensation_refuses_to_start(tmp_path):
    """Started from the shipped parameters file alone (no launch file stating it), the controller
    node exits with status 2 and one line naming the parameter and what to set."""
    node = next(n for n in read_launch(LAUNCH_DIR / "real_arm.launch.py", {"gravity_compensation": "driver"}).nodes
                if n.name == "controller")
    node.parameters = node.parameters[:1]
    r = subprocess.run(command_line(node, tmp_path), capture_output=True, text=True, timeout=120)
    assert r.returncode == 2, r.stderr[-2000:]
    assert "'controller.gravity_compensation' must be set" in r.stderr and "Franka" in r.stderr
    assert "Traceback" not in r.stderr
    r = subprocess.run(command_line(node, tmp_path) + ["-p", "controller.gravity_compensation:=drivr"],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and "controller.gravity_compensation must be one of" in r.stderr, r.stderr[-2000:]


@pytest.mark.ros
def test_real_arm_nodes_on_remapped_driver_topics(tmp_path):
    """controller + policy from real_arm.launch.py against a stand-in driver on other topics; the
    controller reports the gravity convention it was launched with."""
    launch = read_launch(LAUNCH_DIR / "real_arm.launch.py", {
        "policy": "scripted", "joint_states": "/franka/joint_states", "effort_commands": "/franka/effort_commands",
        "gravity_compensation": "driver"})
    procs = Processes(tmp_path)
    spinner = Spinner()
    try:
        _, inbox, pubs = probe(spinner, subscriptions=[(Float64MultiArray, "/franka/effort_commands"),
                                                       (PoseStamped, "/ohio/ee_goal"), (DiagnosticArray, "/diagnostics")],
                               publishers=[(JointState, "/franka/joint_states"), (Float64MultiArray, "/ohio/task_state")])
        for node in launch.nodes:
            procs.start(node.name, command_line(node, tmp_path))
        row = np.zeros(len(tp.TASK_STATE_FIELDS))
        row[tp.TS["object_qw"]] = 1.0
        row[tp.TS["target_x"]:tp.TS["target_z"] + 1] = (0.5, 0.1, 0.3)
        js = convert.joint_state_msg(tp.ARM_JOINTS, Q_HOME, np.zeros(7), np.zeros(7), 0)

        def flowing():
            assert all(procs.alive(n.name) for n in launch.nodes), procs.report()
            pubs["/franka/joint_states"].publish(js)
            pubs["/ohio/task_state"].publish(convert.task_state_msg(row))
            return len(inbox["/franka/effort_commands"]) >= 5 and len(inbox["/ohio/ee_goal"]) >= 2
        wait_for(flowing, what="effort commands on the remapped topic and goals")
        assert all(np.isfinite(m.data).all() and len(m.data) == 7 for m in inbox["/franka/effort_commands"].all())
        assert all(m.header.frame_id == "world" for m in inbox["/ohio/ee_goal"].all())
        diag = wait_for(lambda: next((d for m in inbox["/diagnostics"].all()
                                      if (d := diagnostics.diagnostic_values(m).get("controller: control loop"))), None),
                        what="the controller's diagnostics")
        assert diag["gravity_compensation"] == "driver"
    finally:
        spinner.close()
        codes = procs.stop()
    assert codes == {"controller": 0, "policy": 0}, procs.report()


@pytest.mark.ros
@pytest.mark.parametrize("executor, runs", [("auto", "events"), ("events", "events"),
                                            ("single_threaded", "single_threaded"),
                                            ("multi_threaded", "multi_threaded")])
def test_controller_node_closes_the_loop_under_each_executor(tmp_path, executor, runs):
    """The controller node as sim_arm.launch.py starts it (wall clock), spun by the executor its
    ``executor`` parameter names (``auto``: the EventsExecutor on the wall clock): it answers a
    stand-in simulator's joint states with commands within the torque limits, its diagnostics
    name the executor, and it exits 0 on SIGINT."""
    node = next(n for n in read_launch(LAUNCH_DIR / "sim_arm.launch.py", {"use_sim_time": "false"}).nodes
                if n.name == "controller")
    tau_max = ArmModel().tau_max            # the default OSC's limits (no torque_limits of its own)
    procs = Processes(tmp_path)
    spinner = Spinner()
    try:
        _, inbox, pubs = probe(spinner, subscriptions=[(Float64MultiArray, tp.EFFORT_COMMANDS),
                                                       (DiagnosticArray, "/diagnostics")],
                               publishers=[(JointState, tp.JOINT_STATES)])
        procs.start("controller", command_line(node, tmp_path) + [
            "-p", f"executor:={executor}", "-p", "diagnostics_period:=0.2"])

        def commanding():
            assert procs.alive("controller"), procs.report()
            js = convert.joint_state_msg(tp.ARM_JOINTS, Q_HOME, np.zeros(7), np.zeros(7), time.time_ns())
            pubs[tp.JOINT_STATES].publish(js)
            return len(inbox[tp.EFFORT_COMMANDS]) >= 20
        wait_for(commanding, what=f"effort commands from the controller under the {executor} executor")
        diag = wait_for(lambda: next((d for m in reversed(inbox["/diagnostics"].all())
                                      if (d := diagnostics.diagnostic_values(m).get("controller: control loop"))
                                      and int(d["commands"]) > 0), None),
                        what="the controller's diagnostics after a command")
        assert diag["executor"] == runs and diag["mode"] == "hold"
    finally:
        spinner.close()
        codes = procs.stop()
    assert codes == {"controller": 0}, procs.report()
    commands = inbox[tp.EFFORT_COMMANDS].all()
    assert all(len(m.data) == 7 and np.all(np.abs(m.data) <= tau_max) for m in commands)

"""Typed node configurations: defaults are valid, every error names the parameter."""

import pytest
import yaml
from controllers.config import OSCConfig, QPConfig

from ohio_ros.arm import config as cfg
from ohio_ros.config import EXECUTORS, resolve_executor
from ohio_ros.arm.sim_config import SimNodeConfig
from ros_launch import PACKAGE

CONFIGS = [cfg.ControllerNodeConfig, cfg.PolicyNodeConfig, SimNodeConfig, cfg.RecorderNodeConfig]


@pytest.mark.parametrize("cls", CONFIGS, ids=lambda c: c.__name__)
def test_defaults_round_trip(cls):
    """What a node declares (``defaults()``) builds the config's defaults."""
    params = cls.defaults()
    expected = cls() if cls is not cfg.PolicyNodeConfig else cls(policy="scripted")
    if cls is cfg.PolicyNodeConfig:
        params["policy"] = "scripted"        # the default 'model' needs a model_path
    assert cls.from_params(params) == expected


@pytest.mark.parametrize("cls, params, name", [
    (cfg.ControllerNodeConfig, {"goal_timeout": -1.0}, "goal_timeout"),
    (cfg.ControllerNodeConfig, {"state_timeout": "fast"}, "state_timeout"),
    (cfg.ControllerNodeConfig, {"joints": ["a", "b"]}, "joints"),
    (cfg.ControllerNodeConfig, {"goal_timout": 1.0}, "goal_timout"),
    (cfg.ControllerNodeConfig, {"realtime_priority": 99}, "realtime_priority"),
    (cfg.ControllerNodeConfig, {"executor": "static"}, "executor"),
    (cfg.PolicyNodeConfig, {"policy": "model"}, "model_path"),
    (cfg.PolicyNodeConfig, {"policy": "scripted", "model_path": "x.d3"}, "model_path"),
    (cfg.PolicyNodeConfig, {"policy": "scripted", "task": "stack"}, "task"),
    (cfg.PolicyNodeConfig, {"policy": "scripted", "k": 0}, "k"),
    (cfg.PolicyNodeConfig, {"policy": "scripted", "k": 2.5}, "k"),
    (SimNodeConfig, {"publish_rate": 70.0}, "publish_rate"),
    (SimNodeConfig, {"publish_rate": 1000.0}, "publish_rate"),          # faster than the physics
    (SimNodeConfig, {"real_time_factor": -1.0}, "real_time_factor"),
    (SimNodeConfig, {"lockstep": "yes"}, "lockstep"),
    (SimNodeConfig, {"horizon": -2}, "horizon"),
    (cfg.RecorderNodeConfig, {"storage": "rosbag1"}, "storage"),
    (cfg.ControllerNodeConfig, {"robot": "ur10"}, "robot"),
    (SimNodeConfig, {"robot": "ur5", "joints": [f"panda_joint{i}" for i in range(1, 8)]}, "joints"),
], ids=lambda x: x if isinstance(x, str) else None)
def test_errors_name_the_parameter(cls, params, name):
    with pytest.raises(cfg.ParameterError, match=name):
        cls.from_params(params)


@pytest.mark.parametrize("cls", [cfg.ControllerNodeConfig, SimNodeConfig], ids=lambda c: c.__name__)
def test_the_robot_parameter_gives_the_joint_names_unless_they_are_set(cls):
    ur5 = cls.from_params({"robot": "ur5"})
    assert ur5.joints == ("shoulder_pan_joint", "shoulder_lift_joint", "elbow_joint", "wrist_1_joint",
                          "wrist_2_joint", "wrist_3_joint")
    renamed = tuple(f"arm_{j}" for j in ur5.joints)          # a driver that prefixes its joint names
    assert cls.from_params({"robot": "ur5", "joints": list(renamed)}).joints == renamed
    assert cls().joints == tuple(f"panda_joint{i}" for i in range(1, 8))


def test_the_executor_auto_is_events_on_the_wall_clock_only():
    assert cfg.ControllerNodeConfig().executor == "auto"
    assert resolve_executor("auto", use_sim_time=False) == "events"
    assert resolve_executor("auto", use_sim_time=True) == "single_threaded"
    for kind in EXECUTORS:
        assert resolve_executor(kind, use_sim_time=True) == kind == cfg.ControllerNodeConfig(executor=kind).executor
    with pytest.raises(cfg.ParameterError, match="executor"):
        resolve_executor("static", use_sim_time=False)


def test_integers_are_accepted_for_floats():
    c = cfg.ControllerNodeConfig.from_params({"goal_timeout": 1, "diagnostics_period": 2})
    assert c.goal_timeout == 1.0 and isinstance(c.goal_timeout, float)


def test_controller_parameters_select_osc_or_qp():
    osc = cfg.controller_config({"controller.type": "osc", "controller.kp": 100, "controller.torque_limits": None})
    assert isinstance(osc, OSCConfig) and osc.kp == (100.0,) * 6 and osc.torque_limits is None
    qp = cfg.controller_config({"controller.type": "qp", "controller.velocity_weight": 5.0})
    assert isinstance(qp, QPConfig) and qp.velocity_weight == 5.0
    osc_only = {"controller.lambda_rcond", "controller.joint_limits", "controller.singularity_damping"}
    assert set(cfg.controller_defaults("qp")) > set(cfg.controller_defaults("osc")) - osc_only


@pytest.mark.parametrize("params, name", [
    ({"controller.type": "pid"}, "controller.type"),
    ({"controller.kp": -5.0}, "controller.kp"),
    ({"controller.kp": [1.0, 2.0]}, "controller.kp"),
    ({"controller.velocity_weight": 1.0}, "velocity_weight"),          # a QP field given to the OSC
])
def test_controller_errors_name_the_parameter(params, name):
    with pytest.raises(cfg.ParameterError, match=name.replace(".", r"\.")):
        cfg.controller_config(params)


def test_gravity_compensation_is_a_controller_parameter_the_controller_node_requires():
    """The controller node declares it without a default (a Franka's driver adds g(q) itself, the
    simulator does not: no default is right for both); its values are checked like any other."""
    assert set(cfg.CONTROLLER_NODE_REQUIRED) == {"controller.gravity_compensation"}
    assert all(name in cfg.controller_defaults(kind) for kind in ("osc", "qp") for name in cfg.CONTROLLER_NODE_REQUIRED)
    hint = cfg.CONTROLLER_NODE_REQUIRED["controller.gravity_compensation"]
    assert "'driver'" in hint and "Franka" in hint and "'controller'" in hint
    for kind in ("osc", "qp"):
        c = cfg.controller_config({"controller.type": kind, "controller.gravity_compensation": "driver"})
        assert c.gravity_compensation == "driver"
        with pytest.raises(cfg.ParameterError, match=r"controller\.gravity_compensation must be one of"):
            cfg.controller_config({"controller.type": kind, "controller.gravity_compensation": "drivr"})


@pytest.mark.parametrize("node, cls", [("controller", cfg.ControllerNodeConfig), ("policy", cfg.PolicyNodeConfig),
                                       ("mujoco_sim", SimNodeConfig), ("recorder", cfg.RecorderNodeConfig)])
def test_shipped_params_files_build_valid_configs(node, cls):
    """config/<node>.yaml: keyed by the node name, every key a parameter, values valid."""
    data = yaml.safe_load((PACKAGE / "config" / f"{node}.yaml").read_text())
    assert list(data) == [f"/**/{node}"]
    params = dict(data[f"/**/{node}"]["ros__parameters"])
    controller = {f"controller.{k}": v for k, v in params.pop("controller", {}).items()}
    cls.from_params(params)
    if controller:
        cfg.controller_config(controller)

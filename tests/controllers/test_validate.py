"""The one set of config-validation helpers (controllers.validate), and that the controller configs,
the ROS node configs and the routing scenarios all check their values with it."""

from __future__ import annotations

import math

import numpy as np
import pytest

from controllers import validate
from controllers.config import ConfigError, OSCConfig, QPConfig
from controllers.rebalancing import RebalancingConfig
from ohio_core.routing.scenario import Scenario, ScenarioError, synthetic
from ohio_ros.arm import config as cfg


class Oops(ValueError):
    pass


def test_number_bounds_and_conversion():
    assert validate.number("x", 2, Oops) == 2.0 and isinstance(validate.number("x", 2, Oops), float)
    assert validate.number("x", np.float32(0.5), Oops, low=0, low_open=True) == 0.5
    three = validate.number("x", 3.0, Oops, integer=True)
    assert three == 3 and isinstance(three, int)
    assert validate.number("x", 98, Oops, low=0, high=98, integer=True) == 98
    for value, bounds, message in [
        ("1", {}, "x must be a number, got '1'"),
        (True, {}, "x must be a number, got True"),
        (np.bool_(False), {}, "x must be a number"),
        (None, {}, "x must be a number, got None"),
        (math.nan, {}, "x must be finite, got nan"),
        (math.inf, {"integer": True}, "x must be finite, got inf"),
        (2.5, {"integer": True}, "x must be an integer, got 2.5"),
        (0.0, {"low": 0, "low_open": True}, "x must be > 0, got 0.0"),
        (-1, {"low": 0}, "x must be >= 0, got -1"),
        (99, {"high": 98}, "x must be <= 98, got 99"),
    ]:
        with pytest.raises(Oops, match=f"^{message}"):
            validate.number("x", value, Oops, **bounds)
    assert validate.signed_number("x", 0, Oops, "nonnegative") == 0.0
    with pytest.raises(Oops, match="x must be > 0"):
        validate.signed_number("x", 0, Oops, "positive")
    with pytest.raises(ValueError, match="sign must be one of"):
        validate.signed_number("x", 1, Oops, "negative")


def test_vector_broadcasts_and_checks_every_element():
    assert validate.vector("v", 2, 3, Oops) == (2.0, 2.0, 2.0)
    assert validate.vector("v", np.arange(3), 3, Oops, "nonnegative") == (0.0, 1.0, 2.0)
    for value, sign, message in [
        ([1.0, 2.0], "any", r"v must be a scalar or a list of 3 numbers, got shape \(2,\)"),
        ([[1.0, 2.0, 3.0]], "any", r"v must be a scalar or a list of 3 numbers, got shape \(1, 3\)"),
        ("abc", "any", "v must be numeric"),
        ([1, "x", 3], "any", "v must be numeric"),
        ([1, True, 3], "any", "v must be numeric"),
        ([1, math.inf, 3], "any", r"v must be finite, got \[1.0, inf, 3.0\]"),
        ([1, 0, 3], "positive", r"v must be > 0, got \[1.0, 0.0, 3.0\]"),
        ([1, -1, 3], "nonnegative", r"v must be >= 0"),
    ]:
        with pytest.raises(Oops, match=message):
            validate.vector("v", value, 3, Oops, sign)


def test_array_choice_string_flag_names_and_unknown_keys():
    np.testing.assert_array_equal(validate.array("a", [[1, 2]], 2, Oops), [[1.0, 2.0]])
    with pytest.raises(Oops, match=r"a must have 2 dimensions, got shape \(2,\)"):
        validate.array("a", [1, 2], 2, Oops)
    with pytest.raises(Oops, match="a must be a numeric array, got dict"):
        validate.array("a", {}, 1, Oops)
    with pytest.raises(Oops, match="a must be finite"):
        validate.array("a", [math.nan], 1, Oops)
    assert validate.choice("c", "b", ("a", "b"), Oops) == "b"
    with pytest.raises(Oops, match=r"c must be one of \['a', 'b'\], got 'z'"):
        validate.choice("c", "z", ("a", "b"), Oops)
    assert validate.string("s", "", Oops) == ""
    with pytest.raises(Oops, match="s must be a non-empty string, got ''"):
        validate.string("s", "", Oops, empty=False)
    with pytest.raises(Oops, match="s must be a string, got 3"):
        validate.string("s", 3, Oops)
    assert validate.flag("f", np.bool_(True), Oops) is True
    with pytest.raises(Oops, match="f must be true or false, got 'yes'"):
        validate.flag("f", "yes", Oops)
    assert validate.names("j", ["a", "b"], 2, Oops) == ("a", "b")
    for value, message in [("ab", "j must be a list of names"), (5, "j must be a list of names"),
                           (["a", ""], "j must be a list of names"), (["a", "a"], "j must name 2 distinct names")]:
        with pytest.raises(Oops, match=message):
            validate.names("j", value, 2, Oops)
    validate.unknown_keys(["a"], ["a", "b"], Oops)
    with pytest.raises(Oops, match=r"unknown key\(s\) \['c', 'd'\] for T; known keys: \['a', 'b'\]"):
        validate.unknown_keys(["d", "a", "c"], ["a", "b"], Oops, owner="T")


def test_the_three_config_families_share_the_checks():
    """The same bad value gives the same message in a controller config, a node config and a scenario,
    each with its own label and error class."""
    cases = [
        (ConfigError, "OSCConfig.lambda_rcond", lambda v: OSCConfig(lambda_rcond=v)),
        (ConfigError, "RebalancingConfig.cost_weight", lambda v: RebalancingConfig(cost_weight=v)),
        (cfg.ParameterError, "parameter 'goal_timeout'", lambda v: cfg.ControllerNodeConfig(goal_timeout=v)),
        (ScenarioError, "Scenario.step_minutes", lambda v: synthetic(3, step_minutes=v)),
    ]
    for error, label, build in cases:
        for value, requirement in [("a", "a number, got 'a'"), (True, "a number, got True"),
                                   (math.inf, "finite, got inf"), (-1.0, "> 0, got -1.0")]:
            with pytest.raises(error, match=f"^{label} must be {requirement}$"):
                build(value)


def test_bools_are_not_numbers_in_controller_configs():
    with pytest.raises(ConfigError, match="OSCConfig.nullspace_kp must be a number, got True"):
        OSCConfig(nullspace_kp=True)
    with pytest.raises(ConfigError, match="QPConfig.kp must be numeric"):
        QPConfig(kp=[150, 150, 150, True, 150, 150])


def test_an_infinite_integer_parameter_is_a_parameter_error():
    with pytest.raises(cfg.ParameterError, match="parameter 'k' must be finite, got inf"):
        cfg.PolicyNodeConfig.from_params({"policy": "scripted", "k": math.inf})
    with pytest.raises(cfg.ParameterError, match="parameter 'realtime_priority' must be finite"):
        cfg.ControllerNodeConfig(realtime_priority=-math.inf)


def test_integer_fields_of_scenarios():
    fields = dict(name="t", travel_time=np.ones((2, 2)), demand=np.ones((2, 2, 2)), price=np.ones((2, 2, 2)),
                  vehicles=4, horizon=2)
    assert Scenario(**{**fields, "vehicles": 4.0}).vehicles == 4
    for value, message in [(2.5, "must be an integer, got 2.5"), (0, "must be >= 1, got 0"),
                           (True, "must be a number, got True")]:
        with pytest.raises(ScenarioError, match=f"Scenario.vehicles {message}"):
            Scenario(**{**fields, "vehicles": value})

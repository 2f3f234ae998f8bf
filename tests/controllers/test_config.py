"""Typed controller configurations (controllers.config): defaults, validation, YAML loading."""

from __future__ import annotations

import dataclasses
import math
import re

import numpy as np
import pytest
import yaml

from controllers.config import ConfigError, OSCConfig, QPConfig, config_from_dict, load_config
from controllers.description import Q_HOME
from ohio_core.data.topics import TopicMap, TopicMapError

CONFIGS = [OSCConfig, QPConfig]


# -- defaults ----------------------------------------------------------------------------------

@pytest.mark.parametrize("cls", CONFIGS)
def test_defaults(cls):
    c = cls()
    assert c.kp == (150.0,) * 6
    assert c.damping_ratio == (1.0,) * 6
    assert c.output_max == (0.05, 0.05, 0.05, 0.5, 0.5, 0.5)
    assert c.torque_limits is None              # the robot's own (URDF) limits
    assert c.control_period == pytest.approx(0.02)
    assert c.rest_posture is None               # the robot's home pose
    np.testing.assert_array_equal(c.for_joints(7, Q_HOME).rest_posture, Q_HOME)
    np.testing.assert_allclose(c.kd, [2.0 * math.sqrt(150.0)] * 6, rtol=1e-15)
    assert all(isinstance(x, float) for x in c.kp)


def test_qp_specific_defaults():
    c = QPConfig()
    assert c.task_weight == (1.0,) * 6
    assert c.position_margin == pytest.approx(0.05)
    assert c.posture_weight > 0 and c.braking_acceleration > 0 and c.hold_damping > 0
    assert QPConfig.kind == "qp" and OSCConfig.kind == "osc"


@pytest.mark.parametrize("cls", CONFIGS)
def test_kd_is_critical_damping_per_axis(cls):
    kp = [100.0, 200.0, 300.0, 50.0, 60.0, 70.0]
    zeta = [1.0, 0.5, 0.7, 1.2, 0.0, 2.0]
    c = cls(kp=kp, damping_ratio=zeta)
    np.testing.assert_allclose(c.kd, 2.0 * np.array(zeta) * np.sqrt(kp), rtol=1e-15)
    assert c.kd[4] == 0.0   # zero damping is allowed


@pytest.mark.parametrize("cls", CONFIGS)
def test_gravity_compensation_is_the_controllers_by_default_and_names_its_choices(cls, tmp_path):
    """controller: the command holds g(q) (the simulator); driver: the robot driver adds it."""
    assert cls().gravity_compensation == "controller"
    assert cls(gravity_compensation="driver").gravity_compensation == "driver"
    for bad in ("Driver", "robot", "", None, 1):
        with pytest.raises(ConfigError, match=rf"{cls.__name__}\.gravity_compensation must"):
            cls(gravity_compensation=bad)
    path = tmp_path / "franka.yaml"
    path.write_text(f"type: {cls.kind}\ngravity_compensation: driver\n")
    assert load_config(path) == cls(gravity_compensation="driver")
    path.write_text(f"type: {cls.kind}\ngravity_compensation: drivr\n")
    with pytest.raises(ConfigError, match=re.escape(str(path)) + r".*must be one of \['controller', 'driver'\], got 'drivr'"):
        load_config(path)


# -- vector fields -----------------------------------------------------------------------------

@pytest.mark.parametrize("cls", CONFIGS)
def test_scalars_broadcast(cls):
    c = cls(kp=80, damping_ratio=0.8, output_max=0.1, rest_posture=0.0, torque_limits=10)
    assert c.kp == (80.0,) * 6
    assert c.damping_ratio == (0.8,) * 6
    assert c.output_max == (0.1,) * 6
    assert c.rest_posture == (0.0,) and c.torque_limits == (10.0,)     # broadcast to the arm's joints:
    arm = c.for_joints(7, Q_HOME)
    assert arm.rest_posture == (0.0,) * 7
    assert arm.torque_limits == (10.0,) * 7
    assert isinstance(c.kp, tuple)


@pytest.mark.parametrize("cls", CONFIGS)
def test_lists_and_arrays_are_accepted_and_frozen(cls):
    kp = np.array([1.0, 2, 3, 4, 5, 6])
    c = cls(kp=kp, torque_limits=[87, 87, 87, 87, 12, 12, 12])
    assert c.kp == (1.0, 2.0, 3.0, 4.0, 5.0, 6.0)
    kp[0] = 99.0                                 # the config holds its own copy
    assert c.kp[0] == 1.0
    assert c.torque_limits == (87.0,) * 4 + (12.0,) * 3
    with pytest.raises(dataclasses.FrozenInstanceError):
        c.kp = (1.0,) * 6
    arr = c.array("kp")
    np.testing.assert_array_equal(arr, c.kp)
    assert not arr.flags.writeable
    with pytest.raises(ValueError):
        arr[0] = 5.0


@pytest.mark.parametrize("cls", CONFIGS)
@pytest.mark.parametrize("field,value,n", [
    ("kp", [1.0, 2.0, 3.0], 6),
    ("kp", [1.0] * 7, 6),
    ("damping_ratio", [1.0] * 5, 6),
    ("output_max", [[0.05] * 6], 6),
])
def test_wrong_length_is_an_error_naming_the_field(cls, field, value, n):
    with pytest.raises(ConfigError, match=rf"{cls.__name__}\.{field} must be a scalar or a list of {n}"):
        cls(**{field: value})


@pytest.mark.parametrize("cls", CONFIGS)
@pytest.mark.parametrize("field", ["rest_posture", "torque_limits"])
def test_joint_vectors_of_another_arm_are_an_error_naming_the_field(cls, field):
    config = cls(**{field: [1.0] * 6})
    assert config.for_joints(6, np.zeros(6)).array(field).shape == (6,)
    with pytest.raises(ConfigError, match=rf"{cls.__name__}\.{field} has 6 entries; the arm has 7 joints"):
        config.for_joints(7, Q_HOME)
    with pytest.raises(ConfigError, match=rf"{cls.__name__}\.{field} must be a scalar or a list of numbers"):
        cls(**{field: []})


@pytest.mark.parametrize("cls", CONFIGS)
def test_a_config_not_yet_made_for_an_arm_has_no_rest_posture_to_read(cls):
    with pytest.raises(ConfigError, match="rest_posture is null"):
        cls().array("rest_posture")


@pytest.mark.parametrize("cls", CONFIGS)
@pytest.mark.parametrize("field,value", [
    ("kp", -1.0),
    ("kp", [150, 150, 150, -150, 150, 150]),
    ("kp", 0.0),
    ("damping_ratio", -0.1),
    ("output_max", 0.0),
    ("torque_limits", [87, 87, 87, 87, 12, 12, -12]),
])
def test_out_of_range_is_an_error_naming_the_field(cls, field, value):
    with pytest.raises(ConfigError, match=rf"{cls.__name__}\.{field} must be >"):
        cls(**{field: value})


@pytest.mark.parametrize("cls", CONFIGS)
@pytest.mark.parametrize("field", ["kp", "damping_ratio", "output_max", "rest_posture", "torque_limits"])
@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_non_finite_is_an_error_naming_the_field(cls, field, bad):
    n = 7 if field in ("rest_posture", "torque_limits") else 6
    value = [1.0] * n
    value[2] = bad
    with pytest.raises(ConfigError, match=rf"{cls.__name__}\.{field} must be finite"):
        cls(**{field: value})
    with pytest.raises(ConfigError, match=rf"{cls.__name__}\.{field}"):
        cls(**{field: bad})


def test_config_error_is_a_value_error():
    assert issubclass(ConfigError, ValueError)


@pytest.mark.parametrize("cls", CONFIGS)
@pytest.mark.parametrize("period", [0.0, -0.02, 0.5, math.nan])
def test_control_period_range(cls, period):
    with pytest.raises(ConfigError, match="control_period"):
        cls(control_period=period)


@pytest.mark.parametrize("cls", CONFIGS)
def test_replace_validates_again(cls):
    c = cls().replace(kp=200)
    assert c.kp == (200.0,) * 6
    np.testing.assert_allclose(c.kd, 2 * np.sqrt(200.0))
    with pytest.raises(ConfigError, match="kp"):
        cls().replace(kp=-1)


# -- from_dict / to_dict -----------------------------------------------------------------------

@pytest.mark.parametrize("cls", CONFIGS)
def test_unknown_key_is_an_error_naming_it(cls):
    with pytest.raises(ConfigError, match=r"unknown key\(s\) \['kpp'\]") as info:
        cls.from_dict({"kpp": 100})
    assert "known keys" in str(info.value) and "'kp'" in str(info.value)
    with pytest.raises(ConfigError, match=r"\['dampng_ratio', 'gain'\]"):
        cls.from_dict({"gain": 1, "dampng_ratio": 1, "kp": 10})


def test_qp_only_key_is_unknown_to_the_osc():
    with pytest.raises(ConfigError, match="velocity_weight"):
        OSCConfig.from_dict({"velocity_weight": 1.0})


def test_type_must_match():
    with pytest.raises(ConfigError, match=r"type 'qp', expected 'osc'"):
        OSCConfig.from_dict({"type": "qp"})
    assert isinstance(QPConfig.from_dict({"type": "qp"}), QPConfig)
    assert OSCConfig.from_dict(None) == OSCConfig()
    assert OSCConfig.from_dict({}) == OSCConfig()


def test_config_from_dict_dispatches_on_type():
    assert isinstance(config_from_dict({"type": "osc", "kp": 100}), OSCConfig)
    qp = config_from_dict({"type": "qp", "kp": 100, "position_margin": 0.1})
    assert isinstance(qp, QPConfig) and qp.kp == (100.0,) * 6 and qp.position_margin == 0.1
    assert config_from_dict({}) == OSCConfig()       # osc by default
    with pytest.raises(ConfigError, match=r"unknown controller type 'mpc'"):
        config_from_dict({"type": "mpc"})


@pytest.mark.parametrize("cls", CONFIGS)
def test_to_dict_from_dict_round_trip(cls):
    c = cls(kp=[100, 110, 120, 30, 40, 50], damping_ratio=0.9, torque_limits=[80] * 4 + [10] * 3,
            control_period=0.01)
    d = c.to_dict()
    assert d["type"] == cls.kind
    assert d["kp"] == [100.0, 110.0, 120.0, 30.0, 40.0, 50.0]
    assert set(d) == {"type"} | {f.name for f in dataclasses.fields(cls)}
    back = cls.from_dict(d)
    assert back == c
    assert config_from_dict(d) == c
    # the dict is plain data: it survives YAML
    assert cls.from_dict(yaml.safe_load(yaml.safe_dump(d))) == c
    # and the defaults round trip too (torque_limits None)
    assert cls.from_dict(cls().to_dict()) == cls()


# -- load_config -------------------------------------------------------------------------------

def test_load_osc_yaml(tmp_path):
    path = tmp_path / "osc.yaml"
    path.write_text("type: osc\nkp: [200, 200, 200, 50, 50, 50]\ndamping_ratio: 0.8\nnullspace_kp: 5.0\n")
    c = load_config(path)
    assert isinstance(c, OSCConfig)
    assert c.kp == (200.0,) * 3 + (50.0,) * 3
    assert c.damping_ratio == (0.8,) * 6
    assert c.nullspace_kp == 5.0
    assert c.output_max == OSCConfig().output_max     # untouched keys keep their defaults
    assert load_config(str(path)) == c                # str paths too


def test_load_qp_yaml(tmp_path):
    path = tmp_path / "qp.yaml"
    path.write_text(yaml.safe_dump({"type": "qp", "kp": 120.0, "position_margin": 0.08,
                                    "torque_limits": [80, 80, 80, 80, 10, 10, 10]}))
    c = load_config(path)
    assert isinstance(c, QPConfig)
    assert c.kp == (120.0,) * 6 and c.position_margin == 0.08
    assert c.torque_limits == (80.0,) * 4 + (10.0,) * 3


def test_load_yaml_without_type_is_osc(tmp_path):
    path = tmp_path / "plain.yaml"
    path.write_text("kp: 90\n")
    assert load_config(path) == OSCConfig(kp=90)
    only_type = tmp_path / "defaults.yaml"
    only_type.write_text("type: qp\n")
    assert load_config(only_type) == QPConfig()


@pytest.mark.parametrize("text", ["", "\n\n", "# gains to come\n", "{}\n"], ids=["empty", "blank", "comments", "braces"])
def test_controller_yaml_without_keys_is_refused_with_the_file_named(tmp_path, text):
    """A file with no keys is not taken as the defaults (a truncated or wrong file, not a choice)."""
    path = tmp_path / "ctl.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=re.escape(str(path)) + r": (the file is empty|no controller config keys)"):
        load_config(path)


def test_topic_map_yaml_shares_the_refusal_of_an_empty_file(tmp_path):
    """The topic-map loader uses the same reader: an empty file is an error naming it, while an
    explicit empty mapping still means 'every topic at its default' (its documented meaning)."""
    empty = tmp_path / "topics.yaml"
    empty.write_text("# copy of ohio.yaml, not filled in\n")
    with pytest.raises(TopicMapError, match=re.escape(str(empty)) + r": the file is empty \(no topic map keys\)"):
        TopicMap.load(empty)
    explicit = tmp_path / "defaults.yaml"
    explicit.write_text("{}\n")
    assert TopicMap.load(explicit) == TopicMap()


def test_typo_key_in_file_names_file_and_key(tmp_path):
    path = tmp_path / "typo.yaml"
    path.write_text("type: qp\nkp: 100\npositon_margin: 0.1\n")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    msg = str(info.value)
    assert str(path) in msg and "positon_margin" in msg and "position_margin" in msg


def test_bad_value_in_file_names_file_and_field(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("kp: [100, 100]\n")
    with pytest.raises(ConfigError, match=re.escape(str(path)) + r".*OSCConfig\.kp"):
        load_config(path)
    path.write_text("type: lqr\n")
    with pytest.raises(ConfigError, match=re.escape(str(path)) + r".*unknown controller type 'lqr'"):
        load_config(path)


def test_missing_file_names_the_file(tmp_path):
    path = tmp_path / "nope" / "controller.yaml"
    with pytest.raises(ConfigError, match=r"not found: " + re.escape(str(path))):
        load_config(path)


def test_invalid_yaml_names_the_file(tmp_path):
    path = tmp_path / "broken.yaml"
    path.write_text("kp: [150, 150\ndamping_ratio: 1\n")
    with pytest.raises(ConfigError, match=re.escape(str(path)) + r": invalid YAML"):
        load_config(path)


@pytest.mark.parametrize("text,kind", [("- 1\n- 2\n", "list"), ("150\n", "int"), ("just a string\n", "str")])
def test_non_mapping_names_the_file(tmp_path, text, kind):
    path = tmp_path / "list.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=re.escape(str(path)) + rf": expected a mapping.*got {kind}"):
        load_config(path)


def test_yaml_round_trip_through_a_file(tmp_path):
    for c in (OSCConfig(kp=[100, 110, 120, 30, 40, 50]), QPConfig(damping_ratio=0.7, hold_damping=5.0)):
        path = tmp_path / f"{c.kind}.yaml"
        path.write_text(yaml.safe_dump(c.to_dict()))
        assert load_config(path) == c


# -- validation of every field --------------------------------------------------------------

@pytest.mark.parametrize("value", ["abc", [1, 2, "x", 4, 5, 6]])
def test_non_numeric_vector_is_a_config_error_naming_the_field(value):
    with pytest.raises(ConfigError, match=r"OSCConfig\.kp"):
        OSCConfig(kp=value)


@pytest.mark.parametrize("cls,field,value", [
    (OSCConfig, "nullspace_kp", -5.0),
    (OSCConfig, "nullspace_kp", math.nan),
    (OSCConfig, "nullspace_kp", "abc"),
    (OSCConfig, "lambda_rcond", -1.0),
    (QPConfig, "posture_weight", -1.0),
    (QPConfig, "position_margin", -0.05),
    (QPConfig, "braking_acceleration", 0.0),
    (QPConfig, "hold_damping", math.nan),
    (OSCConfig, "kp", None),
])
def test_scalar_fields_are_validated(cls, field, value):
    with pytest.raises(ConfigError, match=field):
        cls(**{field: value})


def test_non_numeric_control_period_is_a_config_error():
    with pytest.raises(ConfigError, match="control_period"):
        OSCConfig(control_period="0.02")

"""The controller contract (controllers.base): every low-level controller is a registered
``Controller`` built from its config, with its inverse capabilities as ``InverseCapability`` values."""

from __future__ import annotations

import numpy as np
import pytest
import yaml

from controllers.base import (ControlOutput, Controller, InverseCapability, controller_class, controller_config,
                              make_controller, register_controller, registered_controllers, supports)
from controllers.config import CONFIG_TYPES, ConfigError, OSCConfig, QPConfig
from controllers.description import Q_HOME
from controllers.goals import PoseGoal
from controllers.osc import OSC, osc_law, osc_terms
from controllers.qp import QP
from controllers.robot import ArmModel
from ohio_core.inverse import invert
from ohio_core.inverse.base import Segments
from ohio_core.inverse.terms import batch_kinematics


@pytest.fixture(scope="module")
def model() -> ArmModel:
    return ArmModel()


def test_every_config_kind_has_a_registered_controller():
    registered = registered_controllers()
    assert registered == {"osc": OSC, "qp": QP}
    assert set(registered) == set(CONFIG_TYPES)
    for kind, cls in registered.items():
        assert issubclass(cls, Controller) and cls.name == kind and cls.config_type is CONFIG_TYPES[kind]


@pytest.mark.parametrize("config, cls", [(OSCConfig(), OSC), (QPConfig(), QP),
                                         (OSCConfig(kp=80.0, gravity_compensation="driver"), OSC),
                                         (QPConfig(velocity_weight=5.0), QP)])
def test_make_controller_builds_the_implementation_of_its_config(model, config, cls):
    controller = make_controller(config, model)
    assert type(controller) is cls and isinstance(controller, Controller)
    assert controller.config == config.for_joints(7, model.home)
    assert controller.config.rest_posture == tuple(model.home)
    assert controller.model.has_gravity == (config.gravity_compensation == "controller")
    np.testing.assert_array_equal(controller.tau_max, model.tau_max)
    goal = controller.goal_from_action(np.zeros(6), Q_HOME)
    assert isinstance(goal, PoseGoal)
    out = controller.compute(Q_HOME, np.zeros(7), goal)
    assert isinstance(out, ControlOutput)
    np.testing.assert_array_equal(controller.act(Q_HOME, np.zeros(7), goal), out.tau)


def test_make_controller_defaults_to_the_panda_model():
    controller = make_controller(QPConfig(torque_limits=[10.0] * 7))
    assert isinstance(controller.model, ArmModel)
    np.testing.assert_array_equal(controller.tau_max, np.full(7, 10.0))


def test_a_controller_refuses_another_controllers_config(model):
    with pytest.raises(TypeError, match="OSC needs a config of type OSCConfig, got QPConfig"):
        OSC(model, QPConfig())
    with pytest.raises(TypeError, match="QP needs a config of type QPConfig, got OSCConfig"):
        QP(model, OSCConfig())


def test_capabilities_are_enum_values():
    assert OSC.capabilities == {InverseCapability.CLOSED_FORM, InverseCapability.DIFFERENTIABLE}
    assert QP.capabilities == {InverseCapability.KKT}
    for cls in registered_controllers().values():
        assert cls.capabilities and all(isinstance(c, InverseCapability) for c in cls.capabilities)


def test_supports_reads_the_capabilities_of_controllers_only(model):
    osc, qp = OSC(model), QP(model)
    assert supports(osc, InverseCapability.CLOSED_FORM) and not supports(osc, InverseCapability.KKT)
    assert supports(qp, InverseCapability.KKT) and not supports(qp, InverseCapability.DIFFERENTIABLE)
    assert supports(qp, InverseCapability.DIFFERENTIABLE, InverseCapability.KKT)

    class Lookalike:               # the right attribute, not a Controller
        capabilities = frozenset({InverseCapability.CLOSED_FORM})

    assert not supports(Lookalike(), InverseCapability.CLOSED_FORM)


def test_inverses_refuse_a_controller_without_their_capability(model):
    rng = np.random.default_rng(0)
    q = np.broadcast_to(Q_HOME, (2, 3, 7)).copy()
    seg = Segments(q=q, qd=rng.normal(0, 0.1, q.shape), tau=rng.normal(0, 1, q.shape))
    with pytest.raises(ValueError, match="closed-form controller"):
        invert("analytical", seg, QP(model))
    with pytest.raises(ValueError, match="needs the QP controller"):
        invert("qp", seg, OSC(model))


def test_the_batched_law_where_it_exists(model, rng):
    """The OSC's ``terms``/``law`` are ``osc_terms``/``osc_law``, equal to ``compute`` before clipping;
    the QP declares it has none."""
    osc = OSC(model)
    assert osc.batched_law and not QP.batched_law
    q = Q_HOME + rng.normal(0, 0.2, (4, 7))
    qd = rng.normal(0, 0.3, (4, 7))
    kin = batch_kinematics(osc.model, q, qd)
    goals = [osc.goal_from_action(rng.uniform(-1, 1, 6), qi) for qi in q]
    goal = PoseGoal.unchecked(np.array([g.p for g in goals]), np.array([g.R for g in goals]))
    terms = osc.terms(kin, q, qd)
    reference = osc_terms(kin, q, qd, osc.config)
    np.testing.assert_array_equal(terms.B, reference.B)
    np.testing.assert_array_equal(terms.c, reference.c)
    tau = osc.law(terms, goal)
    np.testing.assert_array_equal(tau, osc_law(reference, goal))
    for i in range(len(q)):
        np.testing.assert_allclose(tau[i], osc.compute(q[i], qd[i], goals[i]).tau_unclipped, atol=1e-8)
    qp = QP(model)
    with pytest.raises(NotImplementedError, match="the qp controller has no batched law"):
        qp.terms(kin, q, qd)
    with pytest.raises(NotImplementedError, match="the qp controller has no batched law"):
        qp.law(terms, goal)


def test_registration_is_checked():
    with pytest.raises(ValueError, match="already registered by OSC"):
        @register_controller
        class OtherOSC(OSC):
            pass

    with pytest.raises(ValueError, match="name must be its config kind 'osc'"):
        @register_controller
        class Misnamed(OSC):
            name = "other"

    with pytest.raises(TypeError, match="InverseCapability values"):
        @register_controller
        class Strings(OSC):
            capabilities = frozenset({"closed_form"})

    assert controller_class("osc") is OSC
    with pytest.raises(ValueError, match="unknown controller type 'mpc'"):
        controller_class("mpc")


def test_controller_config_from_object_path_or_none(tmp_path):
    assert controller_config(None) == OSCConfig()
    qp = QPConfig(kp=90.0)
    assert controller_config(qp) is qp
    path = tmp_path / "qp.yaml"
    path.write_text(yaml.safe_dump({"type": "qp", "kp": 90.0}))
    assert controller_config(path) == qp
    assert controller_config(str(path)) == qp
    with pytest.raises(ConfigError, match="controller config not found"):
        controller_config(tmp_path / "missing.yaml")

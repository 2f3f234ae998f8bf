"""The contract every low-level arm controller meets, and how one is made from its config.

A controller is a pure function of (state, goal, config) bound to a robot model::

    tau = clip(pi(q, qd, g; config), -tau_max, tau_max)

``compute(q, qd, goal)`` returns one state's ``ControlOutput``, ``act`` its torque, and
``goal_from_action(action, q)`` maps a policy's normalized action in [-1, 1]^6 onto the absolute goal
(``controllers.goals``). ``capabilities`` says what an inverse problem may exploit in the law
(``InverseCapability``). Where the law has a batched form over leading dimensions of states,
``batched_law`` is True and ``terms``/``law`` evaluate it (the OSC's B e(g) + c); the QP has none.

Implementations register themselves under their config's kind (``@register_controller``).
``make_controller(config)`` builds the registered implementation of ``config.kind``; the
implementation of kind K is the module ``controllers.K``, imported on first use, so that importing
this module loads no solver.
"""

from __future__ import annotations

import abc
import enum
import importlib
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import numpy as np

from controllers.config import CONFIG_TYPES, OSCConfig, QPConfig, load_config
from controllers.goals import PoseGoal, goal_from_action, require_finite
from controllers.robot import ArmModel, controlled_model
from controllers.workspace import clamp_goal


class InverseCapability(enum.Enum):
    """What an inverse problem may exploit in a controller's law."""

    #: before clipping the law is affine in the task error, tau = B e(g) + c (``terms``/``law``)
    CLOSED_FORM = "closed_form"
    #: the batched law has exact derivatives in the goal (iterative and sampling inverses)
    DIFFERENTIABLE = "differentiable"
    #: the law is a QP: its optimality (KKT) conditions tie the torque to the goal
    KKT = "kkt"


@dataclass(frozen=True)
class ControlOutput:
    tau: np.ndarray              # (..., n) commanded torque, within limits
    tau_unclipped: np.ndarray    # (..., n)
    saturated: np.ndarray        # (..., n) bool, entries that hit a limit


def clip_torque(tau: np.ndarray, tau_max: np.ndarray) -> ControlOutput:
    """clip(tau, -tau_max, tau_max) with what was clipped."""
    clipped = np.minimum(np.maximum(tau, -tau_max), tau_max)
    return ControlOutput(tau=clipped, tau_unclipped=tau, saturated=clipped != tau)


def torque_limits(model: ArmModel, config) -> np.ndarray:
    """tau_max: the config's ``torque_limits``, or the model's (the URDF's effort limits)."""
    return model.tau_max if config.torque_limits is None else config.array("torque_limits")


class Controller(abc.ABC):
    """A low-level controller bound to a robot model: ``act(q, qd, goal) -> tau``.

    ``self.model`` is the model the law runs on, ``controlled_model(model,
    config.gravity_compensation)``; ``self.tau_max`` the torque limits it clips to;
    ``self.goals_clamped`` counts the goals ``compute`` clamped into the config's workspace
    (``controllers.workspace``).
    """

    #: the config kind it is registered under (``config_type.kind``)
    name: ClassVar[str]
    config_type: ClassVar[type]
    capabilities: ClassVar[frozenset[InverseCapability]]
    #: whether ``terms``/``law`` evaluate the law over leading batch dimensions of states
    batched_law: ClassVar[bool] = False

    def __init__(self, model: ArmModel, config):
        if not isinstance(config, self.config_type):
            raise TypeError(f"{type(self).__name__} needs a config of type {self.config_type.__name__}, "
                            f"got {type(config).__name__}")
        config = config.for_joints(model.nq, model.home)
        self.model, self.config = controlled_model(model, config.gravity_compensation), config
        self.tau_max = torque_limits(model, config)
        self.goals_clamped = 0

    def workspace_goal(self, goal: PoseGoal) -> PoseGoal:
        """``goal`` clamped into the config's workspace; a clamped goal is counted in ``goals_clamped``."""
        goal, moved = clamp_goal(goal, self.config)
        self.goals_clamped += bool(moved)
        return goal

    @abc.abstractmethod
    def compute(self, q: np.ndarray, qd: np.ndarray, goal: PoseGoal) -> ControlOutput:
        """One state's torque; a state that is not finite or beyond the physical bounds
        (``ArmModel.check_state``) raises ``NonFiniteInputError``."""

    def act(self, q: np.ndarray, qd: np.ndarray, goal: PoseGoal) -> np.ndarray:
        return self.compute(q, qd, goal).tau

    def goal_from_action(self, action: np.ndarray, q: np.ndarray) -> PoseGoal:
        """p_g = p0 + s_p a[:3], R_g = exp([s_o a[3:]]x) R0 from the TCP pose (p0, R0) at q, s = output_max."""
        p0, R0 = self.model.tcp_pose(require_finite("q", q))
        return goal_from_action(action, p0, R0, self.config.output_max)

    def terms(self, kin, q: np.ndarray, qd: np.ndarray):
        """The goal-independent part of the batched law at states (leading dimensions)."""
        raise NotImplementedError(f"the {self.name} controller has no batched law")

    def law(self, terms, goal: PoseGoal) -> np.ndarray:
        """The unclipped torque of the batched law for ``terms`` and goals (leading dimensions)."""
        raise NotImplementedError(f"the {self.name} controller has no batched law")


def supports(controller, *capabilities: InverseCapability) -> bool:
    """Whether ``controller`` is a ``Controller`` whose law offers one of ``capabilities``."""
    return isinstance(controller, Controller) and not controller.capabilities.isdisjoint(capabilities)


_REGISTRY: dict[str, type[Controller]] = {}


def register_controller(cls: type[Controller]) -> type[Controller]:
    """Class decorator: register ``cls`` as the implementation of ``cls.config_type.kind``."""
    kind = cls.config_type.kind
    if cls.name != kind:
        raise ValueError(f"{cls.__name__}.name must be its config kind {kind!r}, got {cls.name!r}")
    if not all(isinstance(c, InverseCapability) for c in cls.capabilities):
        raise TypeError(f"{cls.__name__}.capabilities must hold InverseCapability values, got {cls.capabilities}")
    if _REGISTRY.setdefault(kind, cls) is not cls:
        raise ValueError(f"controller kind {kind!r} is already registered by {_REGISTRY[kind].__name__}")
    return cls


def registered_controllers() -> dict[str, type[Controller]]:
    """Config kind -> implementation, for every kind of ``controllers.config.CONFIG_TYPES``."""
    return {kind: controller_class(kind) for kind in CONFIG_TYPES}


def controller_class(kind: str) -> type[Controller]:
    """The implementation registered for config kind ``kind`` (its module imported on first use)."""
    if kind not in CONFIG_TYPES:
        raise ValueError(f"unknown controller type {kind!r}; expected one of {sorted(CONFIG_TYPES)}")
    if kind not in _REGISTRY:
        importlib.import_module(f"{__package__}.{kind}")
    if kind not in _REGISTRY:
        raise LookupError(f"module {__package__}.{kind} registers no controller for kind {kind!r}")
    return _REGISTRY[kind]


def make_controller(config: OSCConfig | QPConfig, model: ArmModel | None = None) -> Controller:
    """The controller of ``config`` (its registered implementation) on ``model`` (default: ``ArmModel()``,
    the Panda)."""
    return controller_class(config.kind)(model or ArmModel(), config)


def controller_config(config: OSCConfig | QPConfig | str | Path | None) -> OSCConfig | QPConfig:
    """A controller config from a config object, a YAML path, or None (``OSCConfig()``)."""
    if config is None:
        return OSCConfig()
    if isinstance(config, tuple(CONFIG_TYPES.values())):
        return config
    return load_config(config)

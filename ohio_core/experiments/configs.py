"""The controller configurations of the mismatch experiment, and the settings shared by the arm experiments.

Data are collected with ``ORIGINAL`` (kp 150, damping ratio 1, output scale 0.05 m / 0.5 rad, no
joint-limit filter);
policies are deployed under each ``CHANGED`` config. The same configs ship as YAML files in
``config/controllers/`` for ``ohio eval --controller`` (a test holds the two equal).
"""

from __future__ import annotations

from dataclasses import dataclass

from controllers.config import OSCConfig, QPConfig
from ohio_core.envs.arm.tasks import TASKS


@dataclass(frozen=True)
class ArmExperimentConfig:
    """Settings every arm experiment shares; subclasses add their own fields and call
    ``super().__post_init__()`` first."""

    task: str = "reach"
    algo: str = "bc"
    steps: int | None = None             # None: the task's default (``learning.algos.TASK_STEPS``)
    eval_episodes: int = 20
    seed: int = 0
    k: int = 5
    workers: int = 2                     # processes for relabeling, training and evaluation
    action_scaling: str = "none"         # TrainConfig.action_scaling of every policy
    train_seed: int | None = None        # seed of the training runs (None: ``seed``, which also draws the data)
    ignore_observations: tuple = ()      # TrainConfig.ignore_observations of every policy

    def __post_init__(self):
        if self.task not in TASKS:
            raise ValueError(f"task must be one of {list(TASKS)}, got {self.task!r}")


#: the reference work's OSC: the law alone, without the joint-limit filter (``controllers.osc``), so that
#: the deployment configs below, whose policies drive the arm toward its limits, keep the reference results
ORIGINAL = OSCConfig(joint_limits=False, singularity_damping=0.0)
#: the reference work's enlarged output range (m, rad) of its two changed settings
WIDE_RANGE = (0.4, 0.4, 0.4, 1.6, 1.6, 1.6)

CHANGED: dict[str, OSCConfig | QPConfig] = {
    # a normalized orientation action means twice the rotation
    "ori_scale": ORIGINAL.replace(output_max=(0.05, 0.05, 0.05, 1.0, 1.0, 1.0)),
    # a third of the orientation stiffness
    "kp_ori50": ORIGINAL.replace(kp=(150.0, 150.0, 150.0, 50.0, 50.0, 50.0)),
    # three times the damping: the same goal offset moves the arm about three times slower
    "damping3": ORIGINAL.replace(damping_ratio=3.0),
    # another controller: the task-space QP with the original gains
    "qp": QPConfig(),
    # the reference work's two changed settings, each with the output range enlarged to 0.4 m / 1.6 rad:
    # a logged normalized action means an 8x larger move (3.2x for rotations)
    "kp_ori50_wide": ORIGINAL.replace(kp=(150.0, 150.0, 150.0, 50.0, 50.0, 50.0), output_max=WIDE_RANGE),
    "damping3_pos_wide": ORIGINAL.replace(damping_ratio=(3.0, 3.0, 3.0, 1.0, 1.0, 1.0), output_max=WIDE_RANGE),
}

#: YAML file of each changed config, relative to the repository's ``config/controllers``
YAML_FILES = {"ori_scale": "osc_ori_scale.yaml", "kp_ori50": "osc_kp_ori50.yaml",
              "damping3": "osc_damping3.yaml", "qp": "qp.yaml", "kp_ori50_wide": "osc_kp_ori50_wide.yaml",
              "damping3_pos_wide": "osc_damping3_pos_wide.yaml"}


def deployment_configs(names=None) -> dict:
    """``{name: config}`` for ``names`` (default: every changed config; ``original`` allowed)."""
    table = {"original": ORIGINAL, **CHANGED}
    names = list(CHANGED) if names is None else list(names)
    unknown = [n for n in names if n not in table]
    if unknown:
        raise ValueError(f"unknown controller config(s) {unknown}; expected some of {sorted(table)}")
    return {n: table[n] for n in names}


def inverse_methods(config) -> dict[str, str]:
    """Inverse method behind each OHIO column for a deployment config: the OSC's closed form, its
    clipping-aware numerical inverse (action matching over the k periods), and state matching (the
    goal whose k-period rollout under the deployment controller reaches the logged next state).
    For the QP, the analytical column is its exact KKT inverse (``qp``); no numerical inverse runs
    through the QP itself, so the numerical and state-matching columns use the OSC with the QP's
    gains (``...@osc``, an approximate model of the QP: the two laws agree where no QP constraint
    is active)."""
    if isinstance(config, QPConfig):
        return {"ohio_analytical": "qp", "ohio_numerical": "numerical@osc", "ohio_state": "state_matching@osc"}
    return {"ohio_analytical": "analytical", "ohio_numerical": "numerical", "ohio_state": "state_matching"}


def inversion_controller_config(config, inverse: str):
    """The controller config an inverse method runs on: ``method@osc`` means the OSC with
    ``config``'s shared gains (task PD, output scale, posture, limits, period)."""
    if not inverse.endswith("@osc") or isinstance(config, OSCConfig):
        return config
    shared = {f: getattr(config, f) for f in ("kp", "damping_ratio", "output_max", "nullspace_kp", "rest_posture",
                                              "torque_limits", "control_period")}
    return OSCConfig(**shared)

"""
The high-level policy as the policy node runs it, without middleware.

A ``HighLevelPolicy`` turns the latest joint state and task state into the task
observation (``ohio_core.envs.arm.tasks.OBS_LAYOUT``; TCP pose by Pinocchio forward kinematics,
the same function the bag reader uses), asks the policy for a normalized action and maps it onto
an end-effector goal with the controller the policy was made for (``goal_from_action``), plus a
binary gripper command (``controllers.goals.gripper_command``: grasp where a[6] >= 0) where the
action has one.

Sources: a trained model (``ohio_core.learning.policy.load_policy``; torch and d3rlpy are
loaded only then) or the task's scripted expert (``ohio_core.policies.scripted.EXPERTS``).
"""

from dataclasses import dataclass

from controllers.base import make_controller
from controllers.config import config_from_dict
from controllers.description import DEFAULT_ROBOT
from controllers.goals import gripper_command, PoseGoal
from controllers.robot import ArmModel
import numpy as np
from ohio_core.data.bags import task_observation
from ohio_core.data.topics import TS
from ohio_core.envs.arm.tasks import OBS_DIM, OBS_LAYOUT, TASKS
from ohio_core.learning.policy import load_policy
from ohio_core.policies.scripted import EXPERTS
from ohio_ros.config import ParameterError

ACTION_DIMS = {name: 6 + int(task.uses_gripper) for name, task in TASKS.items()}


def observation(q, qd, task_state: np.ndarray, model: ArmModel) -> np.ndarray:
    """Return the (OBS_DIM,) observation of joint states and an ohio/task_state row."""
    ts = np.asarray(task_state, dtype=float)
    obs = task_observation(q, qd, ts[TS['finger_opening']],
                           ts[TS['object_x']:TS['object_z'] + 1],
                           ts[TS['object_qx']:TS['object_qw'] + 1],
                           ts[TS['target_x']:TS['target_z'] + 1],
                           ts[[TS['door_angle'], TS['handle_angle']]], model)
    return obs.reshape(OBS_DIM)


@dataclass(frozen=True)
class Decision:
    """One high-level step: the goal and the gripper command (None for tasks without one)."""

    goal: PoseGoal
    gripper: float | None
    action: np.ndarray


class HighLevelPolicy:
    """A goal-level policy (obs -> normalized action), its task, k and controller."""

    def __init__(self, act, task: str, k: int, controller, source: str):
        self.act, self.task, self.k, self.controller = act, task, int(k), controller
        self.source = source
        self.action_dim = ACTION_DIMS[task]
        self.model = controller.model

    def reset(self) -> None:
        """Reset the policy's internal state at the start of an episode, if it has one."""
        reset = getattr(self.act, 'reset', None)
        if reset is not None:
            reset()

    def decide(self, q, qd, task_state) -> Decision:
        """Return the goal (and gripper command) for this state; ValueError for a bad action."""
        obs = observation(q, qd, task_state, self.model)
        if not np.isfinite(obs).all():
            raise ValueError('observation is not finite (task state incomplete?)')
        a = np.asarray(self.act(obs), dtype=float).reshape(-1)
        if a.shape != (self.action_dim,):
            raise ValueError(f'policy returned an action of shape {a.shape}, '
                             f'expected ({self.action_dim},)')
        if not np.isfinite(a).all():
            raise ValueError(f'policy returned a non-finite action {a}')
        goal = self.controller.goal_from_action(a[:6], q)
        gripper = gripper_command(a[6]) if self.action_dim == 7 else None
        return Decision(goal=goal, gripper=gripper, action=a)


def scripted(task: str, k: int, controller_config, model: ArmModel | None = None):
    """Return the scripted expert of ``task``, goals scaled by ``controller_config.output_max``."""
    controller = make_controller(controller_config, model or ArmModel())
    expert = EXPERTS[task](controller_config.output_max)
    return HighLevelPolicy(expert, task, k, controller, f'scripted {task} expert')


class _ModelActor:
    """Adapts a loaded model (``.act(obs)``) to a callable; models keep no episode state."""

    def __init__(self, policy):
        self.policy = policy

    def __call__(self, obs):
        return self.policy.act(obs)


def from_model(policy, path: str = '<model>', model: ArmModel | None = None):
    """
    Wrap a loaded model (``.meta`` and ``.act(obs)``) after checking its meta.

    Errors name ``model_path`` and say which field of the meta is wrong.
    """
    meta = getattr(policy, 'meta', None)
    where = f"parameter 'model_path' ({path})"
    if not isinstance(meta, dict):
        raise ParameterError(f'{where}: the model has no meta dict')
    missing = [k for k in ('task', 'k', 'controller', 'obs_layout', 'action_dim', 'level')
               if k not in meta]
    if missing:
        raise ParameterError(f'{where}: model meta lacks {missing}')
    task = meta['task']
    if task not in ACTION_DIMS:
        raise ParameterError(f'{where}: model task {task!r} is not one of {sorted(ACTION_DIMS)}')
    if meta['level'] != 'goal':
        raise ParameterError(f"{where}: model level is {meta['level']!r}; the policy node runs "
                             'goal-level models')
    layout = [tuple(x) for x in meta['obs_layout']]
    if layout != [tuple(x) for x in OBS_LAYOUT]:
        raise ParameterError(f'{where}: model observation layout {layout} differs from '
                             f'{list(OBS_LAYOUT)}')
    if int(meta['action_dim']) != ACTION_DIMS[task]:
        raise ParameterError(f"{where}: model action_dim {meta['action_dim']} does not fit task "
                             f'{task!r} ({ACTION_DIMS[task]})')
    k = meta['k']
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise ParameterError(f'{where}: model k must be an integer >= 1, got {k!r}')
    try:
        config = config_from_dict(dict(meta['controller']))
    except (ValueError, TypeError) as exc:
        raise ParameterError(f'{where}: model controller config: {exc}') from None
    model = model or ArmModel()
    trained_for = meta.get('robot', DEFAULT_ROBOT)
    if trained_for != model.robot.name:
        raise ParameterError(f'{where}: the model was trained for robot {trained_for!r}, the node '
                             f"runs {model.robot.name!r} (parameter 'robot')")
    controller = make_controller(config, model)
    return HighLevelPolicy(_ModelActor(policy), task, k, controller, f'model {path}')


def load_model(path: str, model: ArmModel | None = None) -> HighLevelPolicy:
    """Load a trained goal-level model with ``ohio_core.learning.policy.load_policy``."""
    try:
        policy = load_policy(path)
    except ImportError as exc:      # torch or d3rlpy missing
        raise ParameterError(f"parameter 'model_path': cannot load models here ({exc})") from None
    except FileNotFoundError:
        raise ParameterError(f"parameter 'model_path': no such model file: {path}") from None
    except (OSError, ValueError, KeyError) as exc:
        raise ParameterError(f"parameter 'model_path': cannot load {path}: "
                             f'{type(exc).__name__}: {exc}') from None
    return from_model(policy, path, model)

"""
The simulator node's world, without middleware: an arm task stepped in small increments.

The physics advances one publish period at a time (``publish_period``, e.g. 2 ms), applying the
latest effort and gripper commands (zero-order hold; torques clipped to the motor limits). Every
``substeps_per_period`` increments a control period ends: the task's reward and success are
evaluated and a task-state row is due, with the conventions of ``ohio_core.data.bags``:
row ``step = j`` describes the world at the start of period j and carries the reward/success of
period j - 1 (NaN/0 at j = 0); the final row of an episode has ``last = 1`` and ``timeout = 1``.
After it the next episode starts (a new scene drawn from ``[seed, episode]``) at the same time.
"""

from dataclasses import dataclass

from controllers.description import DEFAULT_ROBOT
from controllers.goals import matrix_to_quat
import numpy as np
from ohio_core.data.topics import TASK_STATE_FIELDS, TS
from ohio_core.envs.arm.scene import SceneConfig
from ohio_core.envs.arm.tasks import TASKS


@dataclass
class EpisodeRecord:
    """What happened in one episode (for the node's report)."""

    episode: int
    steps: int = 0
    success: bool = False
    return_: float = 0.0
    final_distance: float = float('nan')


class SimSession:
    """An arm task (``reach``/``lift``) advanced by publish periods, with episodes."""

    def __init__(self, task: str, seed: int, horizon: int, control_period: float,
                 substeps_per_period: int, scene: SceneConfig = SceneConfig(),
                 robot: str = DEFAULT_ROBOT):
        self.publish_period = control_period / substeps_per_period
        self.task = TASKS[task](scene, self.publish_period, robot=robot)
        self.sim = self.task.sim
        self.seed, self.substeps = int(seed), int(substeps_per_period)
        self.horizon = self.task.default_horizon if horizon == 0 else int(horizon)
        self.tau = np.zeros(self.sim.n)
        self.gripper = 0.0
        self.episode = -1
        self.records: list[EpisodeRecord] = []
        m = self.sim.model
        self._finger_dof = np.array([m.jnt_dofadr[m.joint(j).id]
                                     for j in self.sim.robot.gripper_joints], dtype=int)
        self.t0 = 0.0
        self._new_episode()

    # -- episodes ------------------------------------------------------------------------------
    def _new_episode(self) -> None:
        self.episode += 1
        self.task.reset(np.random.default_rng([self.seed, self.episode]))
        self.step = 0                 # control periods completed in the episode
        self.sub = 0                  # publish periods completed in the current control period
        self.tau = np.zeros(self.sim.n)
        self.gripper = 0.0
        self._reward = float('nan')
        self._success = False
        self.records.append(EpisodeRecord(self.episode))

    @property
    def time(self) -> float:
        """Return the simulated seconds since the session started (across episodes)."""
        return self.t0 + self.sim.time

    # -- commands ------------------------------------------------------------------------------
    def command(self, tau) -> None:
        """Hold ``tau`` (n finite values, N m) from now on."""
        tau = np.asarray(tau, dtype=float)
        if tau.shape != (self.sim.n,) or not np.isfinite(tau).all():
            raise ValueError(f'effort command must be {self.sim.n} finite numbers, got {tau}')
        self.tau = tau

    def command_gripper(self, value: float) -> None:
        """Hold the gripper command (0 open .. 1 closed)."""
        if not np.isfinite(value):
            raise ValueError(f'gripper command must be finite, got {value}')
        self.gripper = float(np.clip(value, 0.0, 1.0))

    # -- stepping ------------------------------------------------------------------------------
    @property
    def at_period_start(self) -> bool:
        """Whether a control period starts now (a task-state row is due)."""
        return self.sub == 0

    def advance(self) -> None:
        """One publish period of physics with the held commands."""
        self.sim.control_step(self.tau, self.gripper)
        self.sub += 1
        if self.sub == self.substeps:
            self.sub = 0
            self.step += 1
            self._reward, self._success = self.task.reward_success()
            rec = self.records[-1]
            rec.steps = self.step
            rec.success |= bool(self._success)
            rec.return_ += float(self._reward)

    def idle(self) -> None:
        """One publish period of time with the arm held still (brakes on; no physics)."""
        self.t0 += self.publish_period

    def episode_over(self) -> bool:
        """Whether the episode has reached its horizon (at a period start)."""
        return self.horizon > 0 and self.step >= self.horizon and self.sub == 0

    def next_episode(self) -> None:
        """Start the next episode now (simulated time goes on)."""
        self.records[-1].final_distance = self.tcp_target_distance()
        self.t0 = self.time
        self._new_episode()

    # -- readings ------------------------------------------------------------------------------
    def joint_state(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(position, velocity, effort) of the n arm joints then the gripper joints."""
        s = self.sim
        fq = s.data.qpos[s.qpos_fingers]
        fqd = s.data.qvel[self._finger_dof]
        return (np.r_[s.q, fq], np.r_[s.qd, fqd], np.r_[s.tau, np.zeros(len(fq))])

    def task_state_row(self) -> np.ndarray:
        """Return the task-state row due at this period start (TASK_STATE_FIELDS order)."""
        s = self.sim
        row = np.zeros(len(TASK_STATE_FIELDS))
        row[TS['episode']] = self.episode
        row[TS['step']] = self.step
        row[TS['reward']] = self._reward if self.step > 0 else np.nan
        row[TS['success']] = float(self._success) if self.step > 0 else 0.0
        if self.episode_over():
            row[TS['last']] = row[TS['timeout']] = 1.0
        obj_p, obj_R = self.task.object_pose()
        row[TS['object_x']:TS['object_z'] + 1] = obj_p
        row[TS['object_qx']:TS['object_qw'] + 1] = matrix_to_quat(obj_R)
        row[TS['target_x']:TS['target_z'] + 1] = self.task.target()
        row[TS['finger_opening']] = s.finger_opening
        row[[TS['door_angle'], TS['handle_angle']]] = self.task.angles()
        return row

    def tcp_target_distance(self) -> float:
        """Distance (m) between the TCP and the target."""
        return float(np.linalg.norm(self.sim.tcp_pose()[0] - self.sim.target))

    def report(self) -> dict:
        """Episodes so far: steps, success, return, final TCP-target distance."""
        out = []
        for i, r in enumerate(self.records):
            final = r.final_distance if i < len(self.records) - 1 else self.tcp_target_distance()
            out.append({'episode': r.episode, 'steps': r.steps, 'success': r.success,
                        'return': r.return_, 'final_distance_m': final})
        return {'sim_time_s': self.time, 'episodes': out}

"""
policy_node: the high-level policy, every k control periods.

With ``trigger: task_state`` (default) it acts on every task-state message whose step is a
multiple of k (in step with the simulator or task publisher at any pace); with
``trigger: timer`` on a timer of k control periods (task states without step counters).

Reads ``/joint_states`` and ``ohio/task_state``; publishes ``ohio/ee_goal`` (and, for tasks with
a gripper, ``ohio/gripper_command``). The policy is a trained model (``model_path``) or the
task's scripted expert (``policy: scripted``); see ``ohio_ros.arm.high_level``.
Parameters: ``ohio_ros.arm.config.PolicyNodeConfig`` (+ ``controller.*`` for the scripted expert).
"""

from controllers.goals import NonFiniteInputError
from controllers.robot import ArmModel
from geometry_msgs.msg import PoseStamped
import numpy as np
from ohio_core.data.topics import TS
from ohio_ros import names, params, qos
from ohio_ros.arm import config as cfg
from ohio_ros.arm import convert, high_level
from ohio_ros.arm.controller_params import declare_controller
from ohio_ros.pending import take_pending
from ohio_ros.runtime import run
from rclpy.node import Node
from sensor_msgs.msg import JointState
from std_msgs.msg import Float64, Float64MultiArray


class PolicyNode(Node):
    """Runs a ``HighLevelPolicy`` on a timer of k control periods."""

    def __init__(self, **kwargs):
        super().__init__(names.POLICY_NODE, **kwargs)
        values = params.declare(self, cfg.PolicyNodeConfig.defaults())
        self.config = c = cfg.PolicyNodeConfig.from_params(values)
        known = list(values)
        model = ArmModel(c.robot)
        if c.policy == 'scripted':
            ctrl_config, ctrl_names = declare_controller(self)
            known += ctrl_names
            self.policy = high_level.scripted(c.task, c.k, ctrl_config, model)
        params.check_unknown(self, known)
        if c.policy == 'model':
            self.policy = high_level.load_model(c.model_path, model)
            if (c.task, c.k) != (self.policy.task, self.policy.k):
                self.get_logger().warning(
                    f'the model decides task and k: {self.policy.task}, k = {self.policy.k} '
                    f'(parameters task = {c.task}, k = {c.k} are not used)')
        period = self.policy.k * self.policy.controller.config.control_period

        self._joint_index = convert.JointIndex(c.joints)
        self._task_reader = convert.TaskStateReader()
        self._state = None          # (arrival ns, q, qd)
        self._task = None           # (arrival ns, row)
        self._episode = None
        self.goals_published = 0
        self.skipped = {}

        self.goal_pub = self.create_publisher(PoseStamped, names.EE_GOAL, qos.RELIABLE)
        self.gripper_pub = None
        if self.policy.action_dim == 7:
            self.gripper_pub = self.create_publisher(Float64, names.GRIPPER, qos.RELIABLE)
        self.js_sub = self.create_subscription(JointState, names.JOINT_STATES,
                                               self._on_joint_state, qos.LATEST)
        self.create_subscription(Float64MultiArray, names.TASK_STATE, self._on_task_state,
                                 qos.RELIABLE)
        if c.trigger == 'timer':
            self.timer = self.create_timer(period, self._tick)
        self.get_logger().info(
            f'{self.policy.source} ({self.policy.task}), every {self.policy.k} control periods '
            f'({1.0 / period:g} Hz; on the ' + ('clock)' if c.trigger == 'timer' else
                                                'task-state steps)'))

    def _now(self) -> int:
        return self.get_clock().now().nanoseconds

    def _skip(self, reason: str) -> None:
        self.skipped[reason] = self.skipped.get(reason, 0) + 1
        self.get_logger().warning(f'no goal this step: {reason}', throttle_duration_sec=5.0)

    def _on_joint_state(self, msg: JointState) -> None:
        try:
            q, qd = convert.joint_state_arrays(msg, self._joint_index)
        except (NonFiniteInputError, convert.MessageError):
            self.skipped['joint state rejected'] = self.skipped.get('joint state rejected', 0) + 1
            return
        self._state = (self._now(), q, qd)

    def _on_task_state(self, msg: Float64MultiArray) -> None:
        try:
            row = self._task_reader(msg)
        except convert.MessageError as exc:
            self._skip(f'task state rejected: {exc}')
            return
        self._task = (self._now(), row)
        step = row[TS['step']]
        if self.config.trigger == 'task_state' and np.isfinite(step) and \
                int(step) % self.policy.k == 0:
            take_pending(self.js_sub, self._on_joint_state)  # the state of the same instant
            self._tick()

    def _tick(self) -> None:
        now = self._now()
        timeout = int(self.config.state_timeout * 1e9)
        if self._state is None or self._task is None:
            self._skip('waiting for joint states and task state')
            return
        if now - self._state[0] > timeout or now - self._task[0] > timeout:
            self._skip('joint states or task state stale')
            return
        row = self._task[1]
        episode = row[TS['episode']]
        if episode != self._episode:
            self._episode = episode
            self.policy.reset()
        _, q, qd = self._state
        try:
            decision = self.policy.decide(q, qd, row)
        except ValueError as exc:
            self._skip(str(exc))
            return
        self.goal_pub.publish(convert.pose_stamped_msg(decision.goal, now,
                                                       self.config.goal_frame))
        if self.gripper_pub is not None and decision.gripper is not None:
            self.gripper_pub.publish(convert.gripper_msg(decision.gripper))
        self.goals_published += 1

    def close(self) -> None:
        """Say how many goals were published and why steps were skipped."""
        print(f'policy: {self.goals_published} goals published; steps without a goal: '
              f'{self.skipped or "none"}', flush=True)


def main(args=None) -> int:
    """Run the policy node (console script ``policy_node``)."""
    return run(PolicyNode, names.POLICY_NODE, args)


if __name__ == '__main__':
    raise SystemExit(main())

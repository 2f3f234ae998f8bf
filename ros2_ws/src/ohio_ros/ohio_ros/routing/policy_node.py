"""
routing_policy_node: the high-level routing policy, one desired distribution per state.

Subscribes ``routing/state``; for every new state publishes ``routing/desired_distribution``
(weights over the regions, made for that state's episode and step): a goal-level heuristic
(``policy: heuristic``) or a trained routing goal model (``policy: model``, ``model_path``);
see ``ohio_ros.routing.high_level``. A state it cannot act on gets no distribution (logged,
counted); the rebalancing node then holds the fleet once the last goal is too old.
Parameters: ``ohio_ros.routing.config.RoutingPolicyNodeConfig`` (``config/routing.yaml``).
"""

from ohio_ros import names, params, qos
from ohio_ros.routing import config as cfg
from ohio_ros.routing import convert as rc
from ohio_ros.routing import high_level as hl
from ohio_ros.runtime import run
from rclpy.node import Node
from std_msgs.msg import Float64MultiArray


class RoutingPolicyNode(Node):
    """Runs a ``RoutingPolicy`` on every new routing state."""

    def __init__(self, **kwargs):
        super().__init__(names.ROUTING_POLICY_NODE, **kwargs)
        values = params.declare(self, cfg.RoutingPolicyNodeConfig.defaults())
        self.config = c = cfg.RoutingPolicyNodeConfig.from_params(values)
        params.check_unknown(self, list(values))
        if c.policy == 'model':
            self.policy = hl.load_model(c.model_path)
        else:
            self.policy = hl.HeuristicPolicy(c.heuristic, c.seed)
        self._episode = None
        self._answered = None           # (state message, goal message) of the last answer
        self.goals_published = 0
        self.skipped = {}

        self.goal_pub = self.create_publisher(Float64MultiArray, names.ROUTING_DISTRIBUTION,
                                              qos.RELIABLE)
        self.create_subscription(Float64MultiArray, names.ROUTING_STATE, self._on_state,
                                 qos.RELIABLE)
        self.get_logger().info(
            f'{self.policy.source} on {self.resolve_topic_name(names.ROUTING_STATE)} -> '
            f'{self.resolve_topic_name(names.ROUTING_DISTRIBUTION)}')

    def _skip(self, reason: str, error: bool = False) -> None:
        self.skipped[reason] = self.skipped.get(reason, 0) + 1
        log = self.get_logger().error if error else self.get_logger().warning
        log(f'no distribution for this state: {reason}', throttle_duration_sec=5.0)

    def _on_state(self, msg: Float64MultiArray) -> None:
        try:
            state = rc.state_from_msg(msg)
        except rc.MessageError as exc:
            self._skip(f'state rejected: {exc}')
            return
        if self._answered is not None and rc.same_message(msg, self._answered[0]):
            self.goal_pub.publish(self._answered[1])     # the same state again: the same goal
            return
        if state.episode != self._episode:
            self._episode = state.episode
            self.policy.reset(state.episode)
        try:
            weights = self.policy.decide(state)
        except ValueError as exc:         # PolicyMismatch: the state does not fit the model
            self._skip(str(exc), error=True)
            return
        goal = rc.distribution_msg(weights, state.episode, state.step)
        self._answered = (msg, goal)
        self.goal_pub.publish(goal)
        self.goals_published += 1

    def close(self) -> None:
        """Say how many distributions were published and why states were skipped."""
        print(f'routing_policy: {self.goals_published} distributions published; states '
              f'without one: {self.skipped or "none"}', flush=True)


def main(args=None) -> int:
    """Run the routing policy node (console script ``routing_policy_node``)."""
    return run(RoutingPolicyNode, names.ROUTING_POLICY_NODE, args)


if __name__ == '__main__':
    raise SystemExit(main())

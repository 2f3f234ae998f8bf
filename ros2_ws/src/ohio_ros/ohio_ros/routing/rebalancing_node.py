"""
rebalancing_node: the low-level controller of the fleet (the rebalancing LP).

Subscribes ``routing/state``, ``routing/desired_distribution`` and ``routing/travel_time``
(latched); for every new state it publishes ``routing/flows`` for that state: the flows of the
LP (``controllers.rebalancing.Rebalancer``) from the state's idle vehicles to the goal made for
that state, waiting at most ``goal_wait`` seconds for it; then the latest goal of at most
``max_goal_age_steps`` steps before is used, and with an older one the flows are zero (the fleet
holds); before the first goal (and the travel times) it publishes no flows. Rules:
``ohio_ros.routing.rebalancing_loop``. Also ``/diagnostics``.
Parameters: ``ohio_ros.routing.config.RebalancingNodeConfig`` and ``rebalancing.*``
(``config/routing.yaml``).
"""

from controllers.rebalancing import Rebalancer
from ohio_ros import diagnostics, names, params, qos
from ohio_ros.routing import config as cfg
from ohio_ros.routing import convert as rc
from ohio_ros.routing import rebalancing_loop as rl
from ohio_ros.runtime import run
from rclpy.node import Node
from std_msgs.msg import Float64MultiArray


class RebalancingNode(Node):
    """ROS wiring of ``RebalancingLoop``: a state, its goal (or a timeout), then flows."""

    def __init__(self, **kwargs):
        super().__init__(names.REBALANCING_NODE, **kwargs)
        values = params.declare(self, cfg.RebalancingNodeConfig.defaults())
        self.config = c = cfg.RebalancingNodeConfig.from_params(values)
        lp_values = params.declare(self, cfg.rebalancing_defaults())
        self.rebalancing_config = cfg.rebalancing_config(lp_values)
        params.check_unknown(self, list(values) + list(lp_values))
        self.loop = rl.RebalancingLoop(Rebalancer(self.rebalancing_config), c.max_goal_age_steps)
        self.pending = None             # the state waiting for its goal
        self._pending_msg = None
        self.answered = None            # (state message, flows message) of the last answer
        self.states_rejected = 0
        self.states_superseded = 0
        self.last_status = None

        self.flows_pub = self.create_publisher(Float64MultiArray, names.ROUTING_FLOWS,
                                               qos.RELIABLE)
        self.create_subscription(Float64MultiArray, names.ROUTING_TRAVEL_TIME,
                                 self._on_travel_time, qos.LATCHED)
        self.create_subscription(Float64MultiArray, names.ROUTING_DISTRIBUTION, self._on_goal,
                                 qos.RELIABLE)
        self.create_subscription(Float64MultiArray, names.ROUTING_STATE, self._on_state,
                                 qos.RELIABLE)
        self.wait_timer = self.create_timer(max(c.goal_wait, 1e-3), self._on_goal_wait)
        self.wait_timer.cancel()
        self.diag_timer = diagnostics.publish_periodically(
            self, f'{self.get_name()}: rebalancing', c.diagnostics_period, self.diagnostics)
        lp = self.rebalancing_config
        self.get_logger().info(
            f'rebalancing LP ({lp.solver}) on {self.resolve_topic_name(names.ROUTING_STATE)} + '
            f'{self.resolve_topic_name(names.ROUTING_DISTRIBUTION)} -> '
            f'{self.resolve_topic_name(names.ROUTING_FLOWS)}; goals valid for '
            f'{c.max_goal_age_steps} steps, waited for {c.goal_wait:g} s')

    # -- inputs --------------------------------------------------------------------------------
    def _on_travel_time(self, msg: Float64MultiArray) -> None:
        try:
            self.loop.set_travel_time(rc.travel_time_from_msg(msg))
        except rc.MessageError as exc:
            self.get_logger().error(f'travel times rejected: {exc}')

    def _on_goal(self, msg: Float64MultiArray) -> None:
        try:
            weights, stamp = rc.distribution_from_msg(msg)
            self.loop.on_goal(weights, stamp)
        except rc.MessageError as exc:
            self.loop.reject_goal()
            self.get_logger().error(f'desired distribution rejected: {exc}',
                                    throttle_duration_sec=5.0)
            return
        except rl.GoalError as exc:
            self.get_logger().error(f'desired distribution rejected: {exc}',
                                    throttle_duration_sec=5.0)
            return
        if self.pending is not None and self.loop.has_current_goal(self.pending):
            self._answer()

    def _on_state(self, msg: Float64MultiArray) -> None:
        try:
            state = rc.state_from_msg(msg)
        except rc.MessageError as exc:
            self.states_rejected += 1
            self.get_logger().error(f'routing state rejected: {exc}', throttle_duration_sec=5.0)
            return
        if self.answered is not None and rc.same_message(msg, self.answered[0]):
            self.flows_pub.publish(self.answered[1])     # the same state again: same flows
            return
        if self.pending is not None:
            if rc.same_message(msg, self._pending_msg):  # offered again while we wait
                return
            self.states_superseded += 1                  # the simulator moved on without us
        self.loop.on_state(state)
        self.pending, self._pending_msg = state, msg
        if self.config.goal_wait == 0 or self.loop.has_current_goal(state):
            self._answer()
        else:
            self.wait_timer.reset()

    def _on_goal_wait(self) -> None:
        self.wait_timer.cancel()
        if self.pending is not None:
            self._answer()

    # -- output --------------------------------------------------------------------------------
    def _answer(self) -> None:
        state, self.pending = self.pending, None
        self.wait_timer.cancel()
        flows, status = self.loop.flows(state)
        self.last_status = status
        if flows is None:
            what = 'no goal yet' if status == rl.NO_GOAL else 'no travel times yet'
            self.get_logger().warning(f'step {state.step}: {what}, no flows',
                                      throttle_duration_sec=5.0)
            return
        if status in (rl.STALE, rl.FAILED):
            self.get_logger().warning(f'step {state.step}: {status.replace("_", " ")}, '
                                      'zero flows (the fleet holds)', throttle_duration_sec=5.0)
        msg = rc.flows_msg(flows, state.episode, state.step)
        self.answered = (self._pending_msg, msg)
        self.flows_pub.publish(msg)

    def diagnostics(self) -> tuple[str, str, dict]:
        """(level, message, values) now."""
        c = self.loop.counters
        values = {'states': c.states, 'states_rejected': self.states_rejected,
                  'states_superseded': self.states_superseded,
                  'states_without_travel_time': c.states_without_travel_time,
                  'goals_received': c.goals_received, 'goals_rejected': c.goals_rejected,
                  'flows_published': c.flows_published,
                  'travel_time': self.loop.travel_time is not None}
        for status in (rl.CURRENT, rl.OLDER, rl.STALE, rl.NO_GOAL, rl.FAILED):
            values[status] = c.by_status.get(status, 0)
        if self.loop.travel_time is None:
            level, message = 'error', 'no travel times'
        elif self.last_status in (rl.STALE, rl.NO_GOAL, rl.FAILED):
            level, message = 'warn', f'holding: {self.last_status.replace("_", " ")}'
        else:
            level, message = 'ok', self.last_status or 'waiting for states'
        return level, message, values

    def close(self) -> None:
        """Say how the flows came about."""
        c = self.loop.counters
        print(f'rebalancing: {c.flows_published} flows published {c.by_status or ""}; '
              f'goals rejected: {c.goals_rejected}', flush=True)


def main(args=None) -> int:
    """Run the rebalancing node (console script ``rebalancing_node``)."""
    return run(RebalancingNode, names.REBALANCING_NODE, args)


if __name__ == '__main__':
    raise SystemExit(main())

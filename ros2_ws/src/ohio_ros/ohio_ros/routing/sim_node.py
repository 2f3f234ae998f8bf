"""
routing_sim_node: the fleet-rebalancing simulator, one step per flows message.

Publishes ``routing/state`` after each step's matching (episode, step, idle vehicles per region,
the observation; layout in ``ohio_ros.routing.convert``) and waits for ``routing/flows`` for
that step: feasible flows are applied; non-finite, infeasible or malformed flows are rejected
(logged, counted) and the fleet holds (zero flows); flows made for another step are late and
ignored (counted). Without flows within ``step_timeout`` seconds the fleet holds (a stale step,
counted). Then it advances, matches and publishes the next state; after the horizon the next
episode starts. Also publishes ``routing/step_info`` per step (reward and its parts, requests,
served, vehicles moved, how the flows came about), ``routing/travel_time`` once (latched) and
``/diagnostics``.
Parameters: ``ohio_ros.routing.config.RoutingSimNodeConfig`` (``config/routing.yaml``).
"""

from ohio_ros import diagnostics, names, params, qos
from ohio_ros.json_file import write_json
from ohio_ros.routing import config as cfg
from ohio_ros.routing import convert as rc
from ohio_ros.routing.session import make_scenario, RoutingSession
from ohio_ros.runtime import run
from rclpy.node import Node
from std_msgs.msg import Float64MultiArray

#: how often (s) the node checks whether the first state may be published
START_POLL = 0.05


class RoutingSimNode(Node):
    """Steps a ``RoutingSession`` on flows messages (or timeouts) and publishes its states."""

    def __init__(self, **kwargs):
        super().__init__(names.ROUTING_SIM_NODE, **kwargs)
        values = params.declare(self, cfg.RoutingSimNodeConfig.defaults())
        self.config = c = cfg.RoutingSimNodeConfig.from_params(values)
        params.check_unknown(self, list(values))
        self.scenario = s = make_scenario(c)
        self.session = RoutingSession(s, c.lookahead, c.seed)
        self.counts = {'steps': 0, 'flows_applied': 0, 'held_rejected': 0, 'held_timeout': 0,
                       'flows_late': 0, 'states_republished': 0}
        self.started = False            # the first state is out
        self.flowing = not c.wait_for_flows
        self.finished = False           # max_episodes done
        self._holds_seen = 0

        self.state_pub = self.create_publisher(Float64MultiArray, names.ROUTING_STATE,
                                               qos.RELIABLE)
        self.info_pub = self.create_publisher(Float64MultiArray, names.ROUTING_STEP_INFO,
                                              qos.RELIABLE)
        self.tt_pub = self.create_publisher(Float64MultiArray, names.ROUTING_TRAVEL_TIME,
                                            qos.LATCHED)
        self.create_subscription(Float64MultiArray, names.ROUTING_FLOWS, self._on_flows,
                                 qos.RELIABLE)
        self.tt_pub.publish(rc.travel_time_msg(s.travel_time))
        self.step_timer = self.create_timer(c.step_timeout, self._on_step_timeout)
        self.step_timer.cancel()
        self.start_timer = self.create_timer(START_POLL, self._try_start)
        self.diag_timer = diagnostics.publish_periodically(
            self, f'{self.get_name()}: simulator', c.diagnostics_period, self.diagnostics)
        self.get_logger().info(
            f'scenario {s.name}: {s.regions} regions, {s.vehicles} vehicles, horizon {s.horizon} '
            f'steps, lookahead {c.lookahead}; states on '
            f'{self.resolve_topic_name(names.ROUTING_STATE)}, flows on '
            f'{self.resolve_topic_name(names.ROUTING_FLOWS)} within {c.step_timeout:g} s')

    # -- stepping ------------------------------------------------------------------------------
    def _publish_state(self) -> None:
        self.state_pub.publish(rc.state_msg(self.session.state()))
        self.step_timer.reset()

    def _try_start(self) -> None:
        if self.state_pub.get_subscription_count() < self.config.start_subscribers:
            return
        self.start_timer.cancel()
        self.started = True
        self._publish_state()

    def _on_step_timeout(self) -> None:
        if not self.started or self.finished:
            return
        if not self.flowing:             # the loop is still starting: offer the state again
            self.counts['states_republished'] += 1
            self._publish_state()
            return
        self.get_logger().warning(
            f'no flows for step {self.session.t} within {self.config.step_timeout:g} s: '
            'holding', throttle_duration_sec=5.0)
        self._advance(None, rc.HOLD_TIMEOUT)

    def _on_flows(self, msg: Float64MultiArray) -> None:
        if not self.started or self.finished:
            self.counts['flows_late'] += 1
            return
        s = self.session
        flows, hold = None, rc.HOLD_NONE
        try:
            values, stamp = rc.flows_from_msg(msg, s.regions)
            if stamp is not None and stamp != (s.episode, s.t):
                self.counts['flows_late'] += 1
                return
            flows = s.check(values)
        except ValueError as exc:          # MessageError included
            self.get_logger().error(f'flows for step {s.t} rejected, holding: {exc}',
                                    throttle_duration_sec=5.0)
            hold = rc.HOLD_REJECTED
        if not self.flowing:
            self.flowing = True
            self.get_logger().info('first flows received')
        self._advance(flows, hold)

    def _advance(self, flows, hold: int) -> None:
        s, c = self.session, self.config
        info = s.step(flows, hold)
        self.counts['steps'] += 1
        key = {rc.HOLD_NONE: 'flows_applied', rc.HOLD_REJECTED: 'held_rejected',
               rc.HOLD_TIMEOUT: 'held_timeout'}[hold]
        self.counts[key] += 1
        self.info_pub.publish(rc.step_info_msg(info))
        if s.episode_done:
            rec = s.records[-1]
            self.get_logger().info(
                f'episode {rec.episode}: return {rec.return_:.2f}, served {rec.served} of '
                f'{rec.requests} requests, {rec.held} of {rec.steps} steps held')
            if c.max_episodes and s.episode + 1 >= c.max_episodes:
                self.finished = True
                self.step_timer.cancel()
                self.get_logger().info(f'max_episodes ({c.max_episodes}) reached: stepping stops')
                return
            s.next_episode()
        self._publish_state()

    # -- diagnostics and report ----------------------------------------------------------------
    def diagnostics(self) -> tuple[str, str, dict]:
        """(level, message, values) now."""
        s = self.session
        held = self.counts['held_rejected'] + self.counts['held_timeout']
        values = dict(scenario=self.scenario.name, episode=s.episode, step=s.t,
                      started=self.started, flowing=self.flowing, finished=self.finished,
                      **self.counts)
        done = [r for r in s.records if r.steps == self.scenario.horizon]
        if done:
            values['last_episode_return'] = done[-1].return_
        if not self.started or not self.flowing:
            level, message = 'warn', 'waiting for the loop (no flows yet)'
        elif held > self._holds_seen:
            level, message = 'warn', 'fleet held in some steps (flows stale or rejected)'
        else:
            level, message = 'ok', 'finished' if self.finished else 'stepping'
        self._holds_seen = held
        return level, message, values

    def report(self) -> dict:
        """Scenario, episodes and counters."""
        return dict(self.session.report(), **self.counts)

    def close(self) -> None:
        """Say what happened, and write the report if one was asked for."""
        print(f'routing_sim: {self.counts}', flush=True)
        if self.config.report_path:
            write_json(self.config.report_path, self.report(), indent=1)


def main(args=None) -> int:
    """Run the routing simulator node (console script ``routing_sim_node``)."""
    return run(RoutingSimNode, names.ROUTING_SIM_NODE, args)


if __name__ == '__main__':
    raise SystemExit(main())

"""Take messages that wait in a subscription's queue, from inside another callback."""

from rclpy.subscription import Subscription


def take_pending(subscription: Subscription, callback, limit: int = 10) -> int:
    """
    Run ``callback`` on up to ``limit`` messages waiting in ``subscription``; return how many.

    rclpy's executor runs ready timers (and earlier subscriptions) before later ones; a
    callback that needs the newest message of another topic takes it here instead of acting
    on one a publish period old.
    """
    for n in range(limit):
        with subscription.handle:
            taken = subscription.handle.take_message(subscription.msg_type, subscription.raw)
        if taken is None:
            return n
        callback(taken[0])
    return limit

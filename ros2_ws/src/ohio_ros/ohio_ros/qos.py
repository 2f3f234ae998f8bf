"""QoS profiles of the stack's topics."""

from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy

#: commands, goals, task state, diagnostics, and the states the simulator publishes: reliable,
#: like ros2_control's controllers and broadcasters
RELIABLE = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE,
                      history=HistoryPolicy.KEEP_LAST)
#: a controller only needs the newest joint state; best effort matches reliable publishers too
LATEST = QoSProfile(depth=1, reliability=ReliabilityPolicy.BEST_EFFORT,
                    history=HistoryPolicy.KEEP_LAST)
#: the recorder keeps every message (a deep reliable queue)
RECORD = QoSProfile(depth=1000, reliability=ReliabilityPolicy.RELIABLE,
                    history=HistoryPolicy.KEEP_LAST)
#: the network's travel times: published once, kept for subscribers that join later (latched)
LATCHED = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE,
                     history=HistoryPolicy.KEEP_LAST, durability=DurabilityPolicy.TRANSIENT_LOCAL)

"""OHIO inverse problems: recover, per high-level segment, the goal a known low-level controller
would have needed to produce what was logged.

Every method has one signature, ``invert(segments, controller, **options) -> InverseResult``:
segments of k low-level steps in, one goal per segment out, with a residual and a status.
"""

from ohio_core.inverse.base import METHODS, InverseResult, Segments, Status, get_method, invert

# each method registers itself in METHODS when its module is imported
from ohio_core.inverse import analytical, auto, cem, kkt, ml, naive, numerical, state_matching  # noqa: F401

__all__ = ["METHODS", "InverseResult", "Segments", "Status", "get_method", "invert"]

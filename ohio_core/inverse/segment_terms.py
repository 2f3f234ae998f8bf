"""Controller terms at every step of every segment, reshaped to (N, k, ...)."""

from __future__ import annotations

import numpy as np

from controllers.osc import OSCTerms, osc_terms
from ohio_core.inverse.terms import batch_kinematics


def osc_segment_terms(controller, q: np.ndarray, qd: np.ndarray) -> OSCTerms:
    """``osc_terms`` for q, qd of shape (N, k, 7): fields shaped (N, k, ...)."""
    n, k = q.shape[:2]
    qs, qds = q.reshape(-1, 7), qd.reshape(-1, 7)
    t = osc_terms(batch_kinematics(controller.model, qs, qds), qs, qds, controller.config)
    return OSCTerms(p=t.p.reshape(n, k, 3), R=t.R.reshape(n, k, 3, 3), B=t.B.reshape(n, k, 7, 6),
                    c=t.c.reshape(n, k, 7), cond=t.cond.reshape(n, k))

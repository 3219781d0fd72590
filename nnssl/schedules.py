"""Ramp-up schedules for the weights of unsupervised loss terms."""
from __future__ import annotations

import math


def sigmoid_rampup(step: float, rampup_length: float) -> float:
    """Gaussian ramp-up of Laine & Aila (2017), used by every method here.

    ramp(t) = exp(-5 * (1 - min(t, T_r) / T_r) ** 2), so ramp(0) = exp(-5) and ramp(t >= T_r) = 1.
    ``rampup_length`` T_r <= 0 disables the ramp (always 1).
    """
    if rampup_length <= 0:
        return 1.0
    phase = 1.0 - min(max(step, 0.0), rampup_length) / rampup_length
    return float(math.exp(-5.0 * phase * phase))


def linear_rampup(step: float, rampup_length: float) -> float:
    """ramp(t) = min(t / T_r, 1); T_r <= 0 gives 1."""
    if rampup_length <= 0:
        return 1.0
    return float(min(max(step, 0.0) / rampup_length, 1.0))

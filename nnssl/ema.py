"""Exponential moving average of network weights (Mean Teacher)."""
from __future__ import annotations

import torch
from torch import nn


@torch.no_grad()
def ema_update(teacher: nn.Module, student: nn.Module, decay: float) -> None:
    """theta_t <- decay * theta_t + (1 - decay) * theta_s for parameters; buffers are copied.

    Both modules must have the same architecture (parameter order and shapes).
    """
    if not 0.0 <= decay <= 1.0:
        raise ValueError(f"EMA decay must be in [0, 1], got {decay}")
    for p_t, p_s in zip(teacher.parameters(), student.parameters(), strict=True):
        p_t.mul_(decay).add_(p_s.detach(), alpha=1.0 - decay)
    for b_t, b_s in zip(teacher.buffers(), student.buffers(), strict=True):
        b_t.copy_(b_s)

"""Consistency losses between two predictions of the same voxels."""
from __future__ import annotations

import torch


def softmax_mse(student_logits: torch.Tensor, teacher_logits: torch.Tensor) -> torch.Tensor:
    """Mean squared error between softmax outputs (Mean Teacher, Tarvainen & Valpola 2017).

    L = mean_{b,c,v} (softmax(z_s)_{b,c,v} - softmax(z_t)_{b,c,v})^2

    Args:
        student_logits: (B, C, *spatial) logits that receive the gradient.
        teacher_logits: (B, C, *spatial) logits used as target (detached here).
    Returns:
        Scalar tensor.
    """
    if student_logits.shape != teacher_logits.shape:
        raise ValueError(f"shape mismatch: {tuple(student_logits.shape)} vs {tuple(teacher_logits.shape)}")
    p_s = torch.softmax(student_logits.float(), dim=1)
    p_t = torch.softmax(teacher_logits.detach().float(), dim=1)
    return torch.mean((p_s - p_t) ** 2)

"""Method A (dual network): uncertainty-rectified pseudo supervision (Eq 13-15).
See METHODS.md (shared/ beside the repository) section A, item 5.
"""
from __future__ import annotations

from typing import Tuple

import torch
import torch.nn.functional as F

from nnssl.losses.entropy import upcast


def uncertainty_rectified_loss(student_logits: torch.Tensor, teacher_logits: torch.Tensor,
                               temperature: float = 0.5) -> torch.Tensor:
    """Pseudo-label CE down-weighted by the KL divergence teacher -> student, plus that KL.

    q = softmax(z_teacher / T) (DETACHED), yhat = argmax_c q (= argmax z_teacher for any T > 0),
    p = softmax(z_student),
    D_v = KL(q_v || p_v) = sum_c q_{c,v} (log q_{c,v} - log p_{c,v})   (q first: teacher || student)
    L = mean_v[ exp(-D_v) * CE(z_{student,v}, yhat_v) ] + mean_v[ D_v ]
    with v over batch and space. T < 1 sharpens q.

    Gradient choice: the student logits get gradient through CE, through D and through the weight
    exp(-D) (the weight is NOT detached, as in the public reference code); the teacher logits get
    none.

    Args:
        student_logits, teacher_logits: (B, C, *spatial) logits.
        temperature: T > 0.
    Returns:
        Scalar tensor.
    """
    if student_logits.shape != teacher_logits.shape:
        raise ValueError(f"shape mismatch: {tuple(student_logits.shape)} vs {tuple(teacher_logits.shape)}")
    if temperature <= 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")
    with torch.no_grad():
        log_q = torch.log_softmax(upcast(teacher_logits.detach()) / temperature, dim=1)
        q = log_q.exp()
        yhat = q.argmax(dim=1)
    log_p = torch.log_softmax(upcast(student_logits), dim=1)
    kl = (q * (log_q - log_p)).sum(dim=1)  # (B, *spatial)
    ce = F.nll_loss(log_p, yhat, reduction="none")  # (B, *spatial)
    return (torch.exp(-kl) * ce).mean() + kl.mean()


def bidirectional_uncertainty_loss(logits_a: torch.Tensor, logits_b: torch.Tensor,
                                   temperature: float = 0.5,
                                   both_directions: bool = True) -> Tuple[torch.Tensor, torch.Tensor]:
    """Both directions of ``uncertainty_rectified_loss`` between two subnets.

    L_ue^A = uncertainty_rectified_loss(z_A, z_B, T)   (A taught by B; gradient only into z_A)
    L_ue^B = uncertainty_rectified_loss(z_B, z_A, T)   (B taught by A; gradient only into z_B)
    both_directions=False reproduces the public code (B teaches A only): L_ue^B is a constant 0
    (0-dim float32 zero without graph).

    Args:
        logits_a, logits_b: (B, C, *spatial) logits of subnets A and B.
    Returns:
        (L_ue^A, L_ue^B), scalars.
    """
    loss_a = uncertainty_rectified_loss(logits_a, logits_b, temperature)
    if both_directions:
        loss_b = uncertainty_rectified_loss(logits_b, logits_a, temperature)
    else:
        loss_b = torch.zeros((), dtype=loss_a.dtype, device=loss_a.device)
    return loss_a, loss_b

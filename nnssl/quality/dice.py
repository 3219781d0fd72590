"""Dice of a (soft) mask to an integer label map: the regression target "Dice(m, y)" (METHODS.md C)."""
from __future__ import annotations

import torch
import torch.nn.functional as F


def soft_dice_per_class(mask_probs: torch.Tensor, target: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    """Dice of every foreground class, per sample.

    D_{b,c} = 2 sum_v m_{b,c,v} y_{b,c,v} / (sum_v m_{b,c,v} + sum_v y_{b,c,v}), c = 1 .. C-1, with
    y = onehot(target). ``m`` may be soft (e.g. softmax probabilities, blurred masks) or one-hot.
    Both empty (denominator <= eps) -> 1. Differentiable in ``mask_probs``.

    Args:
        mask_probs: (B, C, *spatial) float, C >= 2 (channel 0 = background).
        target: (B, *spatial) integer labels in 0 .. C-1.
        eps: denominators <= eps count as "both empty".
    Returns:
        (B, C-1) float32 (or the dtype of ``mask_probs`` if it is float64).
    """
    if mask_probs.ndim < 3 or mask_probs.shape[1] < 2:
        raise ValueError(f"mask_probs must be (B, C>=2, *spatial), got {tuple(mask_probs.shape)}")
    if tuple(target.shape) != (mask_probs.shape[0], *mask_probs.shape[2:]):
        raise ValueError(f"target {tuple(target.shape)} does not match mask {tuple(mask_probs.shape)}")
    num_classes = mask_probs.shape[1]
    m = mask_probs if mask_probs.dtype == torch.float64 else mask_probs.float()
    y = F.one_hot(target.long(), num_classes).movedim(-1, 1).to(m.dtype)  # (B, C, *spatial)
    m, y = m[:, 1:].flatten(2), y[:, 1:].flatten(2)  # (B, C-1, V)
    inter = (m * y).sum(-1)
    denom = m.sum(-1) + y.sum(-1)
    empty = denom <= eps
    return torch.where(empty, torch.ones_like(denom), 2.0 * inter / torch.where(empty, torch.ones_like(denom), denom))


def mean_foreground_dice(mask_probs: torch.Tensor, target: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    """(B,) mean over the foreground classes of ``soft_dice_per_class`` (same arguments)."""
    return soft_dice_per_class(mask_probs, target, eps).mean(dim=1)

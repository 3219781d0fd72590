"""Hard pseudo-labels and the cross-entropy that trains on them."""
from __future__ import annotations

from typing import Optional, Tuple

import torch
import torch.nn.functional as F


def hard_pseudo_label(logits: torch.Tensor, threshold: float = 0.0) -> Tuple[torch.Tensor, torch.Tensor]:
    """yhat = argmax_c softmax(z)_c and its confidence mask.

    Args:
        logits: (B, C, *spatial).
        threshold: voxels with max_c p_c < threshold are marked unreliable (0 keeps all).
    Returns:
        labels (B, *spatial) int64 and mask (B, *spatial) bool, both detached.
    """
    with torch.no_grad():
        probs = torch.softmax(logits.float(), dim=1)
        conf, labels = probs.max(dim=1)
        mask = conf >= threshold
    return labels, mask


def masked_cross_entropy(logits: torch.Tensor, target: torch.Tensor,
                         mask: Optional[torch.Tensor] = None) -> torch.Tensor:
    """Cross-entropy averaged over the voxels where ``mask`` is true.

    L = sum_v m_v * CE(z_v, y_v) / max(sum_v m_v, 1); an all-false mask gives 0 (with a graph).

    Args:
        logits: (B, C, *spatial) logits that receive the gradient.
        target: (B, *spatial) integer labels.
        mask: (B, *spatial) bool, None = all voxels.
    """
    ce = F.cross_entropy(logits.float(), target.long(), reduction="none")
    if mask is None:
        return ce.mean()
    m = mask.to(ce.dtype)
    return (ce * m).sum() / m.sum().clamp_min(1.0)


def cross_pseudo_supervision(logits_a: torch.Tensor, logits_b: torch.Tensor,
                             threshold: float = 0.0) -> torch.Tensor:
    """Cross pseudo supervision (Chen et al. 2021).

    L_cps = CE(z_a, yhat_b) + CE(z_b, yhat_a), yhat_k = argmax softmax(z_k) (detached); voxels whose
    teacher confidence max_c p_k,c is below ``threshold`` are ignored in the term taught by k.
    """
    y_a, m_a = hard_pseudo_label(logits_a, threshold)
    y_b, m_b = hard_pseudo_label(logits_b, threshold)
    return masked_cross_entropy(logits_a, y_b, m_b) + masked_cross_entropy(logits_b, y_a, m_a)

"""Training-time statistics that show a semi-supervised run going wrong before its Dice does.

The typical failure of pseudo-label methods on small structures is background collapse: the networks
predict (almost) no foreground on the unlabeled patches, the pseudo-labels are all background, and
the unsupervised terms then hold every network there. Comparing the share of foreground in the
networks' unlabeled predictions with the share in the labeled targets makes that visible per epoch.
"""
from __future__ import annotations

from typing import Optional

import torch


def foreground_share(logits: torch.Tensor) -> torch.Tensor:
    """Share of voxels predicted as foreground: mean over b, v of [argmax_c z[b, c, v] != 0].

    logits: (B, C, *spatial) scores of C softmax classes, class 0 = background. Returns a float scalar.
    """
    if logits.dim() < 3:
        raise ValueError(f"expected logits (B, C, *spatial), got shape {tuple(logits.shape)}")
    return (logits.detach().argmax(1) != 0).float().mean()


def label_foreground_share(labels: torch.Tensor, ignore_label: Optional[int] = None) -> torch.Tensor:
    """Share of foreground voxels in an integer label map: mean over annotated v of [y_v > 0].

    labels: (B, 1, *spatial) or (B, *spatial); voxels equal to ``ignore_label`` are left out
    (NaN if nothing is annotated). Returns a float scalar.
    """
    y = labels.detach()
    annotated = torch.ones_like(y, dtype=torch.bool) if ignore_label is None else y != ignore_label
    n = annotated.sum()
    if n == 0:
        return torch.tensor(float("nan"))
    return ((y > 0) & annotated).sum().float() / n.float()

"""Training-time statistics that show a semi-supervised run going wrong before its Dice does.

The typical failure of pseudo-label methods on small structures is background collapse: the networks
predict (almost) no foreground on the unlabeled patches, the pseudo-labels are all background, and
the unsupervised terms then hold every network there. Comparing the share of foreground in the
networks' unlabeled predictions with the share in the labeled targets makes that visible per epoch.
"""
from __future__ import annotations

from typing import Optional, Sequence

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


def class_dice(pred: torch.Tensor, target: torch.Tensor, num_classes: int,
               ignore_label: Optional[int] = None) -> torch.Tensor:
    """Hard Dice per foreground class over a batch: D_c = 2 |P_c & Y_c| / (|P_c| + |Y_c|), c = 1..C-1.

    pred: (B, *spatial) integer labels (e.g. argmax of logits); target: (B, 1, *spatial) or (B, *spatial).
    Voxels equal to ``ignore_label`` are left out. Returns (C-1,) floats; NaN for a class absent from both.
    """
    y = target.detach().reshape(pred.shape)
    keep = torch.ones_like(y, dtype=torch.bool) if ignore_label is None else y != ignore_label
    out = []
    for c in range(1, num_classes):
        p, t = (pred.detach() == c) & keep, (y == c) & keep
        denom = (p.sum() + t.sum()).float()
        out.append(2.0 * (p & t).sum().float() / denom if denom > 0 else torch.tensor(float("nan")))
    return torch.stack(out) if out else torch.zeros(0)


def foreground_learned(dices: Sequence[torch.Tensor], threshold: float) -> bool:
    """Whether every network segments every foreground class of the batch: min over networks k and classes c
    present (non-NaN) of D_{k,c} >= threshold. False without any present class.

    dices: per network, the (C-1,) output of ``class_dice`` on the same labeled batch. A random network
    predicts foreground nearly everywhere and one in the background-only phase nowhere; both give a low Dice.
    """
    values = [float(d) for dice in dices for d in dice if not torch.isnan(d)]
    return bool(values) and min(values) >= threshold

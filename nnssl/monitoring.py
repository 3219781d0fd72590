"""Training-time statistics that show a semi-supervised run going wrong before its Dice does.

The typical failure of pseudo-label methods on small structures is background collapse: the networks
predict (almost) no foreground on the unlabeled patches, the pseudo-labels are all background, and
the unsupervised terms then hold every network there. Comparing the share of foreground in the
networks' unlabeled predictions with the share in the labeled targets makes that visible per epoch.
"""
from __future__ import annotations

import math
import re
from typing import Dict, Mapping, Optional, Sequence

import torch

#: the training-log markers the SSL trainers write and benchmarks/training_curves.py reads back
SSL_TERMS_PREFIX = "ssl terms: "
RAMP_START_EVENT = "the unsupervised ramp-up starts"
COLLAPSE_WARNING = "WARNING: possible background collapse"
RAMP_RESTART_EVENT = "the unsupervised ramp-up restarts"


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
    return _annotated_share(labels, lambda y: y > 0, ignore_label)


def _annotated(y: torch.Tensor, ignore_label: Optional[int]) -> torch.Tensor:
    """Boolean mask of the voxels of label map ``y`` that are annotated (not ``ignore_label``)."""
    return torch.ones_like(y, dtype=torch.bool) if ignore_label is None else y != ignore_label


def _annotated_share(labels: torch.Tensor, select, ignore_label: Optional[int]) -> torch.Tensor:
    """mean over annotated v of [select(y)_v]; NaN if no voxel is annotated."""
    y = labels.detach()
    annotated = _annotated(y, ignore_label)
    n = annotated.sum()
    if n == 0:
        return torch.tensor(float("nan"))
    return (select(y) & annotated).sum().float() / n.float()


def prediction_shares(logits: torch.Tensor, name: str) -> Dict[str, torch.Tensor]:
    """The shares a trainer logs for network ``name``'s predictions: ``frac_fg_<name>`` (``foreground_share``)
    and, with more than one foreground class, ``frac_c<c>_<name>`` = mean over b, v of [argmax_c' z = c].

    logits: (B, C, *spatial), class 0 = background. Returns float scalars by key.
    """
    if logits.shape[1] <= 2:
        return {f"frac_fg_{name}": foreground_share(logits)}
    pred = logits.detach().argmax(1)
    return {f"frac_fg_{name}": (pred != 0).float().mean(),
            **{f"frac_c{c}_{name}": (pred == c).float().mean() for c in range(1, logits.shape[1])}}


def label_shares(labels: torch.Tensor, num_classes: int, ignore_label: Optional[int] = None) -> Dict[str, torch.Tensor]:
    """The labeled counterparts of ``prediction_shares``: ``frac_fg_labeled`` (``label_foreground_share``) and,
    with num_classes > 2, ``frac_c<c>_labeled`` = share of annotated voxels labeled c (NaN if none annotated).

    labels: (B, 1, *spatial) or (B, *spatial) integers.
    """
    out = {"frac_fg_labeled": label_foreground_share(labels, ignore_label)}
    if num_classes > 2:
        out.update({f"frac_c{c}_labeled": _annotated_share(labels, lambda y, c=c: y == c, ignore_label)
                    for c in range(1, num_classes)})
    return out


def class_dice(pred: torch.Tensor, target: torch.Tensor, num_classes: int,
               ignore_label: Optional[int] = None) -> torch.Tensor:
    """Hard Dice per foreground class over a batch: D_c = 2 |P_c & Y_c| / (|P_c| + |Y_c|), c = 1..C-1.

    pred: (B, *spatial) integer labels (e.g. argmax of logits); target: (B, 1, *spatial) or (B, *spatial).
    Voxels equal to ``ignore_label`` are left out. Returns (C-1,) floats; NaN for a class absent from both.
    """
    y = target.detach().reshape(pred.shape)
    keep = _annotated(y, ignore_label)
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


class CollapseMonitor:
    """Warns once per streak when a run looks background-collapsed, as a whole or in one class.

    An epoch counts as collapsed when the unsupervised weight ramp(t) >= ``min_ramp`` and some network k
    predicts a share of the unlabeled voxels below ``ratio`` times the labeled patches' share (which must be
    > 0), for all foreground (``frac_fg_<k>`` against ``frac_fg_labeled``) or for one foreground class c
    (``frac_c<c>_<k>`` against ``frac_c<c>_labeled``; see ``prediction_shares`` and ``label_shares``).
    After ``patience`` such epochs in a row, ``update`` returns a warning naming the networks and classes; on
    Hippocampus with 3 labeled cases every run that stayed so for several epochs ended far below
    supervised-only (docs/benchmarks.md). The ratio is small because unlabeled patches are random crops
    while nnU-Net oversamples foreground in the labeled ones.
    """

    def __init__(self, patience: int = 3, min_ramp: float = 0.1, ratio: float = 0.01):
        self.patience, self.min_ramp, self.ratio = patience, min_ramp, ratio
        self.streak = 0

    def collapsed(self, means: Mapping[str, float], ramp: float) -> Dict[str, float]:
        """{'<k>' or '<k> class <c>': share} for every collapsed network (and class), empty if ramp < min_ramp."""
        if ramp < self.min_ramp:
            return {}
        out = {}
        for key, value in sorted(means.items()):
            m = re.fullmatch(r"frac_(fg|c(\d+))_(.+)", key)
            if m is None or m.group(3) == "labeled":
                continue
            labeled = means.get(f"frac_{m.group(1)}_labeled", math.nan)
            if labeled > 0 and value < self.ratio * labeled:
                out[m.group(3) + (f" class {m.group(2)}" if m.group(2) else "")] = value
        return out

    def update(self, means: Mapping[str, float], ramp: float) -> Optional[str]:
        """Count the epoch; a warning text when the streak of collapsed epochs reaches ``patience``, else None."""
        found = self.collapsed(means, ramp)
        self.streak = self.streak + 1 if found else 0
        if self.streak != self.patience:
            return None
        shares = ", ".join(f"{k} {v:.2g}" for k, v in found.items())
        return (f"{COLLAPSE_WARNING}: for {self.streak} epochs the unsupervised terms "
                f"(ramp {ramp:.2g}) acted while a network predicted (almost) no unlabeled voxel as foreground, or as "
                f"a class the labeled patches hold (share of unlabeled voxels: {shares}; the labeled patches' shares "
                "are the frac_*_labeled terms), so its pseudo-labels lack it. If it persists the run may end far below "
                "supervised-only; ramp_start 'foreground' holds the unsupervised terms back until every network "
                "segments the labeled classes, and collapse_guard 'restart' does so again after this warning (both "
                "the default of methods A and B, the guard that of every _QG trainer; elsewhere "
                "nnssl_hparams='{\"ramp_start\": \"foreground\", \"collapse_guard\": \"restart\"}'). "
                "See docs/benchmarks.md.")

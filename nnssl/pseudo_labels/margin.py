"""The patch-border margin of pseudo-labels: voxels a single patch's prediction sees with too little context.

A network that predicts one patch sees less of the image around voxels near the patch border, and on a
structure that the patch cuts (LA's atrium in a 48 x 48 x 32 patch at 2 mm) its argmax there misses
foreground: docs/benchmarks.md (nineteenth session) measured method A + QG's two networks predicting 0.42-0.52
of the reference foreground within 1/8 of the patch from a border and 1.03-1.06 farther than 1/4 from every
border (other checkpoints: the same drop towards the border from their own interior level).
``ignore_outside`` with ``interior_mask`` marks that band with an ignore label so the pseudo-label losses
skip it (nnU-Net's ``DC_and_CE_loss(ignore_label=...)``). Measured on LA, this does not cure method B's
under-segmentation: with a 0.2 margin its run fell from 78.16 to 72.15 Dice with more false negatives, so it is
an option, off by default.

Shapes: B batch, ``*patch`` the spatial size (2D or 3D).
"""
from __future__ import annotations

import math
from typing import Optional, Sequence, Tuple

import torch


def margin_voxels(patch_size: Sequence[int], margin: float) -> Tuple[int, ...]:
    """m_d = floor(margin * p_d + 1/2) per axis; refuses a margin outside [0, 0.5) or one leaving no interior."""
    if not 0.0 <= margin < 0.5:
        raise ValueError(f"pseudo-label margin {margin} must be in [0, 0.5) (a share of the patch per border)")
    m = tuple(int(math.floor(margin * int(p) + 0.5)) for p in patch_size)
    if any(2 * md >= int(p) for md, p in zip(m, patch_size)):
        raise ValueError(f"pseudo-label margin {margin} leaves no interior in patch {tuple(patch_size)}")
    return m


def interior_mask(patch_size: Sequence[int], margin: float,
                  device: Optional[torch.device] = None) -> torch.Tensor:
    """M(x) = AND_d [m_d <= x_d < p_d - m_d], m = ``margin_voxels``; bool (*patch). margin 0: all True."""
    mask = torch.zeros(tuple(int(p) for p in patch_size), dtype=torch.bool, device=device)
    mask[tuple(slice(md, int(p) - md) for md, p in zip(margin_voxels(patch_size, margin), patch_size))] = True
    return mask


def ignore_outside(labels: torch.Tensor, inside: torch.Tensor, ignore_label: int) -> torch.Tensor:
    """A copy of hard labels (B, *patch) with ``ignore_label`` wherever ``inside`` (*patch) bool is False
    (``inside`` = ``interior_mask``, made once per patch size and margin)."""
    if labels.ndim < 2 or tuple(labels.shape[1:]) != tuple(inside.shape):
        raise ValueError(f"labels must be (B, *patch) with patch {tuple(inside.shape)}, "
                         f"got shape {tuple(labels.shape)}")
    return torch.where(inside, labels, ignore_label)  # a scalar: no full-size tensor of the ignore label

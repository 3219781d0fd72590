"""Foreground shares logged by the trainers (nnssl.monitoring) on hand-checkable tensors."""
from __future__ import annotations

import math

import pytest
import torch

from nnssl.monitoring import foreground_share, label_foreground_share


def test_foreground_share_counts_argmax_not_background():
    # 1 sample, 3 classes, 4 voxels: argmax = 0, 2, 1, 0 -> 2 of 4 foreground
    z = torch.tensor([[[5.0, 0.0, 0.0, 1.0],
                       [0.0, 1.0, 3.0, 0.5],
                       [0.0, 2.0, 0.0, 0.2]]])
    assert foreground_share(z).item() == pytest.approx(0.5)
    # 3D, 2 samples: all background in the first, all foreground in the second
    z3 = torch.stack([torch.tensor([1.0, 0.0]).view(2, 1, 1, 1).expand(2, 2, 2, 2),
                      torch.tensor([0.0, 1.0]).view(2, 1, 1, 1).expand(2, 2, 2, 2)])
    assert foreground_share(z3).item() == pytest.approx(0.5)
    with pytest.raises(ValueError, match="B, C"):
        foreground_share(torch.zeros(4, 2))


def test_label_foreground_share_leaves_out_ignored_voxels():
    y = torch.tensor([[[0, 1, 2, 3, 3, 0]]])  # 3 = ignore label
    assert label_foreground_share(y).item() == pytest.approx(4 / 6)
    assert label_foreground_share(y, ignore_label=3).item() == pytest.approx(2 / 4)
    assert math.isnan(label_foreground_share(torch.full((1, 1, 2), 3), ignore_label=3).item())

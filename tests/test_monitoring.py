"""Foreground shares logged by the trainers (nnssl.monitoring) on hand-checkable tensors."""
from __future__ import annotations

import math

import pytest
import torch

from nnssl.monitoring import (CollapseMonitor, class_dice, foreground_learned, foreground_share,
                              label_foreground_share, label_shares, prediction_shares)


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


def test_class_dice_by_hand():
    # 1 sample, 6 voxels, classes 0..2; class 1: P = {1, 2}, Y = {1} -> 2*1/(2+1); class 2: P = {4}, Y = {4, 5} -> 2/3
    pred = torch.tensor([[0, 1, 1, 0, 2, 0]])
    y = torch.tensor([[[0, 1, 0, 0, 2, 2]]])
    assert class_dice(pred, y, 3).tolist() == pytest.approx([2 / 3, 2 / 3])
    # ignore label 2 in the target: voxels 4 and 5 leave out -> class 2 absent from both -> NaN
    d = class_dice(pred, y, 3, ignore_label=2)
    assert d[0].item() == pytest.approx(2 / 3) and math.isnan(d[1].item())
    assert class_dice(torch.zeros(1, 6, dtype=torch.long), y, 3).tolist() == [0.0, 0.0]  # background only


def test_foreground_learned_needs_every_network_and_present_class():
    nan = float("nan")
    good, half = torch.tensor([0.5, 0.4]), torch.tensor([0.5, 0.1])
    assert foreground_learned([good, good], 0.2)
    assert not foreground_learned([good, half], 0.2)  # one network misses class 2
    assert foreground_learned([torch.tensor([0.3, nan])], 0.2)  # class 2 in neither prediction nor labels
    assert not foreground_learned([torch.tensor([nan, nan])], 0.0) and not foreground_learned([], 0.0)


def test_prediction_and_label_shares_per_class():
    # 1 sample, 3 classes, 4 voxels: argmax = 0, 2, 1, 0
    z = torch.tensor([[[5.0, 0.0, 0.0, 1.0],
                       [0.0, 1.0, 3.0, 0.5],
                       [0.0, 2.0, 0.0, 0.2]]])
    shares = {k: v.item() for k, v in prediction_shares(z, "net_a").items()}
    assert shares == pytest.approx({"frac_fg_net_a": 0.5, "frac_c1_net_a": 0.25, "frac_c2_net_a": 0.25})
    assert set(prediction_shares(z[:, :2], "net")) == {"frac_fg_net"}  # one foreground class: no per-class keys
    y = torch.tensor([[[0, 1, 2, 2, 3, 0]]])  # 3 = ignore label
    got = {k: v.item() for k, v in label_shares(y, num_classes=3, ignore_label=3).items()}
    assert got == pytest.approx({"frac_fg_labeled": 3 / 5, "frac_c1_labeled": 1 / 5, "frac_c2_labeled": 2 / 5})
    assert set(label_shares(y.clamp(max=1), num_classes=2)) == {"frac_fg_labeled"}
    assert math.isnan(label_shares(torch.full((1, 1, 2), 3), 3, ignore_label=3)["frac_c1_labeled"].item())


def test_collapse_monitor_warns_once_after_patience_collapsed_epochs():
    mon = CollapseMonitor(patience=2, min_ramp=0.1, ratio=0.01)
    healthy = {"frac_fg_labeled": 0.06, "frac_fg_net_a": 0.05, "frac_fg_net_b": 0.07, "loss": 1.0}
    collapsed = {"frac_fg_labeled": 0.06, "frac_fg_net_a": 0.0, "frac_fg_net_b": 0.0005}  # 0.0005 < 0.01 * 0.06
    half = {"frac_fg_labeled": 0.06, "frac_fg_net_a": 0.0007, "frac_fg_net_b": 0.03}  # 0.0007 > 0.0006
    assert mon.collapsed(healthy, 1.0) == {}
    assert mon.collapsed(collapsed, 1.0) == {"net_a": 0.0, "net_b": 0.0005}
    assert mon.collapsed(half, 1.0) == {}
    assert mon.collapsed(collapsed, 0.05) == {}  # ramp below min_ramp: the unsupervised terms barely act
    assert mon.collapsed({**collapsed, "frac_fg_labeled": 0.0}, 1.0) == {}  # nothing to compare with
    assert mon.collapsed({**collapsed, "frac_fg_labeled": float("nan")}, 1.0) == {}
    # one class lost (the 1000-step method A run: both networks predict class 2 only)
    one_class = {**healthy, "frac_c1_labeled": 0.03, "frac_c2_labeled": 0.03, "frac_c1_net_a": 0.0,
                 "frac_c2_net_a": 0.05, "frac_c1_net_b": 0.0004, "frac_c2_net_b": 0.07}
    assert mon.collapsed(one_class, 1.0) == {"net_a class 1": 0.0}  # net_b: 0.0004 > 0.01 * 0.03
    assert mon.collapsed({**one_class, "frac_c1_net_b": 0.0002}, 1.0) == {"net_a class 1": 0.0,
                                                                          "net_b class 1": 0.0002}
    assert mon.update(collapsed, 0.3) is None  # streak 1 of 2
    text = mon.update(collapsed, 0.4)  # streak 2: the warning, naming the networks and shares
    assert text is not None and "net_a 0, net_b 0.0005" in text and "ramp 0.4" in text and "2 epochs" in text
    assert mon.update(collapsed, 0.5) is None  # once per streak
    assert mon.update(healthy, 0.6) is None and mon.streak == 0
    assert mon.update(collapsed, 0.7) is None and mon.update(one_class, 0.8) is not None  # a new streak warns again

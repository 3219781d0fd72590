"""Loss terms against values worked out by hand on tiny tensors."""
import math

import pytest
import torch

from nnssl.losses import cross_pseudo_supervision, hard_pseudo_label, masked_cross_entropy, softmax_mse


def test_softmax_mse_hand_value_and_gradient_only_to_student():
    # one voxel, two classes: student p = (1/2, 1/2), teacher p = (3/4, 1/4)
    student = torch.zeros(1, 2, 1, requires_grad=True)
    teacher = torch.tensor([[[math.log(3.0)], [0.0]]], requires_grad=True)
    loss = softmax_mse(student, teacher)
    assert loss.item() == pytest.approx(((0.5 - 0.75) ** 2 + (0.5 - 0.25) ** 2) / 2)
    loss.backward()
    assert student.grad.abs().sum() > 0
    assert teacher.grad is None


def test_softmax_mse_rejects_shape_mismatch():
    with pytest.raises(ValueError, match="shape mismatch"):
        softmax_mse(torch.zeros(1, 2, 3), torch.zeros(1, 3, 3))


def test_masked_cross_entropy_hand_values():
    # voxel 0: logits (2, 0), label 0 -> CE = log(1 + e^-2); voxel 1: logits (0, 0), label 1 -> log 2
    logits = torch.tensor([[[2.0, 0.0], [0.0, 0.0]]])  # (B=1, C=2, V=2)
    target = torch.tensor([[0, 1]])
    ce0, ce1 = math.log(1 + math.exp(-2)), math.log(2)
    assert masked_cross_entropy(logits, target).item() == pytest.approx((ce0 + ce1) / 2)
    assert masked_cross_entropy(logits, target, torch.tensor([[True, False]])).item() == pytest.approx(ce0)
    empty = masked_cross_entropy(logits, target, torch.zeros(1, 2, dtype=torch.bool))
    assert empty.item() == 0.0


def test_hard_pseudo_label_threshold_on_probabilities():
    logits = torch.tensor([[[math.log(3.0), 0.0], [0.0, 0.0]]])  # p(voxel0) = (.75, .25); p(voxel1) = (.5, .5)
    labels, mask = hard_pseudo_label(logits, threshold=0.6)
    assert labels.tolist() == [[0, 0]]
    assert mask.tolist() == [[True, False]]


def test_cross_pseudo_supervision_hand_value_and_gradients():
    # two voxels; a predicts class 0 confidently at v0, b predicts class 1 at both voxels
    za = torch.tensor([[[math.log(3.0), 0.0], [0.0, 0.0]]], requires_grad=True)
    zb = torch.tensor([[[0.0, 0.0], [math.log(4.0), math.log(9.0)]]], requires_grad=True)
    # yhat_a = (0, 0) [v1 tie -> 0]; yhat_b = (1, 1)
    loss = cross_pseudo_supervision(za, zb)
    ce_a = (-math.log(0.25) - math.log(0.5)) / 2  # CE(z_a, yhat_b=1) at v0 (p=.25), v1 (p=.5)
    ce_b = (-math.log(1 / 5) - math.log(1 / 10)) / 2  # CE(z_b, yhat_a=0) at v0 (p0=1/5), v1 (p0=1/10)
    assert loss.item() == pytest.approx(ce_a + ce_b)
    loss.backward()
    assert za.grad.abs().sum() > 0 and zb.grad.abs().sum() > 0
    # with threshold 0.6: a's labels only at v0 (p=.75), b's at v0 (p=.8) and v1 (p=.9)
    thr = cross_pseudo_supervision(za.detach(), zb.detach(), threshold=0.6)
    assert thr.item() == pytest.approx(ce_a + (-math.log(1 / 5)))

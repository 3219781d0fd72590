"""Quality predictor Q(x, m) (METHODS.md C): shapes, range, plans, config round trip, mask gradients."""
from __future__ import annotations

import json
from types import SimpleNamespace

import pytest
import torch

from nnssl.quality import QualityPredictor

PLANS_3D = SimpleNamespace(patch_size=[16, 32, 32],
                           pool_op_kernel_sizes=[[1, 1, 1], [1, 2, 2], [2, 2, 2], [2, 2, 2], [2, 2, 2], [1, 2, 2]])
PLANS_2D = SimpleNamespace(patch_size=[32, 24], pool_op_kernel_sizes=[[1, 1], [2, 2], [2, 2]])


def _inputs(image_channels, num_classes, spatial, batch=2, seed=0):
    g = torch.Generator().manual_seed(seed)
    image = torch.randn(batch, image_channels, *spatial, generator=g)
    mask = torch.softmax(torch.randn(batch, num_classes, *spatial, generator=g), dim=1)
    return image, mask


@pytest.mark.parametrize("dim,spatial,strides", [
    (2, (32, 32), None),
    (3, (16, 32, 32), [[1, 2, 2], [2, 2, 2], [2, 2, 2], [1, 2, 2]]),
])
@pytest.mark.parametrize("per_class", [False, True])
def test_output_shape_and_range(dim, spatial, strides, per_class):
    torch.manual_seed(0)
    q = QualityPredictor(2, 3, dim=dim, strides=strides, base_features=8, per_class=per_class)
    image, mask = _inputs(2, 3, spatial)
    out = q(image, mask)
    assert out.shape == ((2, 2) if per_class else (2, 1))
    assert torch.isfinite(out).all() and (out >= 0).all() and (out <= 1).all()
    assert torch.allclose(out, torch.sigmoid(q.logits(image, mask)))
    with pytest.raises(ValueError):
        q(image, mask[:, :2])


def test_resnet18_layout():
    q = QualityPredictor(1, 2, dim=3, base_features=16, max_features=64)
    assert len(q.encoder) == 8  # [2, 2, 2, 2] BasicBlocks
    assert [b.conv2.out_channels for b in q.encoder] == [16, 16, 32, 32, 64, 64, 64, 64]
    assert q.stem[0].in_channels == 1 + 2 and q.head.in_features == 64 and q.head.out_features == 1


def test_from_plans_3d_and_2d():
    q3 = QualityPredictor.from_plans(PLANS_3D, num_input_channels=1, num_classes=3)
    assert q3.dim == 3 and q3.strides == [(1, 2, 2), (2, 2, 2), (2, 2, 2), (2, 2, 2)]
    assert q3.base_features == 16 and not q3.per_class
    assert q3(*_inputs(1, 3, PLANS_3D.patch_size)).shape == (2, 1)
    q2 = QualityPredictor.from_plans(PLANS_2D, num_input_channels=1, num_classes=2, per_class=True, base_features=8)
    assert q2.dim == 2 and q2.strides == [(2, 2), (2, 2), (1, 1), (1, 1)]  # padded with stride-1 stages
    assert q2(*_inputs(1, 2, PLANS_2D.patch_size)).shape == (2, 1)
    with pytest.raises(ValueError):
        QualityPredictor(1, 2, dim=3, strides=[[2, 2]] * 4)


def test_config_round_trip():
    torch.manual_seed(0)
    q = QualityPredictor.from_plans(PLANS_3D, 1, 3, per_class=True, base_features=8)
    cfg = json.loads(json.dumps(q.config()))
    q2 = QualityPredictor(**cfg)
    assert q2.config() == q.config()
    q2.load_state_dict(q.state_dict())
    q.eval(), q2.eval()
    image, mask = _inputs(1, 3, PLANS_3D.patch_size)
    assert torch.equal(q(image, mask), q2(image, mask))


def test_gradient_reaches_mask_with_frozen_predictor():
    torch.manual_seed(0)
    q = QualityPredictor(1, 3, dim=2, base_features=8)
    for p in q.parameters():
        p.requires_grad_(False)
    image, _ = _inputs(1, 3, (32, 32))
    seg_logits = torch.randn(2, 3, 32, 32, requires_grad=True)  # stands in for the segmentation net
    loss = (1 - q(image, torch.softmax(seg_logits, dim=1))).mean()  # L_qar
    loss.backward()
    assert seg_logits.grad is not None and torch.isfinite(seg_logits.grad).all()
    assert seg_logits.grad.abs().sum() > 0
    assert all(p.grad is None for p in q.parameters())


def test_predictor_trains():
    torch.manual_seed(0)
    q = QualityPredictor(1, 2, dim=2, base_features=8)
    image, mask = _inputs(1, 2, (32, 32), batch=4)
    target = torch.tensor([[0.1], [0.4], [0.7], [0.9]])
    opt = torch.optim.Adam(q.parameters(), lr=1e-2)
    first = None
    for _ in range(15):
        opt.zero_grad()
        loss = torch.nn.functional.mse_loss(q(image, mask), target)
        loss.backward()
        opt.step()
        first = loss.item() if first is None else first
    assert loss.item() < first

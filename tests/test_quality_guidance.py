import pytest
import torch

from nnssl.quality.guidance import pseudo_label_quality_weights, quality_aware_regularisation, \
    scale_gradient_per_sample


class MeanForeground(torch.nn.Module):
    """A stand-in predictor: Q = mean foreground probability of the mask (one parameter, to check freezing)."""

    def __init__(self):
        super().__init__()
        self.scale = torch.nn.Parameter(torch.ones(()))

    def forward(self, image, mask):
        return (self.scale * mask[:, 1:].mean(dim=tuple(range(2, mask.dim())))).clamp(0, 1)


def test_qar_hand_value_and_gradient_reaches_segmentation_not_frozen_predictor():
    q = MeanForeground().requires_grad_(False)
    logits = torch.zeros(2, 2, 3, requires_grad=True)  # p = 0.5 everywhere -> Q = 0.5
    loss = quality_aware_regularisation(q, torch.zeros(2, 1, 3), logits)
    assert loss.item() == pytest.approx(0.5)
    loss.backward()
    assert logits.grad.abs().sum() > 0
    assert q.scale.grad is None


def test_plqw_weights_normalise_to_mean_one():
    q = MeanForeground()
    # channels (background, foreground): sample 0 predicts foreground on 2 of 4 voxels (Q = 0.5), sample 1 on all
    logits = torch.tensor([[[1.0, 1.0, -1.0, -1.0], [0.0, 0.0, 0.0, 0.0]],
                           [[-1.0, -1.0, -1.0, -1.0], [0.0, 0.0, 0.0, 0.0]]])
    w = pseudo_label_quality_weights(q, torch.zeros(2, 1, 4), logits)
    assert w.tolist() == pytest.approx([0.5 / 0.75, 1.0 / 0.75])
    assert w.mean().item() == pytest.approx(1.0)
    assert not w.requires_grad


def test_scale_gradient_per_sample_reweights_sample_losses():
    x = torch.randn(3, 2, 4, requires_grad=True)
    w = torch.tensor([0.5, 1.0, 1.5])
    (scale_gradient_per_sample(x, w) ** 2).mean().backward()
    expected = 2 * x.detach() / x.numel() * w.view(-1, 1, 1)
    assert torch.allclose(x.grad, expected)
    y = torch.randn(3, 2, requires_grad=True)
    assert torch.equal(scale_gradient_per_sample(y, w), y)
    with pytest.raises(ValueError):
        scale_gradient_per_sample(y, torch.ones(2))

"""Quality guidance of SSL losses (METHODS.md C): QAR and pseudo-label quality reweighting, as pure functions."""
from __future__ import annotations

from typing import Callable

import torch

Predictor = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]  # (image, soft mask) -> (B, 1) or (B, K) in [0, 1]


def quality_aware_regularisation(predictor: Predictor, image: torch.Tensor, logits: torch.Tensor) -> torch.Tensor:
    """QAR: L_qar = mean_i (1 - Q(x_i, softmax(z_i))), differentiable in the segmentation logits.

    Args:
        predictor: the quality predictor; freeze its parameters (requires_grad False) so that only
            the segmentation network learns from this term.
        image: (B, C_in, *spatial) unlabeled images.
        logits: (B, C, *spatial) segmentation logits for them.
    """
    quality = predictor(image, torch.softmax(logits.float(), dim=1))
    return (1.0 - quality.mean(dim=1)).mean()


@torch.no_grad()
def pseudo_label_quality_weights(predictor: Predictor, image: torch.Tensor, logits: torch.Tensor,
                                 eps: float = 1e-6) -> torch.Tensor:
    """PL-QW: w_i = Q(x_i, onehot(argmax z_i)), normalised to mean 1 over the batch (detached), shape (B,)."""
    labels = logits.argmax(dim=1)
    onehot = torch.nn.functional.one_hot(labels, logits.shape[1]).movedim(-1, 1).to(logits.dtype)
    w = predictor(image, onehot).float().mean(dim=1)
    return w / w.mean().clamp_min(eps)


class _ScaleGradient(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
        ctx.save_for_backward(weights)
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        (weights,) = ctx.saved_tensors
        return grad * weights.view(-1, *([1] * (grad.dim() - 1))).to(grad.dtype), None


def scale_gradient_per_sample(x: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """Identity in the forward pass; the gradient of sample i is multiplied by weights[i] in the backward pass.

    For a loss that is a mean over samples, L = (1/B) sum_i L_i(x_i), the gradient reaching x then equals
    that of (1/B) sum_i w_i L_i: every unsupervised term computed from ``x`` is reweighted per sample
    without changing the loss functions. (Terms that couple samples, e.g. batch percentiles, keep
    their forward values; only their gradients are reweighted.)
    """
    if weights.shape != (x.shape[0],):
        raise ValueError(f"weights must have shape ({x.shape[0]},), got {tuple(weights.shape)}")
    return _ScaleGradient.apply(x, weights.detach())

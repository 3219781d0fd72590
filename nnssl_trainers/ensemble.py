"""The module that two-network trainers deploy to nnUNetv2_predict."""
from __future__ import annotations

from typing import Dict, Sequence

import torch
from torch import nn


class SoftmaxEnsemble(nn.Module):
    """Softmax-averaged ensemble of segmentation networks, returning log-probabilities.

    forward(x) = log( sum_k w_k softmax(f_k(x)) / sum_k w_k ), shape (B, C, *spatial).

    nnU-Net's predictor applies softmax to what the network returns; softmax(log p) = p for a
    probability vector p, so the exported probabilities are exactly the weighted average. The
    member weights live in a buffer, so they travel with ``checkpoint['network_weights']``: a
    weight of 0 deploys without that member (its forward is skipped).

    With deep supervision enabled (training-time validation) every member returns a list of
    outputs and the ensemble averages each resolution.
    """

    def __init__(self, members: Dict[str, nn.Module], weights: Sequence[float] | None = None):
        super().__init__()
        self.members = nn.ModuleDict(members)
        w = torch.ones(len(members)) if weights is None else torch.as_tensor(weights, dtype=torch.float32)
        if w.shape != (len(members),) or (w < 0).any() or w.sum() <= 0:
            raise ValueError(f"need {len(members)} non-negative member weights with a positive sum, got {weights}")
        self.register_buffer("member_weights", w.float())

    def set_member_weights(self, weights: Sequence[float]) -> None:
        """Change which members are used (e.g. [1, 0] deploys the first network only)."""
        w = torch.as_tensor(weights, dtype=torch.float32, device=self.member_weights.device)
        if w.shape != self.member_weights.shape or (w < 0).any() or w.sum() <= 0:
            raise ValueError(f"invalid member weights {weights}")
        self.member_weights.copy_(w)

    def _average(self, outputs: Sequence[torch.Tensor], weights: Sequence[float]) -> torch.Tensor:
        total = sum(weights)
        probs = sum(w * torch.softmax(o.float(), dim=1) for o, w in zip(outputs, weights)) / total
        return torch.log(probs.clamp_min(1e-12))

    def forward(self, x: torch.Tensor):
        active = [(m, float(w)) for m, w in zip(self.members.values(), self.member_weights.tolist()) if w > 0]
        outputs = [m(x) for m, _ in active]
        weights = [w for _, w in active]
        if isinstance(outputs[0], (list, tuple)):
            return [self._average(level, weights) for level in zip(*outputs)]
        return self._average(outputs, weights)

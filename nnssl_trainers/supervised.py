"""Supervised-only baseline on the nnssl base: nnU-Net's loss on the labeled cases, no unlabeled data.

L = L_sup(f(x_l), y_l)  (nnU-Net's deep-supervised CE + Dice), one network, nnU-Net's SGD and PolyLR.

It differs from nnU-Net's own ``nnUNetTrainer`` only in what an SSL comparison needs: the training
budget (num_epochs, num_iterations_per_epoch, ...) and the other hyperparameters resolve like every
nnssl trainer's (plans' ``nnssl_hparams``, ``$nnssl_hparams``), so supervised-only and SSL runs can be
given the same iteration budget from one settings file; and it trains on datasets without any
unlabeled images (e.g. the all-labels upper bound).
"""
from __future__ import annotations

from typing import Dict, Optional

import torch

from nnssl_trainers.base import nnSSLTrainerBase


class nnSSLSupervisedTrainer(nnSSLTrainerBase):
    """One plans U-Net trained on labeled patches only (``uses_unlabeled = False``)."""

    uses_unlabeled = False
    supports_regions = True

    def compute_losses(self, data: torch.Tensor, target, unlabeled: Optional[torch.Tensor]) -> Dict[str, torch.Tensor]:
        loss = self.loss(self.network(data), target)
        return {"loss": loss, "loss_sup": loss.detach()}

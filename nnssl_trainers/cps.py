"""Cross pseudo supervision baseline (Chen et al., CVPR 2021) on nnU-Net."""
from __future__ import annotations

from typing import Any, Dict

import torch

from nnssl.losses import cross_pseudo_supervision
from nnssl_trainers.base import nnSSLTrainerBase


class nnSSLCPSTrainer(nnSSLTrainerBase):
    """Two differently initialised copies of the plans' U-Net teach each other on unlabeled data.

    L = L_sup(net_a) + L_sup(net_b) + cps_weight * ramp(t) * [CE(z_a, yhat_b) + CE(z_b, yhat_a)],
    yhat_k = argmax softmax(z_k) (detached); voxels whose teacher confidence is below
    ``cps_threshold`` are ignored (0 keeps all, as in the CPS paper). Deploys the softmax-averaged
    ensemble of both networks (``deploy``: 'ensemble', 'net_a' or 'net_b').
    """

    hparam_defaults: Dict[str, Any] = {
        "cps_weight": 1.0,
        "cps_threshold": 0.0,
    }

    subnetwork_kinds = {"net_a": "plans", "net_b": "plans"}

    def compute_losses(self, data, target, unlabeled) -> Dict[str, torch.Tensor]:
        out_la, out_ua = self.forward_labeled_unlabeled(self.subnetworks["net_a"], data, unlabeled)
        out_lb, out_ub = self.forward_labeled_unlabeled(self.subnetworks["net_b"], data, unlabeled)
        sup_a, sup_b = self.loss(out_la, target), self.loss(out_lb, target)
        cps = cross_pseudo_supervision(out_ua, out_ub, self.hparams["cps_threshold"])
        weight = self.hparams["cps_weight"] * self.ramp()
        return {"loss": sup_a + sup_b + weight * cps, "loss_sup_a": sup_a.detach(), "loss_sup_b": sup_b.detach(),
                "loss_cps": cps.detach(), "weight_cps": torch.tensor(weight)}

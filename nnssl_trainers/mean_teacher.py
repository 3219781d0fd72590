"""Mean Teacher baseline (Tarvainen & Valpola 2017) on nnU-Net."""
from __future__ import annotations

import copy
from typing import Any, Dict

import torch
from torch import nn

from nnssl.deep_supervision import full_resolution
from nnssl.ema import ema_update
from nnssl.losses import softmax_mse
from nnssl_trainers.base import nnSSLTrainerBase
from nnssl_trainers.wrapping import unwrap


def perturb(x: torch.Tensor, std: float, clip: float) -> torch.Tensor:
    """x + clamp(N(0, std^2), -clip, clip): the input noise of UA-MT's teacher view."""
    return x + torch.clamp(torch.randn_like(x) * std, -clip, clip)


class nnSSLMeanTeacherTrainer(nnSSLTrainerBase):
    """Student trained on L_sup + consistency_weight * ramp(t) * MSE(softmax(student), softmax(teacher)).

    Both views share nnU-Net's spatial augmentation of the unlabeled patch (so their voxels stay
    aligned) and differ by independent Gaussian input noise. The teacher is the EMA of the student
    (decay ``ema_decay``); ``deploy`` chooses which of the two nnUNetv2_predict uses.
    """

    hparam_defaults: Dict[str, Any] = {
        "ema_decay": 0.99,
        "consistency_weight": 0.1,
        "noise_std": 0.1,
        "noise_clip": 0.2,
        "deploy": "student",
    }

    subnetwork_kinds = {"student": "plans"}

    def build_auxiliary_networks(self) -> Dict[str, nn.Module]:
        teacher = copy.deepcopy(unwrap(self.network))
        teacher.requires_grad_(False)
        return {"teacher": teacher}

    def compute_losses(self, data, target, unlabeled) -> Dict[str, torch.Tensor]:
        hp = self.hparams
        out_l, out_u = self.forward_labeled_unlabeled(self.network, data, perturb(unlabeled, hp["noise_std"],
                                                                                   hp["noise_clip"]))
        with torch.no_grad():
            teacher_logits = full_resolution(self.auxiliary_networks["teacher"](
                perturb(unlabeled, hp["noise_std"], hp["noise_clip"])))
        sup = self.loss(out_l, target)
        cons = softmax_mse(out_u, teacher_logits)
        weight = hp["consistency_weight"] * self.ramp()
        return {"loss": sup + weight * cons, "loss_sup": sup.detach(), "loss_consistency": cons.detach(),
                "weight_consistency": torch.tensor(weight)}

    def after_optimizer_step(self) -> None:
        ema_update(self.auxiliary_networks["teacher"], unwrap(self.network), self.hparams["ema_decay"])

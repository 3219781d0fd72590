"""nnSSLDualTrainer: dual-network, uncertainty-guided semi-supervised segmentation (METHODS.md A).

Two heterogeneous subnets from the same plans (net_a = the plans' U-Net, net_b = its residual /
plain partner with the same stages and strides). Per step, with z = full-resolution logits:
  L_sup^k = CE + Dice (deep supervision) + beta * L_cr^k        on the labeled batch
  L_cr^k  = sum_v M_v ||p_k,v - t_v||^2 / sum_v M_v, M = exactly one subnet confident foreground,
            t = one-hot(y) (cr_target='label', the default, as the public code) or the peer's p (Eq 6, 'peer')
  CCE     = L_cps (tau_cps) + L_efs (eta percentile)            on the unlabeled batch
  L_ue^k  = KL-rectified CE, k taught by its peer (temperature T)
  L_pgl^k = prototype-guided loss on the last decoder features of subnet k
  L = sum_k L_sup^k + ramp(t) (CCE + L_ue^A + L_ue^B) + lambda_c ramp(t) (L_pgl^A + L_pgl^B)
Every component has a switch (use_cce, use_cr, use_ue, use_pgl): the paper's ablation is one flag.
All unsupervised terms send gradients into the student logits/features (unlike the public code).
"""
from __future__ import annotations

from typing import Any, Dict

import torch
import torch.nn.functional as F

from nnssl.deep_supervision import full_resolution
from nnssl.losses.dual import (DISAGREEMENT_MODES, bidirectional_uncertainty_loss, consistency_regularisation,
                               cross_pseudo_supervision, disagreement_mask, entropy_filtered_supervision,
                               prototype_loss_from_selection, select_prototype_voxels)
from nnssl_trainers.architectures import DecoderFeatures
from nnssl_trainers.base import nnSSLTrainerBase
from nnssl_trainers.ramp_schedule import GUARDED_SCHEDULE
from nnssl_trainers.wrapping import unwrap


class nnSSLDualTrainer(nnSSLTrainerBase):
    """Method A; deploys the softmax-averaged ensemble of both subnets (``deploy``: 'net_a'/'net_b' for one)."""

    hparam_defaults: Dict[str, Any] = {
        "use_cce": True, "use_cr": True, "use_ue": True, "use_pgl": True,
        "beta": 0.5,  # weight of L_cr inside L_sup (0.6 for pancreas in the paper)
        "cr_tau": 0.6, "cr_mode": "xor",
        # L_cr's target on the disagreement voxels: 'label' = one-hot(y), as the public code (default since it
        # beat the paper's 'peer' on both benchmarks, docs/benchmarks.md); 'peer' = the other subnet (Eq 6)
        "cr_target": "label",
        "cps_tau": 0.6,
        "eta": 70.0,  # entropy percentile (paper: 70 LA, 80 pancreas, 30 BraTS)
        "temperature": 0.5, "ue_both_directions": True,
        "lambda_c": 0.1, "gamma": 1.0, "n_max": 4096,
        "pgl_reliability": "batch",  # 'per_class': one entropy threshold per pseudo-label class (not the paper)
        **GUARDED_SCHEDULE,  # not the paper's ramp start: see nnssl_trainers.ramp_schedule
    }

    subnetwork_kinds = {"net_a": "plans", "net_b": "partner"}

    hparam_choices = {"cr_target": ("peer", "label"), "pgl_reliability": ("batch", "per_class"),
                      "cr_mode": DISAGREEMENT_MODES}

    def initialize(self):
        super().initialize()
        self.decoder_features = {n: DecoderFeatures(unwrap(m)) for n, m in self.subnetworks.items()} \
            if self.hparams["use_pgl"] else {}

    def _consistency(self, z_la: torch.Tensor, z_lb: torch.Tensor, target) -> Dict[str, torch.Tensor]:
        hp = self.hparams
        p_a, p_b = torch.softmax(z_la.float(), 1), torch.softmax(z_lb.float(), 1)
        mask = disagreement_mask(p_a, p_b, hp["cr_tau"], hp["cr_mode"])
        if hp["cr_target"] == "label":
            y = full_resolution(target)[:, 0].long().clamp_min(0)
            onehot = F.one_hot(y, p_a.shape[1]).movedim(-1, 1).float()
            cr_a, cr_b = consistency_regularisation(p_a, onehot, mask), consistency_regularisation(p_b, onehot, mask)
        else:
            cr_a = consistency_regularisation(p_a, p_b.detach(), mask)
            cr_b = consistency_regularisation(p_b, p_a.detach(), mask)
        return {"cr_a": cr_a, "cr_b": cr_b, "frac_cr_mask": mask.float().mean()}

    def compute_losses(self, data, target, unlabeled) -> Dict[str, torch.Tensor]:
        hp = self.hparams
        n = data.shape[0]
        out_la, z_ua = self.forward_labeled_unlabeled(self.subnetworks["net_a"], data, unlabeled)
        feat_a = self.decoder_features["net_a"].pop()[n:] if hp["use_pgl"] else None
        out_lb, z_ub = self.forward_labeled_unlabeled(self.subnetworks["net_b"], data, unlabeled)
        feat_b = self.decoder_features["net_b"].pop()[n:] if hp["use_pgl"] else None

        sup_a, sup_b = self.loss(out_la, target), self.loss(out_lb, target)
        logs: Dict[str, torch.Tensor] = {"loss_sup_a": sup_a.detach(), "loss_sup_b": sup_b.detach()}
        total = sup_a + sup_b
        if hp["use_cr"]:
            cr = self._consistency(full_resolution(out_la), full_resolution(out_lb), target)
            total = total + hp["beta"] * (cr["cr_a"] + cr["cr_b"])
            logs.update(loss_cr=(cr["cr_a"] + cr["cr_b"]).detach(), frac_cr_mask=cr["frac_cr_mask"])

        ramp = self.ramp()
        unsup = z_ua.new_zeros(())
        if hp["use_cce"]:
            cps = cross_pseudo_supervision(z_ua, z_ub, hp["cps_tau"])
            efs, kept = entropy_filtered_supervision(z_ua, z_ub, hp["eta"])
            unsup = unsup + cps + efs
            logs.update(loss_cps=cps.detach(), loss_efs=efs.detach(), frac_efs_kept=kept)
        if hp["use_ue"]:
            ue_a, ue_b = bidirectional_uncertainty_loss(z_ua, z_ub, hp["temperature"], hp["ue_both_directions"])
            unsup = unsup + ue_a + ue_b
            logs.update(loss_ue_a=ue_a.detach(), loss_ue_b=torch.as_tensor(ue_b).detach())
        total = total + ramp * unsup
        if hp["use_pgl"]:
            p_ua, p_ub = torch.softmax(z_ua.detach().float(), 1), torch.softmax(z_ub.detach().float(), 1)
            selection = select_prototype_voxels(p_ua, p_ub, hp["eta"], hp["n_max"],  # shared by both subnets
                                                per_class=hp["pgl_reliability"] == "per_class")
            pgl_a, counts = prototype_loss_from_selection(feat_a, selection, hp["gamma"])
            pgl_b, _ = prototype_loss_from_selection(feat_b, selection, hp["gamma"])
            total = total + hp["lambda_c"] * ramp * (pgl_a + pgl_b)
            logs.update(loss_pgl_a=pgl_a.detach(), loss_pgl_b=pgl_b.detach())
            logs.update({f"reliable_voxels_c{c}": counts[c].float() for c in range(counts.shape[0])})
        logs["loss"] = total
        return logs


class nnSSLDualTrainerPerClass(nnSSLDualTrainer):
    """Method A with one entropy threshold per pseudo-label class for the prototype loss's reliable voxels
    (``pgl_reliability='per_class'``; not the paper): for small structures that are less certain than the
    background, which the paper's one batch threshold never marks reliable."""

    hparam_defaults: Dict[str, Any] = {"pgl_reliability": "per_class"}

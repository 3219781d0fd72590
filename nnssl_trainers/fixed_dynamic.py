"""nnSSLFixedDynamicTrainer: fixed and dynamic pseudo-labels with CutMix co-training (METHODS.md B).

Unlabeled data: every unlabeled sample is a REGION of patch + 2 * s_max along the shifted axes,
augmented as a whole by nnU-Net's training pipeline; the fixed crop and the shifted crops are cut
from the augmented region afterwards, so spatial augmentation cannot break their geometric relation
(a crop shifted by o sees exactly the voxels of the fixed crop moved by o). Each iteration draws
the shift s per shifted axis in [shift_min_fraction, shift_max_fraction] x patch (this redraw is
what makes the dynamic label dynamic) and uses the centre patch + 2 s of the region.

Per step (SN1 = net_a, SN2 = net_b):
  yf_j = argmax SN_j(x_f)                   fixed pseudo-label (no gradient)
  yd_j = COM(temporary label of SN_j on the shifted crops, yf_j)   dynamic pseudo-label
  SN1 learns from SN2 on the original images: L_fix^1 = CE+Dice(SN1(x_f), yf_2), L_dyn^1 = ...(yd_2)
  SN2 learns from SN1 on CutMix(x_f) with SN1's labels mixed by the same box: L_fix^2, L_dyn^2
  L = w_sup sum_k [alpha CE + (1 - alpha) Dice](SN_k(x_l), y) + ramp(t) (w_fix (L_fix^1 + L_fix^2)
      + w_dyn (L_dyn^1 + L_dyn^2))
w_sup = 1 is the paper; with alpha = 0.5 its supervised loss is half nnU-Net's CE + Dice, so ``weight_sup`` = 2
puts it at nnU-Net's scale (the scale of methods A, CPS and supervised-only).
Not the paper: w_fix = w_dyn = 0.5 by default. With the paper's 1.0 every method-B form under-segmented on LA,
3-5 Dice below the halved weights (identical, _QG and heterogeneous pairs); on Hippocampus 1.0 lower
(docs/benchmarks.md, twenty-first session).
With ``pseudo_label_margin`` > 0 (not in the paper; default 0) the four pseudo-label losses skip the band of
that share of the patch at every border, where one patch's prediction lacks context
(``nnssl.pseudo_labels.margin``; on LA a 0.2 margin made method B worse, docs/benchmarks.md).
"""
from __future__ import annotations

from typing import Any, Dict, List, Tuple

import numpy as np
import torch
from nnunetv2.training.loss.compound_losses import DC_and_CE_loss
from nnunetv2.training.loss.dice import MemoryEfficientSoftDiceLoss
from torch import nn

from nnssl.deep_supervision import full_resolution
from nnssl.pseudo_labels import (cutmix, dynamic_label, fixed_crop, ignore_outside, interior_mask, shift_axes,
                                 shift_bounds)
from nnssl_trainers.base import nnSSLTrainerBase
from nnssl_trainers.ramp_schedule import GUARDED_SCHEDULE
from nnssl_trainers.wrapping import unwrap


class nnSSLFixedDynamicTrainer(nnSSLTrainerBase):
    """Fixed/dynamic pseudo-label co-training of two subnets; deploys their softmax ensemble."""

    hparam_defaults: Dict[str, Any] = {
        "alpha": 0.5,  # supervised and pseudo-label loss = alpha CE + (1 - alpha) Dice
        "shift_axes": [],  # spatial axes to shift; [] = the two last (in-plane) axes in 3D, both in 2D
        "shift_min_fraction": 0.125,
        "shift_max_fraction": 0.25,  # s_max = round(patch * fraction) per shifted axis
        "cutmix_ratio": 2.0 / 3.0,  # box volume / patch volume
        "weight_sup": 1.0,  # 2.0 with alpha 0.5: the supervised loss at nnU-Net's CE + Dice scale
        "weight_fix": 0.5,  # the paper: 1.0 (set it, and weight_dyn, through the plans' nnssl_hparams)
        "weight_dyn": 0.5,
        # share of the patch per axis, at each border, where the pseudo-label losses are ignored (0 = the paper)
        "pseudo_label_margin": 0.0,
        **GUARDED_SCHEDULE,  # not the paper's ramp start: see nnssl_trainers.ramp_schedule
    }

    subnetwork_kinds = {"net_a": "plans", "net_b": "plans"}

    # ------------------------------------------------------------------ geometry
    def _shift_axes(self) -> List[int]:
        return shift_axes(len(self.configuration_manager.patch_size), self.hparams["shift_axes"])

    def _shift_bounds(self) -> Tuple[List[int], List[int]]:
        return shift_bounds(self.configuration_manager.patch_size, self._shift_axes(),
                            self.hparams["shift_min_fraction"], self.hparams["shift_max_fraction"])

    def unlabeled_patch_size(self) -> List[int]:
        _, hi = self._shift_bounds()
        return [p + 2 * s for p, s in zip(self.configuration_manager.patch_size, hi)]

    def _draw_shift(self) -> List[int]:
        lo, hi = self._shift_bounds()
        return [int(np.random.randint(low, high + 1)) if high > 0 else 0 for low, high in zip(lo, hi)]

    # ------------------------------------------------------------------ losses
    @property
    def pseudo_label_ignore(self) -> int:
        """Label of the ignored border band in the pseudo-label targets: one past the last class, never an argmax."""
        return self.label_manager.num_segmentation_heads

    def _build_loss(self):
        loss = super()._build_loss()
        inner = loss.loss if hasattr(loss, "loss") else loss  # DeepSupervisionWrapper or DC_and_CE
        inner.weight_ce, inner.weight_dice = self.hparams["alpha"], 1.0 - self.hparams["alpha"]
        margin = self.hparams["pseudo_label_margin"]
        #: voxels of the patch whose pseudo-labels count (None: all); interior_mask refuses a margin without any
        try:
            self.pseudo_label_interior = interior_mask(self.configuration_manager.patch_size, margin, self.device) \
                if margin > 0 else None
        except ValueError as e:
            raise ValueError(f"hyperparameter pseudo_label_margin={margin}: {e}") from e
        self.pseudo_label_loss = DC_and_CE_loss(
            {"batch_dice": self.configuration_manager.batch_dice, "smooth": 1e-5, "do_bg": False,
             "ddp": self.is_ddp}, {}, weight_ce=self.hparams["alpha"], weight_dice=1.0 - self.hparams["alpha"],
            ignore_label=self.pseudo_label_ignore if margin > 0 else None,
            dice_class=MemoryEfficientSoftDiceLoss)
        return loss

    @torch.no_grad()
    def _dynamic_label(self, net: nn.Module, region: torch.Tensor, fixed_probs: torch.Tensor,
                       shift: List[int]) -> torch.Tensor:
        """yd = COM(average softmax of ``net`` on the shifted crops mapped back, argmax of fixed_probs)."""
        return dynamic_label(lambda crops: full_resolution(net(crops)), region, fixed_probs,
                             list(self.configuration_manager.patch_size), shift, self._shift_axes())

    def compute_losses(self, data, target, unlabeled) -> Dict[str, torch.Tensor]:
        patch = list(self.configuration_manager.patch_size)
        shift = self._draw_shift()
        _, hi = self._shift_bounds()
        trim = [m - s for m, s in zip(hi, shift)]  # centre region of patch + 2 s inside the loaded one
        region = unlabeled[(slice(None), slice(None)) + tuple(slice(t, r - t) for t, r in
                                                                 zip(trim, unlabeled.shape[2:]))]
        x_f = fixed_crop(region, patch, shift)
        net_a, net_b = self.subnetworks["net_a"], self.subnetworks["net_b"]

        out_la, z_a = self.forward_labeled_unlabeled(net_a, data, x_f)  # SN1 on the original images
        with torch.no_grad():
            p_a = torch.softmax(z_a.detach().float(), 1)
            p_b = torch.softmax(full_resolution(unwrap(net_b)(x_f)).float(), 1)
            yf_a, yf_b = p_a.argmax(1), p_b.argmax(1)
            yd_a = self._dynamic_label(unwrap(net_a), region, p_a, shift)
            yd_b = self._dynamic_label(unwrap(net_b), region, p_b, shift)
            x_mix, (yf_a_mix, yd_a_mix), _, _ = cutmix(x_f, [yf_a, yd_a], volume_ratio=self.hparams["cutmix_ratio"])
        out_lb, z_b_mix = self.forward_labeled_unlabeled(net_b, data, x_mix)  # SN2 on the CutMix images

        sup_a, sup_b = self.loss(out_la, target), self.loss(out_lb, target)
        differs = 0.5 * ((yd_a != yf_a).float().mean() + (yd_b != yf_b).float().mean())
        if self.pseudo_label_interior is not None:
            yf_b, yd_b, yf_a_mix, yd_a_mix = (
                ignore_outside(y, self.pseudo_label_interior, self.pseudo_label_ignore)
                for y in (yf_b, yd_b, yf_a_mix, yd_a_mix))
        fix_a = self.pseudo_label_loss(z_a, yf_b[:, None])
        dyn_a = self.pseudo_label_loss(z_a, yd_b[:, None])
        fix_b = self.pseudo_label_loss(z_b_mix, yf_a_mix[:, None])
        dyn_b = self.pseudo_label_loss(z_b_mix, yd_a_mix[:, None])
        ramp = self.ramp()
        unsup = self.hparams["weight_fix"] * (fix_a + fix_b) + self.hparams["weight_dyn"] * (dyn_a + dyn_b)
        total = self.hparams["weight_sup"] * (sup_a + sup_b) + ramp * unsup
        return {"loss": total, "loss_sup_a": sup_a.detach(), "loss_sup_b": sup_b.detach(),
                "loss_fix_a": fix_a.detach(), "loss_dyn_a": dyn_a.detach(), "loss_fix_b": fix_b.detach(),
                "loss_dyn_b": dyn_b.detach(), "frac_dynamic_differs": differs,
                "mean_shift": torch.tensor(float(np.mean([s for s in shift if s > 0] or [0])))}


class nnSSLFixedDynamicTrainerHetero(nnSSLFixedDynamicTrainer):
    """The same method with heterogeneous subnets (plans U-Net + residual-encoder partner)."""

    subnetwork_kinds = {"net_a": "plans", "net_b": "partner"}

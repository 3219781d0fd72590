"""QualityGuidanceMixin: a learned segmentation-quality predictor guiding any nnssl SSL trainer (METHODS.md C).

``class nnSSLCPSTrainer_QG(QualityGuidanceMixin, nnSSLCPSTrainer)`` is the whole _QG variant. The mixin
sees every trained network's unlabeled logits through ``forward_labeled_unlabeled`` and adds
  QAR:   L_qar = mean_i (1 - Q(x_u,i, softmax(z_i)))          weight qg_lambda * ramp(t)
  PL-QW: w_i = Q(x_u,i, onehot(argmax z_i)) / mean_j(...)    per-sample weight of the unsupervised terms,
applied by scaling each sample's gradient at the logits (nnssl.quality.guidance.scale_gradient_per_sample),
so no trainer's loss code changes. Q is frozen for the guidance: no SSL loss trains it.
The predictor comes from ``nnssl_train_quality_predictor`` (``qg_predictor``: a path, or "auto" = the
standard location of this dataset/plans/configuration) or is trained online ("online", also the
fallback of "auto" when no file exists) on the labeled batch: the segmentation networks' own
labeled softmax outputs against their true Dice, plus the ground truth (Dice 1) and another sample's
mask; it guides nothing during a warm-up of qg_warmup_fraction of training.
"""
from __future__ import annotations

import os
from typing import Any, Dict, List, Tuple

import numpy as np
import torch
import torch.nn.functional as F
from torch import distributed as dist
from torch import nn

from nnssl.deep_supervision import full_resolution
from nnssl.quality.dice import mean_foreground_dice
from nnssl.quality.guidance import pseudo_label_quality_weights, quality_aware_regularisation, \
    scale_gradient_per_sample
from nnssl.quality.io import default_predictor_path, load_predictor
from nnssl.quality.network import QualityPredictor
from nnssl_trainers.ramp_schedule import GUARDED_SCHEDULE


class QualityGuidanceMixin:
    """Adds QAR and PL-QW to an nnssl SSL trainer; put it first in the bases."""

    hparam_defaults: Dict[str, Any] = {
        "qg_use_qar": True,
        "qg_use_plqw": True,
        "qg_lambda": 0.1,  # lambda_q of QAR (times ramp(t))
        "qg_predictor": "auto",  # path to a trained predictor, "online", or "auto"
        "qg_warmup_fraction": 0.1,  # online mode: share of training before the predictor guides anything
        "qg_online_lr": 1e-3,
        "qg_base_features": 16,  # online mode: width of a new predictor
        # quality guidance brings the collapse guard (the ramp start stays the base trainer's): Mean Teacher_QG
        # lost a class in 1 of 6 runs, and every collapse seen after the foreground gate had opened was in a run
        # with quality guidance (docs/benchmarks.md)
        "collapse_guard": GUARDED_SCHEDULE["collapse_guard"],
    }

    # ------------------------------------------------------------------ predictor
    def build_auxiliary_networks(self) -> Dict[str, nn.Module]:
        nets = super().build_auxiliary_networks()
        choice = self.hparams["qg_predictor"]
        path = choice if choice not in ("auto", "online") else default_predictor_path(
            self.plans_manager.dataset_name, self.plans_manager.plans_name, self.configuration_name)
        self.qg_online = choice == "online" or (choice == "auto" and not os.path.isfile(path))
        if self.qg_online:
            predictor = QualityPredictor.from_plans(self.configuration_manager, self.num_input_channels,
                                                    self.label_manager.num_segmentation_heads,
                                                    base_features=self.hparams["qg_base_features"])
            self.print_to_log_file("quality guidance: predictor trained online on the labeled batches")
        else:
            predictor = load_predictor(path, map_location="cpu")
            self.print_to_log_file(f"quality guidance: predictor loaded from {path}")
        nets["quality"] = predictor.requires_grad_(False)
        return nets

    def initialize(self):
        super().initialize()
        predictor = self.auxiliary_networks["quality"]
        self.qg_optimizer = torch.optim.Adam(predictor.parameters(), self.hparams["qg_online_lr"]) \
            if self.qg_online else None
        self._qg_seen: List[Tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]] = []

    def qg_active(self) -> bool:
        """Whether the predictor guides this step (online mode: only after the warm-up)."""
        return not self.qg_online or self.iteration >= self.hparams["qg_warmup_fraction"] * self.total_iterations

    # ------------------------------------------------------------------ guidance
    def forward_labeled_unlabeled(self, net, data, unlabeled):
        out_l, out_u = super().forward_labeled_unlabeled(net, data, unlabeled)
        self._qg_seen.append((data, full_resolution(out_l).detach(), unlabeled, out_u))
        if self.hparams["qg_use_plqw"] and self.qg_active():
            weights = pseudo_label_quality_weights(self.auxiliary_networks["quality"], unlabeled, out_u.detach())
            self._qg_weights.append(weights)
            out_u = scale_gradient_per_sample(out_u, weights)
        return out_l, out_u

    def compute_losses(self, data, target, unlabeled) -> Dict[str, torch.Tensor]:
        self._qg_seen, self._qg_weights = [], []
        losses = super().compute_losses(data, target, unlabeled)
        predictor = self.auxiliary_networks["quality"]
        if self.qg_online:  # before QAR builds a graph through the predictor's weights
            losses["loss_quality_online"] = self._train_predictor_online(target)
        if self.qg_active() and self._qg_seen:
            if self.hparams["qg_use_qar"]:
                qar = torch.stack([quality_aware_regularisation(predictor, x, z) for _, _, x, z in self._qg_seen])
                qar = qar.mean()
                losses["loss"] = losses["loss"] + self.hparams["qg_lambda"] * self.ramp() * qar
                losses["loss_qar"] = qar.detach()
                losses["quality_unlabeled"] = 1.0 - qar.detach()  # L_qar = mean (1 - Q): no second forward
            else:
                with torch.no_grad():
                    losses["quality_unlabeled"] = torch.stack([predictor(x, torch.softmax(z.detach().float(), 1))
                                                               .mean() for _, _, x, z in self._qg_seen]).mean()
            if self._qg_weights:
                losses["plqw_weight_std"] = torch.cat(self._qg_weights).std(unbiased=False)
        return losses

    def _train_predictor_online(self, target) -> torch.Tensor:
        """One Adam step of the predictor: MSE between Q(x_l, m) and Dice(m, y) for the networks' labeled
        soft outputs, the ground truth itself and another sample's ground truth."""
        predictor = self.auxiliary_networks["quality"]
        y = full_resolution(target)[:, 0].long().clamp_min(0)
        onehot = F.one_hot(y, self.label_manager.num_segmentation_heads).movedim(-1, 1).float()
        images, masks = [], []
        for x, z, _, _ in self._qg_seen:
            images.append(x)
            masks.append(torch.softmax(z.float(), 1))
        x = images[0]
        images += [x, x]
        masks += [onehot, onehot.roll(1, dims=0)]
        image, mask = torch.cat(images), torch.cat(masks)
        truth = mean_foreground_dice(mask, y.repeat(len(masks), *([1] * (y.dim() - 1))))
        predictor.requires_grad_(True)
        self.qg_optimizer.zero_grad(set_to_none=True)
        with torch.autocast(self.device.type, enabled=False):
            loss = F.mse_loss(predictor(image, mask).float().mean(1), truth.float())
        loss.backward()
        if self.is_ddp:  # the predictor is not DDP-wrapped: average its gradients by hand
            for p in predictor.parameters():
                if p.grad is not None:
                    dist.all_reduce(p.grad)
                    p.grad /= dist.get_world_size()
        self.qg_optimizer.step()
        predictor.requires_grad_(False)
        return loss.detach()

    # ------------------------------------------------------------------ validation and checkpoints
    def validation_step(self, batch: dict) -> dict:
        out = super().validation_step(batch)
        with self._deployed(), torch.no_grad():
            data = batch["data"].to(self.device)
            logits = full_resolution(self.network(data))
            target = full_resolution(batch["target"])
            probs = torch.softmax(logits.float(), 1)
            truth = mean_foreground_dice(probs, target.to(self.device)[:, 0].long().clamp_min(0))
            predicted = self.auxiliary_networks["quality"](data, probs).float().mean(1)
        out["qg_abs_err"] = (predicted - truth).abs().cpu().numpy()
        return out

    def on_validation_epoch_end(self, val_outputs: List[dict]):
        super().on_validation_epoch_end(val_outputs)
        err = float(np.mean(np.concatenate([np.atleast_1d(o["qg_abs_err"]) for o in val_outputs])))
        if self.is_ddp:
            gathered = [None] * dist.get_world_size()
            dist.all_gather_object(gathered, err)
            err = float(np.mean(gathered))
        self.logger.log("quality_val_mae", err, self.current_epoch)

    def extra_checkpoint_state(self) -> Dict[str, Any]:
        state = super().extra_checkpoint_state()
        if self.qg_optimizer is not None:
            state["qg_optimizer"] = self.qg_optimizer.state_dict()
        return state

    def load_extra_checkpoint_state(self, state: Dict[str, Any]) -> None:
        super().load_extra_checkpoint_state(state)
        if self.qg_optimizer is not None and "qg_optimizer" in state:
            self.qg_optimizer.load_state_dict(state["qg_optimizer"])

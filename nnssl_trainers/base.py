"""nnSSLTrainerBase: what every semi-supervised trainer of nnssl shares.

A subclass declares its networks (``build_subnetworks``: trained and deployed; optionally
``build_auxiliary_networks``: e.g. an EMA teacher) and implements ``compute_losses``; the base
runs nnU-Net's loop around them: labeled and unlabeled loaders through nnU-Net's augmentation,
one optimizer with a parameter group per trained network, AMP and gradient clipping per network,
DDP wrapping, ramp-up, per-term logging (progress.png), full checkpoints and deployment of the
(ensemble) network to ``nnUNetv2_predict``.
"""
from __future__ import annotations

import json
import os
from contextlib import contextmanager
from typing import Any, Dict, List

import numpy as np
import torch
from batchgenerators.dataloading.nondet_multi_threaded_augmenter import NonDetMultiThreadedAugmenter
from batchgenerators.dataloading.single_threaded_augmenter import SingleThreadedAugmenter
from nnunetv2.training.data_augmentation.compute_initial_patch_size import get_patch_size
from nnunetv2.training.dataloading.nnunet_dataset import infer_dataset_class
from nnunetv2.training.lr_scheduler.polylr import PolyLRScheduler
from nnunetv2.training.nnUNetTrainer.nnUNetTrainer import nnUNetTrainer
from nnunetv2.utilities.collate_outputs import collate_outputs
from nnunetv2.utilities.default_n_proc_DA import get_allowed_n_proc_DA
from nnunetv2.utilities.helpers import dummy_context
from nnunetv2.utilities.label_handling.label_handling import determine_num_input_channels
from torch import autocast, nn
from torch import distributed as dist
from torch.nn.parallel import DistributedDataParallel as DDP

from nnssl.data.unlabeled import make_unlabeled_loader, unlabeled_folder
from nnssl.deep_supervision import full_resolution
from nnssl.hparams import resolve_hparams
from nnssl.monitoring import SSL_TERMS_PREFIX, label_shares, prediction_shares
from nnssl_trainers.architectures import build_partner_network
from nnssl_trainers.checkpointing import CheckpointMixin
from nnssl_trainers.ensemble import SoftmaxEnsemble
from nnssl_trainers.labeled_share import LabeledShareMixin
from nnssl_trainers.progress import SSLLocalLogger
from nnssl_trainers.ramp_schedule import RampScheduleMixin
from nnssl_trainers.wrapping import unwrap

#: hyperparameters that set nnUNetTrainer attributes of the same name
NNUNET_ATTRIBUTES = ("num_epochs", "num_iterations_per_epoch", "num_val_iterations_per_epoch", "initial_lr",
                     "weight_decay", "oversample_foreground_percent", "save_every")


class nnSSLTrainerBase(RampScheduleMixin, CheckpointMixin, LabeledShareMixin, nnUNetTrainer):
    """Shared semi-supervised machinery on top of nnU-Net's trainer (constructor unchanged)."""

    hparam_defaults: Dict[str, Any] = {
        # nnUNetTrainer's own knobs, overridable like every other hyperparameter
        "num_epochs": 1000,
        "num_iterations_per_epoch": 250,
        "num_val_iterations_per_epoch": 50,
        "initial_lr": 1e-2,
        "weight_decay": 3e-5,
        "oversample_foreground_percent": 0.33,
        "save_every": 50,
        "grad_clip": 12.0,
        # SSL
        "unlabeled_batch_ratio": 1.0,  # unlabeled patches per labeled patch in a batch
        # ramp(t): rampup_fraction, ramp_start, ramp_start_dice, collapse_guard in RampScheduleMixin
        "deploy": "ensemble",  # what nnUNetv2_predict uses: 'ensemble' or one network's name
    }

    def __init__(self, plans: dict, configuration: str, fold: int, dataset_json: dict,
                 device: torch.device = torch.device("cuda")):
        super().__init__(plans, configuration, fold, dataset_json, device)
        # defaults merged along the MRO, plans and env overrides, each hparam_choices value checked
        self.hparams: Dict[str, Any] = resolve_hparams(type(self), self.plans_manager.plans)
        for name in NNUNET_ATTRIBUTES:
            setattr(self, name, self.hparams[name])
        self.logger.local_logger = SSLLocalLogger()
        self.subnetworks: Dict[str, nn.Module] = {}
        self.auxiliary_networks: Dict[str, nn.Module] = {}
        self.dataloader_unlabeled = None
        self.iteration = 0  # optimizer steps taken; drives the ramp-ups
        self.init_ramp_schedule()  # ramp_start_iteration, the gate's predictions, the collapse monitor
        self._step_stats: Dict[str, torch.Tensor] = {}  # filled during a step, logged with its losses

    # ------------------------------------------------------------------ networks
    #: the trained (and deployed) networks: name -> "plans" (the plans' U-Net) or "partner" (its
    #: heterogeneous partner, see nnssl_trainers.architectures); several form a softmax ensemble
    subnetwork_kinds: Dict[str, str] = {"net": "plans"}
    #: False for trainers without an unlabeled batch (no unlabeled loader; compute_losses gets None)
    uses_unlabeled: bool = True
    #: whether region labels (sigmoid outputs) are supported; the SSL losses need softmax classes
    supports_regions: bool = False

    @classmethod
    def build_subnetworks(cls, plans_manager, configuration_manager, num_input_channels: int,
                          num_output_channels: int, enable_deep_supervision: bool = True) -> Dict[str, nn.Module]:
        """Build ``subnetwork_kinds``, each freshly initialised (so equal kinds start differently)."""
        nets = {}
        for name, kind in cls.subnetwork_kinds.items():
            if kind == "plans":
                nets[name] = nnUNetTrainer.build_network_architecture(
                    plans_manager, configuration_manager, num_input_channels, num_output_channels,
                    enable_deep_supervision)
            elif kind == "partner":
                nets[name] = build_partner_network(configuration_manager, num_input_channels, num_output_channels,
                                                   enable_deep_supervision)
            else:
                raise ValueError(f"{cls.__name__}.subnetwork_kinds[{name!r}] = {kind!r}: use 'plans' or 'partner'")
        return nets

    @classmethod
    def build_network_architecture(cls, plans_manager, configuration_manager, num_input_channels: int,
                                   num_output_channels: int, enable_deep_supervision: bool = True) -> nn.Module:
        """What nnUNetv2_predict loads ``checkpoint['network_weights']`` into: one network or the ensemble."""
        nets = cls.build_subnetworks(plans_manager, configuration_manager, num_input_channels,
                                     num_output_channels, enable_deep_supervision)
        return next(iter(nets.values())) if len(nets) == 1 else SoftmaxEnsemble(nets)

    def build_auxiliary_networks(self) -> Dict[str, nn.Module]:
        """Networks that are checkpointed but not trained by the optimizer (e.g. an EMA teacher)."""
        return {}

    def initialize(self):
        if self.was_initialized:
            raise RuntimeError("initialize() called twice")
        if self.is_cascaded:
            raise NotImplementedError("nnssl trainers do not support cascaded configurations (3d_cascade_fullres)")
        if self.label_manager.has_regions and not self.supports_regions:
            raise NotImplementedError(f"{type(self).__name__}: the nnssl SSL trainers need softmax classes, but "
                                      f"dataset.json declares region labels {self.label_manager.foreground_regions}; "
                                      f"convert with mutually exclusive labels (e.g. nnssl_convert_brats "
                                      f"--labels whole_tumor) or train nnUNetTrainer")
        self._set_batch_size_and_oversample()
        self.num_input_channels = determine_num_input_channels(self.plans_manager, self.configuration_manager,
                                                               self.dataset_json)
        nets = self.build_subnetworks(self.plans_manager, self.configuration_manager, self.num_input_channels,
                                      self.label_manager.num_segmentation_heads, self.enable_deep_supervision)
        self.subnetworks = {name: self._wrap(net.to(self.device), trained=True) for name, net in nets.items()}
        self.network = next(iter(self.subnetworks.values()))
        self.auxiliary_networks = {n: self._wrap(m.to(self.device), trained=False)
                                   for n, m in self.build_auxiliary_networks().items()}
        if self.hparams["deploy"] != "ensemble" and self.hparams["deploy"] not in self.all_networks():
            raise ValueError(f"hyperparameter deploy={self.hparams['deploy']!r}: expected 'ensemble' or one of "
                             f"{list(self.all_networks())}")
        self.load_initial_weights()  # hparam init_weights (CheckpointMixin)
        self.check_labeled_share()  # hparam labeled_share (LabeledShareMixin)
        self.optimizer, self.lr_scheduler = self.configure_optimizers()
        self.loss = self._build_loss()
        self.dataset_class = infer_dataset_class(self.preprocessed_dataset_folder)
        self.unlabeled_batch_size = max(1, int(round(self.batch_size * self.hparams["unlabeled_batch_ratio"]))) \
            if self.uses_unlabeled else 0
        self.was_initialized = True
        self.logger.update_config({"hparas": dict(self.hparams, batch_size=self.batch_size,
                                                  unlabeled_batch_size=self.unlabeled_batch_size)})

    def _wrap(self, net: nn.Module, trained: bool) -> nn.Module:
        if self._do_i_compile():
            net = torch.compile(net)
        if self.is_ddp and trained:
            net = DDP(nn.SyncBatchNorm.convert_sync_batchnorm(net), device_ids=[self.local_rank])
        return net

    def configure_optimizers(self):
        """nnU-Net's SGD + PolyLR, with one parameter group per trained network."""
        nets = self.subnetworks or {"net": self.network}
        groups = [{"params": list(net.parameters()), "name": name} for name, net in nets.items()]
        optimizer = torch.optim.SGD(groups, self.initial_lr, weight_decay=self.weight_decay, momentum=0.99,
                                    nesterov=True)
        return optimizer, PolyLRScheduler(optimizer, self.initial_lr, self.num_epochs)

    def all_networks(self) -> Dict[str, nn.Module]:
        return {**self.subnetworks, **self.auxiliary_networks}

    def deploy_module(self) -> nn.Module:
        """The unwrapped module whose state dict becomes ``checkpoint['network_weights']``."""
        subs = {n: unwrap(m) for n, m in self.subnetworks.items()}
        choice = self.hparams["deploy"]
        if len(subs) > 1:
            weights = [1.0 if choice in ("ensemble", n) else 0.0 for n in subs]
            return SoftmaxEnsemble(subs, weights)
        if choice == "ensemble":
            return next(iter(subs.values()))
        return unwrap(self.all_networks()[choice])

    def set_deep_supervision_enabled(self, enabled: bool):
        for net in self.all_networks().values():
            if hasattr(unwrap(net), "decoder"):  # U-Nets; e.g. a quality predictor has none
                unwrap(net).decoder.deep_supervision = enabled

    @contextmanager
    def _deployed(self):
        """Temporarily make ``self.network`` the deployed module (validation, final predictions)."""
        trained = self.network
        self.network = self.deploy_module()
        try:
            yield
        finally:
            self.network = trained

    def on_validation_epoch_start(self):
        for net in self.all_networks().values():
            net.eval()

    def validation_step(self, batch: dict) -> dict:
        with self._deployed():
            return super().validation_step(batch)

    def perform_actual_validation(self, save_probabilities: bool = False):
        with self._deployed():
            super().perform_actual_validation(save_probabilities)

    # ------------------------------------------------------------------ data
    def get_dataloaders(self):
        dl_train, dl_val = super().get_dataloaders()
        if self.uses_unlabeled:
            self.dataloader_unlabeled = self._build_unlabeled_augmenter()
        return dl_train, dl_val

    def unlabeled_patch_size(self) -> List[int]:
        """Size of the unlabeled patches after augmentation (default: the plans' patch size)."""
        return list(self.configuration_manager.patch_size)

    def _build_unlabeled_augmenter(self):
        rotation, dummy_2d, initial_patch_size, mirror_axes = \
            self.configure_rotation_dummyDA_mirroring_and_inital_patch_size()
        patch_size = self.unlabeled_patch_size()
        if list(patch_size) != list(self.configuration_manager.patch_size):
            initial_patch_size = get_patch_size(patch_size[-len(patch_size):], rotation, rotation, rotation,
                                                (0.85, 1.25))  # as nnU-Net derives it for its own patch
            if dummy_2d:
                initial_patch_size[0] = patch_size[0]
        transforms = self.get_training_transforms(
            patch_size, rotation, None, mirror_axes, dummy_2d,
            use_mask_for_norm=self.configuration_manager.use_mask_for_norm, is_cascaded=False,
            foreground_labels=self.label_manager.foreground_labels,
            regions=self.label_manager.foreground_regions if self.label_manager.has_regions else None,
            ignore_label=self.label_manager.ignore_label)
        loader = make_unlabeled_loader(unlabeled_folder(self.preprocessed_dataset_folder), self.unlabeled_batch_size,
                                       initial_patch_size, patch_size, self.label_manager, transforms)
        n_proc = get_allowed_n_proc_DA()
        if n_proc == 0:
            return SingleThreadedAugmenter(loader, None)
        return NonDetMultiThreadedAugmenter(loader, None, num_processes=n_proc, num_cached=max(6, n_proc // 2),
                                            seeds=None, pin_memory=self.device.type == "cuda", wait_time=0.002)

    def next_unlabeled(self) -> torch.Tensor:
        """Next augmented unlabeled batch, (B_u, C_in, *patch), on the training device."""
        return next(self.dataloader_unlabeled)["data"].to(self.device, non_blocking=True)

    def on_train_end(self):
        super().on_train_end()
        if isinstance(self.dataloader_unlabeled, NonDetMultiThreadedAugmenter):
            self.dataloader_unlabeled._finish()
        self.dataloader_unlabeled = None

    # ------------------------------------------------------------------ training step
    def on_train_epoch_start(self):
        for net in self.subnetworks.values():
            net.train()
        super().on_train_epoch_start()

    def compute_losses(self, data: torch.Tensor, target, unlabeled: torch.Tensor) -> Dict[str, torch.Tensor]:
        """Return {'loss': total to minimise, other names: detached terms to log}. Implemented by subclasses.

        data: (B, C_in, *patch) labeled images; target: nnU-Net target (list per deep-supervision scale);
        unlabeled: (B_u, C_in, *patch).
        """
        raise NotImplementedError

    def after_optimizer_step(self) -> None:
        """Hook after every optimizer step (e.g. EMA teacher update)."""

    def forward_labeled_unlabeled(self, net: nn.Module, data: torch.Tensor, unlabeled: torch.Tensor):
        """One forward of ``net`` on cat(labeled, unlabeled) (one DDP forward per step and network).

        Returns (labeled output as the network gives it, unlabeled full-resolution logits (B_u, C, *patch)).
        Records ``frac_fg_<network name>``, the share of unlabeled voxels the network predicts as foreground
        (compare with ``frac_fg_labeled``: far below it for many epochs = background-collapsed pseudo-labels),
        and with several foreground classes ``frac_c<c>_<network name>`` per class (``prediction_shares``).
        """
        out = net(torch.cat((data, unlabeled), dim=0))
        n = data.shape[0]
        labeled, z_u = ([o[:n] for o in out], out[0][n:]) if isinstance(out, (list, tuple)) else (out[:n], out[n:])
        name = next((k for k, m in self.subnetworks.items() if m is net), "net")
        self._step_stats.update(prediction_shares(z_u, name))
        if self.ramp_start_iteration is None and name in self.subnetworks:
            self._labeled_predictions[name] = full_resolution(labeled).detach().argmax(1)
        return labeled, z_u

    def train_step(self, batch: dict) -> dict:
        data = batch["data"].to(self.device, non_blocking=True)
        target = batch["target"]
        target = [t.to(self.device, non_blocking=True) for t in target] if isinstance(target, list) \
            else target.to(self.device, non_blocking=True)
        unlabeled = self.next_unlabeled() if self.uses_unlabeled else None
        self._step_stats = label_shares(full_resolution(target), self.label_manager.num_segmentation_heads,
                                        self.label_manager.ignore_label) if self.uses_unlabeled else {}
        self.optimizer.zero_grad(set_to_none=True)
        with autocast(self.device.type, enabled=True) if self.device.type == "cuda" else dummy_context():
            losses = self.compute_losses(data, target, unlabeled)
        losses = {**self._step_stats, **losses}  # after compute_losses: it adds the networks' shares
        total = losses["loss"]
        if self.grad_scaler is not None:
            self.grad_scaler.scale(total).backward()
            self.grad_scaler.unscale_(self.optimizer)
            self._clip_gradients()
            self.grad_scaler.step(self.optimizer)
            self.grad_scaler.update()
        else:
            total.backward()
            self._clip_gradients()
            self.optimizer.step()
        self.iteration += 1
        self._update_ramp_start(full_resolution(target))
        self.after_optimizer_step()
        return {k: np.asarray(v.detach().float().cpu().numpy() if torch.is_tensor(v) else v)
                for k, v in losses.items()}

    def _clip_gradients(self) -> None:
        for net in self.subnetworks.values():
            torch.nn.utils.clip_grad_norm_(net.parameters(), self.hparams["grad_clip"])

    def on_train_epoch_end(self, train_outputs: List[dict]):
        super().on_train_epoch_end(train_outputs)
        outputs = collate_outputs(train_outputs)
        means = {}
        for key in sorted(k for k in outputs if k != "loss"):
            value = float(np.nanmean(np.asarray(outputs[key], dtype=float)))
            if self.is_ddp:
                gathered = [None] * dist.get_world_size()
                dist.all_gather_object(gathered, value)
                value = float(np.nanmean(gathered))
            self.logger.log(key, value, self.current_epoch)
            means[key] = value
        self.logger.log("ramp", self.ramp(), self.current_epoch)
        if means:  # the per-term means in the training log too, next to nnU-Net's train_loss
            self.print_to_log_file(SSL_TERMS_PREFIX + ", ".join(f"{k} {v:.4g}" for k, v in means.items())
                                   + f", ramp {self.ramp():.3g}")
            self.watch_collapse(means)

    def on_train_start(self):
        super().on_train_start()
        if self.local_rank == 0:
            path = os.path.join(self.output_folder, "nnssl_hparams.json")
            with open(path, "w", encoding="utf-8") as f:
                json.dump({"trainer": type(self).__name__, "hparams": self.hparams,
                           "batch_size": self.batch_size, "unlabeled_batch_size": self.unlabeled_batch_size},
                          f, indent=2)
            self.print_to_log_file(f"nnssl hyperparameters: {json.dumps(self.hparams, sort_keys=True)}")

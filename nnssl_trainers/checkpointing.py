"""Checkpoints that hold every network of an SSL trainer and resume it exactly.

The file keeps nnU-Net's keys, so ``nnUNetv2_predict`` and nnU-Net tooling read it as usual:
``network_weights`` holds the *deployed* module (one network or the ensemble, see
``nnSSLTrainerBase.deploy_module``). Everything else the SSL trainer needs to resume lives under
``checkpoint['nnssl']``: every network's weights (trained and auxiliary), the step counter, the
hyperparameters and any state a subclass adds through ``extra_checkpoint_state``.

Hyperparameter ``init_weights`` (a checkpoint path, default none) starts every network of a fresh run from
that checkpoint's ``network_weights``, every layer included. nnU-Net's ``-pretrained_weights`` instead
re-initialises the segmentation layers (made for another label set) and fills ``self.network`` only; a warm
start on the same labels, such as a self-training student from its teacher, wants them kept.
"""
from __future__ import annotations

import os
from typing import Any, Dict, Union

import torch

from nnssl_trainers.wrapping import unwrap


class CheckpointMixin:
    """save_checkpoint / load_checkpoint for trainers with several networks (mixed into nnSSLTrainerBase)."""

    hparam_defaults: Dict[str, Any] = {"init_weights": None}

    def load_initial_weights(self) -> None:
        """Load ``hparams['init_weights']`` (if set) into every network, all layers; called by ``initialize``.
        A resumed run (``--c``) then loads its own checkpoint over it."""
        source = self.hparams.get("init_weights")
        if not source:
            return
        if not os.path.isfile(source):
            raise FileNotFoundError(f"hyperparameter init_weights: checkpoint {source} not found")
        weights = torch.load(source, map_location=self.device, weights_only=False).get("network_weights")
        if weights is None:
            raise RuntimeError(f"{source}: no 'network_weights' entry, not an nnU-Net checkpoint (init_weights)")
        for name, net in self.all_networks().items():
            own = unwrap(net).state_dict()
            wrong = sorted(set(own) ^ set(weights)) or [k for k in own if own[k].shape != weights[k].shape]
            if wrong:
                raise RuntimeError(f"{source} (init_weights) does not fit network {name!r} of {type(self).__name__}: "
                                   f"{len(wrong)} key(s) missing, extra or of another shape, e.g. {wrong[:3]}")
            unwrap(net).load_state_dict(weights)
        self.print_to_log_file(f"init_weights: every network ({', '.join(self.all_networks())}) starts from "
                               f"{source}, all layers")

    def extra_checkpoint_state(self) -> Dict[str, Any]:
        """Extra state of a subclass to checkpoint (restored by ``load_extra_checkpoint_state``)."""
        return {}

    def load_extra_checkpoint_state(self, state: Dict[str, Any]) -> None:
        """Restore what ``extra_checkpoint_state`` returned."""

    def checkpoint_dict(self) -> Dict[str, Any]:
        return {
            "network_weights": self.deploy_module().state_dict(),
            "optimizer_state": self.optimizer.state_dict(),
            "grad_scaler_state": self.grad_scaler.state_dict() if self.grad_scaler is not None else None,
            "logging": self.logger.get_checkpoint(),
            "_best_ema": self._best_ema,
            "current_epoch": self.current_epoch + 1,
            "init_args": self.my_init_kwargs,
            "trainer_name": self.__class__.__name__,
            "inference_allowed_mirroring_axes": self.inference_allowed_mirroring_axes,
            "nnssl": {
                "networks": {n: unwrap(m).state_dict() for n, m in self.all_networks().items()},
                "iteration": self.iteration,
                "ramp_start_iteration": self.ramp_start_iteration,
                "hparams": dict(self.hparams),
                "extra": self.extra_checkpoint_state(),
            },
        }

    def save_checkpoint(self, filename: str) -> None:
        if self.local_rank != 0:
            return
        if self.disable_checkpointing:
            self.print_to_log_file("No checkpoint written, checkpointing is disabled")
            return
        tmp = f"{filename}.tmp"
        torch.save(self.checkpoint_dict(), tmp)
        os.replace(tmp, filename)  # a crash while writing never leaves a truncated checkpoint

    def load_checkpoint(self, filename_or_checkpoint: Union[dict, str]) -> None:
        if not self.was_initialized:
            self.initialize()
        if isinstance(filename_or_checkpoint, dict):
            checkpoint, source = filename_or_checkpoint, "checkpoint dict"
        else:
            source = str(filename_or_checkpoint)
            checkpoint = torch.load(source, map_location=self.device, weights_only=False)
        state = checkpoint.get("nnssl")
        if state is None:
            raise RuntimeError(f"{source} was not written by an nnssl trainer (no 'nnssl' entry): it cannot resume "
                               f"{type(self).__name__}. Use it as pretrained weights instead (-pretrained_weights).")
        networks = self.all_networks()
        missing = set(networks) - set(state["networks"])
        if missing:
            raise RuntimeError(f"{source} lacks the weights of network(s) {sorted(missing)} of {type(self).__name__}")
        for name, net in networks.items():
            unwrap(net).load_state_dict(state["networks"][name])
        changed = {k: (v, self.hparams.get(k)) for k, v in state["hparams"].items() if self.hparams.get(k) != v}
        if changed:
            self.print_to_log_file(f"WARNING: hyperparameters differ from the checkpoint's (saved, now): {changed}. "
                                   f"Continuing with the current ones.")
        self.iteration = int(state["iteration"])
        self.ramp_start_iteration = state.get("ramp_start_iteration", 0)  # checkpoints before ramp_start: 0
        self.load_extra_checkpoint_state(state.get("extra", {}))
        self.my_init_kwargs = checkpoint["init_args"]
        self.current_epoch = checkpoint["current_epoch"]
        self.logger.load_checkpoint(checkpoint["logging"])
        self._best_ema = checkpoint["_best_ema"]
        self.inference_allowed_mirroring_axes = checkpoint.get("inference_allowed_mirroring_axes",
                                                               self.inference_allowed_mirroring_axes)
        self.optimizer.load_state_dict(checkpoint["optimizer_state"])
        if self.grad_scaler is not None and checkpoint.get("grad_scaler_state") is not None:
            self.grad_scaler.load_state_dict(checkpoint["grad_scaler_state"])

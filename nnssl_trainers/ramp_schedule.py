"""RampScheduleMixin: the unsupervised weight ramp(t) of the SSL trainers, its start and its restart.

ramp(t) = exp(-5 (1 - t/T_r)^2) (``sigmoid_rampup``) with T_r = rampup_fraction x all iterations and
t the optimizer steps since ``ramp_start_iteration``; ramp = 0 while that is None. The clock starts at
the first step ('first_step', the papers) or once every trained network segments every labeled
foreground class ('foreground', the gate); with collapse_guard 'restart', a collapse warning of
``CollapseMonitor`` stops it again until the gate reopens. Its hyperparameters are declared here and
merged into every trainer's along the MRO (``nnssl.hparams``): the baselines keep ``PAPERS_SCHEDULE``,
methods A and B default to ``GUARDED_SCHEDULE``, and quality guidance (``QualityGuidanceMixin``) turns the guard
on, so the baselines' _QG variants run ``GUARD_ONLY``.
"""
from __future__ import annotations

from types import MappingProxyType
from typing import Any, Dict, Mapping

import torch
from torch import distributed as dist

from nnssl.monitoring import RAMP_RESTART_EVENT, RAMP_START_EVENT, CollapseMonitor, class_dice, foreground_learned
from nnssl.schedules import sigmoid_rampup

#: the papers' schedule: ramp(t) from the first step, never stopped (the mixin's default, kept by the baselines)
PAPERS_SCHEDULE: Mapping[str, str] = MappingProxyType({"ramp_start": "first_step", "collapse_guard": "off"})
#: gate + guard: the default of nnssl's own methods A and B, whose papers' schedule lost a class on few labeled
#: cases (docs/benchmarks.md: method A lost a class at start-up in every 1000-step CPU run with it; no guarded run did)
GUARDED_SCHEDULE: Mapping[str, str] = MappingProxyType({"ramp_start": "foreground", "collapse_guard": "restart"})
#: the two halves of gate + guard alone (ablations, ``nnssl_trainers.schedule_variants``); GUARD_ONLY is also the
#: default of the baselines' _QG variants
GATE_ONLY: Mapping[str, str] = MappingProxyType({"ramp_start": "foreground", "collapse_guard": "off"})
GUARD_ONLY: Mapping[str, str] = MappingProxyType({"ramp_start": "first_step", "collapse_guard": "restart"})


class RampScheduleMixin:
    """Needs the nnssl base trainer's ``hparams``, ``iteration``, ``subnetworks``, ``label_manager``,
    ``num_epochs``, ``num_iterations_per_epoch`` and nnU-Net's ``print_to_log_file``, ``is_ddp``, ``device``."""

    hparam_defaults: Dict[str, Any] = {
        "rampup_fraction": 0.4,  # T_r of ramp(t) as a share of all training iterations
        # when t starts: 'first_step' (the papers), or 'foreground': ramp = 0 until every trained network
        # reaches a hard Dice >= ramp_start_dice on every foreground class of a step's labeled patches
        "ramp_start": PAPERS_SCHEDULE["ramp_start"],
        "ramp_start_dice": 0.2,
        # on a collapse warning (CollapseMonitor): 'off' = only warn; 'restart' = also set ramp = 0 again until the
        # foreground gate above reopens (both ramp_start values), from where ramp(t) starts over
        "collapse_guard": PAPERS_SCHEDULE["collapse_guard"],
    }
    #: hyperparameters with a fixed set of values, checked when they are resolved
    hparam_choices: Dict[str, tuple] = {"ramp_start": ("first_step", "foreground"),
                                        "collapse_guard": ("off", "restart")}

    def init_ramp_schedule(self) -> None:
        """Set the clock per hyperparameter ramp_start and a fresh collapse monitor (call once hparams exist)."""
        #: step at which ramp(t)'s clock starts (None: not yet, see hparam ramp_start)
        self.ramp_start_iteration = 0 if self.hparams["ramp_start"] == "first_step" else None
        self._labeled_predictions: Dict[str, torch.Tensor] = {}  # argmax per trained network, until the ramp starts
        self.collapse_monitor = CollapseMonitor()  # warns in the log when unlabeled predictions lose a class

    @property
    def total_iterations(self) -> int:
        return self.num_epochs * self.num_iterations_per_epoch

    def ramp(self) -> float:
        """ramp(t) with t = optimizer steps since ``ramp_start_iteration`` (0 before it) and
        T_r = rampup_fraction * total iterations."""
        if self.ramp_start_iteration is None:
            return 0.0
        return sigmoid_rampup(self.iteration - self.ramp_start_iteration,
                              self.hparams["rampup_fraction"] * self.total_iterations)

    def _gate_condition(self) -> str:
        return f"every network segments every labeled foreground class (Dice >= {self.hparams['ramp_start_dice']})"

    def _update_ramp_start(self, target: torch.Tensor) -> None:
        """While the clock is stopped: start it after the first step in which every trained network segments every
        foreground class of the labeled patches (``foreground_learned``), i.e. after the supervised background-only
        phase, whose all-background pseudo-labels would hold the networks there. All DDP ranks start together.
        target: (B, 1, *patch) full-resolution labels of the step."""
        if self.ramp_start_iteration is not None:
            return
        dices = [class_dice(pred, target, self.label_manager.num_segmentation_heads, self.label_manager.ignore_label)
                 for pred in self._labeled_predictions.values()]
        self._labeled_predictions = {}
        learned = len(dices) == len(self.subnetworks) and foreground_learned(dices, self.hparams["ramp_start_dice"])
        if self.is_ddp:
            flag = torch.tensor(float(learned), device=self.device)
            dist.all_reduce(flag, op=dist.ReduceOp.MAX)
            learned = bool(flag.item())
        if learned:
            self.ramp_start_iteration = self.iteration
            self.print_to_log_file(f"step {self.iteration}: {self._gate_condition()}: {RAMP_START_EVENT}")

    def restart_ramp(self) -> None:
        """collapse_guard 'restart': ramp(t) = 0 from now until ``_update_ramp_start`` finds every trained network
        segmenting every labeled foreground class again; t then counts from that step, so the unsupervised weight
        rises from ramp(0) over T_r as at the first start. The supervised terms alone act meanwhile."""
        self.ramp_start_iteration = None
        self.print_to_log_file(f"step {self.iteration}: collapse guard: {RAMP_RESTART_EVENT}; ramp = 0 until "
                               f"{self._gate_condition()} again")

    def watch_collapse(self, means: Mapping[str, float]) -> None:
        """Feed an epoch's term means to the collapse monitor; log its warning and, with collapse_guard 'restart',
        restart the ramp. The means are averaged over DDP ranks, so every rank decides alike."""
        warning = self.collapse_monitor.update(means, self.ramp())
        if warning:
            self.print_to_log_file(warning)
            if self.hparams["collapse_guard"] == "restart":
                self.restart_ramp()

"""Collapse-guarded variants (``collapse_guard='restart'``) of the trainers that lost a class in the
1000-step CPU benchmarks (docs/benchmarks.md).

When ``nnssl.monitoring.CollapseMonitor`` warns (a network predicts almost none of a labeled class
on the unlabeled patches for 3 epochs while ramp(t) >= 0.1), ramp(t) is set to 0 until every trained
network again reaches hard Dice >= ``ramp_start_dice`` on every labeled foreground class, and then
rises from ramp(0) as at the first start. Nothing else differs from the parent trainer.
"""
from types import MappingProxyType
from typing import Any, Mapping

from nnssl_trainers.dual import nnSSLDualTrainer
from nnssl_trainers.fg_ramp import nnSSLDualTrainer_FgRamp, nnSSLFixedDynamicTrainer_FgRamp, \
    nnSSLFixedDynamicTrainer_QG_FgRamp
from nnssl_trainers.qg import nnSSLDualTrainer_QG, nnSSLMeanTeacherTrainer_QG

#: read-only: the classes below share this one mapping as their hparam_defaults
COLLAPSE_GUARD: Mapping[str, Any] = MappingProxyType({"collapse_guard": "restart"})


class nnSSLDualTrainer_Guard(nnSSLDualTrainer):
    """Method A with the papers' ramp start and the collapse guard."""

    hparam_defaults: Mapping[str, Any] = COLLAPSE_GUARD


class nnSSLMeanTeacherTrainer_QG_Guard(nnSSLMeanTeacherTrainer_QG):
    """Mean Teacher with quality guidance and the collapse guard."""

    hparam_defaults: Mapping[str, Any] = COLLAPSE_GUARD


class nnSSLDualTrainer_QG_Guard(nnSSLDualTrainer_QG):
    """Method A with quality guidance, the papers' ramp start and the collapse guard."""

    hparam_defaults: Mapping[str, Any] = COLLAPSE_GUARD


class nnSSLFixedDynamicTrainer_QG_FgRamp_Guard(nnSSLFixedDynamicTrainer_QG_FgRamp):
    """Method B (identical pair) with quality guidance, the foreground-gated ramp start and the collapse guard."""

    hparam_defaults: Mapping[str, Any] = COLLAPSE_GUARD


class nnSSLDualTrainer_FgRamp_Guard(nnSSLDualTrainer_FgRamp):
    """Method A with the foreground-gated ramp start and the collapse guard."""

    hparam_defaults: Mapping[str, Any] = COLLAPSE_GUARD


class nnSSLFixedDynamicTrainer_FgRamp_Guard(nnSSLFixedDynamicTrainer_FgRamp):
    """Method B (identical pair) with the foreground-gated ramp start and the collapse guard."""

    hparam_defaults: Mapping[str, Any] = COLLAPSE_GUARD

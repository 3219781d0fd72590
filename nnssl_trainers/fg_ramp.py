"""Foreground-gated ramp-up variants (``ramp_start='foreground'``) of the trainers whose papers'
schedule collapsed to background in the CPU benchmarks (docs/benchmarks.md).

ramp(t) stays 0 until every trained network reaches hard Dice >= ``ramp_start_dice`` on every
labeled foreground class; t counts from that step. Nothing else differs from the parent trainer.
"""
from types import MappingProxyType
from typing import Any, Mapping

from nnssl_trainers.dual import nnSSLDualTrainer
from nnssl_trainers.fixed_dynamic import nnSSLFixedDynamicTrainer, nnSSLFixedDynamicTrainerHetero
from nnssl_trainers.qg import nnSSLDualTrainer_QG, nnSSLFixedDynamicTrainer_QG

#: read-only: the five classes below share this one mapping as their hparam_defaults
FOREGROUND_GATE: Mapping[str, Any] = MappingProxyType({"ramp_start": "foreground"})


class nnSSLDualTrainer_FgRamp(nnSSLDualTrainer):
    """Method A with the foreground-gated ramp start."""

    hparam_defaults: Mapping[str, Any] = FOREGROUND_GATE


class nnSSLDualTrainer_QG_FgRamp(nnSSLDualTrainer_QG):
    """Method A with quality guidance and the foreground-gated ramp start."""

    hparam_defaults: Mapping[str, Any] = FOREGROUND_GATE


class nnSSLFixedDynamicTrainer_FgRamp(nnSSLFixedDynamicTrainer):
    """Method B (identical pair) with the foreground-gated ramp start."""

    hparam_defaults: Mapping[str, Any] = FOREGROUND_GATE


class nnSSLFixedDynamicTrainerHetero_FgRamp(nnSSLFixedDynamicTrainerHetero):
    """Method B (heterogeneous pair, as in the paper) with the foreground-gated ramp start."""

    hparam_defaults: Mapping[str, Any] = FOREGROUND_GATE


class nnSSLFixedDynamicTrainer_QG_FgRamp(nnSSLFixedDynamicTrainer_QG):
    """Method B (identical pair) with quality guidance and the foreground-gated ramp start."""

    hparam_defaults: Mapping[str, Any] = FOREGROUND_GATE

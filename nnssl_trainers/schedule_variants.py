"""Ramp-schedule variants of the SSL trainers: the same trainer with other ``ramp_start`` / ``collapse_guard``.

Methods A and B default to gate + guard (``GUARDED_SCHEDULE``), the baselines to the papers' schedule
(``PAPERS_SCHEDULE``) and their _QG variants to the papers' ramp start with the guard (``GUARD_ONLY``); see
``nnssl_trainers.ramp_schedule``. Each class below fixes both keys, so its schedule
does not depend on its parent's default, and nothing else differs from the parent. nnU-Net names a results
folder after the trainer class, hence one named class per variant (each shares one read-only schedule of
``ramp_schedule`` as its hparam_defaults):

- ``_PaperRamp``: ramp(t) from the first step, no guard (the papers; method A lost a class at start-up on 3
  labeled Hippocampus cases, docs/benchmarks.md);
- ``_NoGuard``: the foreground gate alone;
- ``_NoGate``: the papers' start with the collapse guard.
"""
from typing import Any, Mapping

from nnssl_trainers.dual import nnSSLDualTrainer, nnSSLDualTrainerPerClass
from nnssl_trainers.fixed_dynamic import nnSSLFixedDynamicTrainer, nnSSLFixedDynamicTrainerHetero
from nnssl_trainers.qg import nnSSLCPSTrainer_QG, nnSSLDualTrainer_QG, nnSSLFixedDynamicTrainer_QG, \
    nnSSLMeanTeacherTrainer_QG
from nnssl_trainers.ramp_schedule import GATE_ONLY, GUARD_ONLY, PAPERS_SCHEDULE


class nnSSLDualTrainer_PaperRamp(nnSSLDualTrainer):
    """Method A with the paper's schedule."""

    hparam_defaults: Mapping[str, Any] = PAPERS_SCHEDULE


class nnSSLDualTrainerPerClass_PaperRamp(nnSSLDualTrainerPerClass):
    """Method A with per-class reliability and the paper's schedule."""

    hparam_defaults: Mapping[str, Any] = PAPERS_SCHEDULE


class nnSSLDualTrainer_QG_PaperRamp(nnSSLDualTrainer_QG):
    """Method A with quality guidance and the papers' schedule."""

    hparam_defaults: Mapping[str, Any] = PAPERS_SCHEDULE


class nnSSLFixedDynamicTrainer_PaperRamp(nnSSLFixedDynamicTrainer):
    """Method B (identical pair) with the paper's schedule."""

    hparam_defaults: Mapping[str, Any] = PAPERS_SCHEDULE


class nnSSLFixedDynamicTrainerHetero_PaperRamp(nnSSLFixedDynamicTrainerHetero):
    """Method B (heterogeneous pair, as in the paper) with the paper's schedule."""

    hparam_defaults: Mapping[str, Any] = PAPERS_SCHEDULE


class nnSSLFixedDynamicTrainer_QG_PaperRamp(nnSSLFixedDynamicTrainer_QG):
    """Method B (identical pair) with quality guidance and the papers' schedule."""

    hparam_defaults: Mapping[str, Any] = PAPERS_SCHEDULE


class nnSSLMeanTeacherTrainer_QG_PaperRamp(nnSSLMeanTeacherTrainer_QG):
    """Mean Teacher with quality guidance and the papers' schedule (no collapse guard)."""

    hparam_defaults: Mapping[str, Any] = PAPERS_SCHEDULE


class nnSSLCPSTrainer_QG_PaperRamp(nnSSLCPSTrainer_QG):
    """CPS with quality guidance and the papers' schedule (no collapse guard)."""

    hparam_defaults: Mapping[str, Any] = PAPERS_SCHEDULE


class nnSSLDualTrainer_NoGuard(nnSSLDualTrainer):
    """Method A with the foreground gate and no collapse guard."""

    hparam_defaults: Mapping[str, Any] = GATE_ONLY


class nnSSLDualTrainer_QG_NoGuard(nnSSLDualTrainer_QG):
    """Method A with quality guidance, the foreground gate and no collapse guard."""

    hparam_defaults: Mapping[str, Any] = GATE_ONLY


class nnSSLFixedDynamicTrainer_NoGuard(nnSSLFixedDynamicTrainer):
    """Method B (identical pair) with the foreground gate and no collapse guard."""

    hparam_defaults: Mapping[str, Any] = GATE_ONLY


class nnSSLFixedDynamicTrainerHetero_NoGuard(nnSSLFixedDynamicTrainerHetero):
    """Method B (heterogeneous pair) with the foreground gate and no collapse guard."""

    hparam_defaults: Mapping[str, Any] = GATE_ONLY


class nnSSLFixedDynamicTrainer_QG_NoGuard(nnSSLFixedDynamicTrainer_QG):
    """Method B (identical pair) with quality guidance, the foreground gate and no collapse guard."""

    hparam_defaults: Mapping[str, Any] = GATE_ONLY


class nnSSLDualTrainer_NoGate(nnSSLDualTrainer):
    """Method A with the paper's ramp start and the collapse guard."""

    hparam_defaults: Mapping[str, Any] = GUARD_ONLY


class nnSSLDualTrainer_QG_NoGate(nnSSLDualTrainer_QG):
    """Method A with quality guidance, the paper's ramp start and the collapse guard."""

    hparam_defaults: Mapping[str, Any] = GUARD_ONLY


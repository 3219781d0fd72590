"""Re-exports nnssl's trainers for nnU-Net's ``nnUNet_extTrainer`` lookup.

nnU-Net imports every module of the folder named in ``nnUNet_extTrainer`` under a top-level name
and looks the trainer class up by name; this folder holds only this module, so the lookup imports
nothing else and finds the very class objects of the ``nnssl_trainers`` package.

``FORMER_NAMES`` keeps trainer names of earlier versions findable (not in ``__all__``): a checkpoint
stores its trainer's name, and ``nnUNetv2_predict`` looks that name up, so models trained under a
former name still predict. Each points at the class with that trainer's schedule today.
"""
from typing import Dict

import nnssl_trainers
from nnssl_trainers import *  # noqa: F401,F403
from nnssl_trainers import __all__  # noqa: F401

#: former name -> current name (renamed on 2026-12-06, when methods A and B got gate + guard by default and
#: quality guidance the guard)
FORMER_NAMES: Dict[str, str] = {
    "nnSSLDualTrainer_FgRamp": "nnSSLDualTrainer_NoGuard",
    "nnSSLDualTrainer_QG_FgRamp": "nnSSLDualTrainer_QG_NoGuard",
    "nnSSLFixedDynamicTrainer_FgRamp": "nnSSLFixedDynamicTrainer_NoGuard",
    "nnSSLFixedDynamicTrainerHetero_FgRamp": "nnSSLFixedDynamicTrainerHetero_NoGuard",
    "nnSSLFixedDynamicTrainer_QG_FgRamp": "nnSSLFixedDynamicTrainer_QG_NoGuard",
    "nnSSLDualTrainer_Guard": "nnSSLDualTrainer_NoGate",
    "nnSSLDualTrainer_QG_Guard": "nnSSLDualTrainer_QG_NoGate",
    "nnSSLDualTrainer_FgRamp_Guard": "nnSSLDualTrainer",
    "nnSSLFixedDynamicTrainer_FgRamp_Guard": "nnSSLFixedDynamicTrainer",
    "nnSSLFixedDynamicTrainer_QG_FgRamp_Guard": "nnSSLFixedDynamicTrainer_QG",
    "nnSSLMeanTeacherTrainer_QG_Guard": "nnSSLMeanTeacherTrainer_QG",
    # 2026-12-07: L_cr towards the label became method A's default, so the ablation that set it is method A
    "nnSSLDualTrainer_LabelCR": "nnSSLDualTrainer",
}
globals().update({former: getattr(nnssl_trainers, current) for former, current in FORMER_NAMES.items()})

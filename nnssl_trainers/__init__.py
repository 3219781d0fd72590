"""nnU-Net trainers of nnssl. Point ``nnUNet_extTrainer`` at ``nnssl_ext_trainer_path``'s output to use them."""
from nnssl_trainers.base import nnSSLTrainerBase
from nnssl_trainers.cps import nnSSLCPSTrainer
from nnssl_trainers.dual import nnSSLDualTrainer, nnSSLDualTrainerPerClass
from nnssl_trainers.fixed_dynamic import nnSSLFixedDynamicTrainer, nnSSLFixedDynamicTrainerHetero
from nnssl_trainers.mean_teacher import nnSSLMeanTeacherTrainer
from nnssl_trainers.supervised import nnSSLSupervisedTrainer
from nnssl_trainers.qg import nnSSLCPSTrainer_QG, nnSSLDualTrainer_QG, nnSSLFixedDynamicTrainer_QG, \
    nnSSLMeanTeacherTrainer_QG
from nnssl_trainers.schedule_variants import nnSSLDualTrainer_PaperRamp, nnSSLDualTrainerPerClass_PaperRamp, \
    nnSSLDualTrainer_QG_PaperRamp, nnSSLFixedDynamicTrainer_PaperRamp, nnSSLFixedDynamicTrainerHetero_PaperRamp, \
    nnSSLFixedDynamicTrainer_QG_PaperRamp, nnSSLMeanTeacherTrainer_QG_PaperRamp, nnSSLCPSTrainer_QG_PaperRamp, \
    nnSSLDualTrainer_NoGuard, nnSSLDualTrainer_QG_NoGuard, \
    nnSSLFixedDynamicTrainer_NoGuard, nnSSLFixedDynamicTrainerHetero_NoGuard, nnSSLFixedDynamicTrainer_QG_NoGuard, \
    nnSSLDualTrainer_NoGate, nnSSLDualTrainer_QG_NoGate
from nnssl_trainers.component_ablations import nnSSLDualTrainer_NoCR, nnSSLDualTrainer_NoCCE, \
    nnSSLDualTrainer_NoUE, nnSSLDualTrainer_NoPGL, nnSSLDualTrainer_LabeledOnly

__all__ = ["nnSSLTrainerBase", "nnSSLSupervisedTrainer", "nnSSLCPSTrainer", "nnSSLMeanTeacherTrainer",
           "nnSSLFixedDynamicTrainer", "nnSSLDualTrainer", "nnSSLDualTrainerPerClass",
           "nnSSLFixedDynamicTrainerHetero", "nnSSLMeanTeacherTrainer_QG", "nnSSLCPSTrainer_QG",
           "nnSSLDualTrainer_QG", "nnSSLFixedDynamicTrainer_QG", "nnSSLDualTrainer_PaperRamp",
           "nnSSLDualTrainerPerClass_PaperRamp", "nnSSLDualTrainer_QG_PaperRamp",
           "nnSSLFixedDynamicTrainer_PaperRamp", "nnSSLFixedDynamicTrainerHetero_PaperRamp",
           "nnSSLFixedDynamicTrainer_QG_PaperRamp", "nnSSLMeanTeacherTrainer_QG_PaperRamp",
           "nnSSLCPSTrainer_QG_PaperRamp", "nnSSLDualTrainer_NoGuard", "nnSSLDualTrainer_QG_NoGuard",
           "nnSSLFixedDynamicTrainer_NoGuard", "nnSSLFixedDynamicTrainerHetero_NoGuard",
           "nnSSLFixedDynamicTrainer_QG_NoGuard", "nnSSLDualTrainer_NoGate", "nnSSLDualTrainer_QG_NoGate",
           "nnSSLDualTrainer_NoCR", "nnSSLDualTrainer_NoCCE", "nnSSLDualTrainer_NoUE", "nnSSLDualTrainer_NoPGL",
           "nnSSLDualTrainer_LabeledOnly"]

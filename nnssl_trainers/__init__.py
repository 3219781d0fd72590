"""nnU-Net trainers of nnssl. Point ``nnUNet_extTrainer`` at ``nnssl_ext_trainer_path``'s output to use them."""
from nnssl_trainers.base import nnSSLTrainerBase
from nnssl_trainers.cps import nnSSLCPSTrainer
from nnssl_trainers.dual import nnSSLDualTrainer, nnSSLDualTrainerPerClass
from nnssl_trainers.fixed_dynamic import nnSSLFixedDynamicTrainer, nnSSLFixedDynamicTrainerHetero
from nnssl_trainers.mean_teacher import nnSSLMeanTeacherTrainer
from nnssl_trainers.supervised import nnSSLSupervisedTrainer
from nnssl_trainers.qg import nnSSLCPSTrainer_QG, nnSSLDualTrainer_QG, nnSSLFixedDynamicTrainer_QG, \
    nnSSLMeanTeacherTrainer_QG
from nnssl_trainers.fg_ramp import nnSSLDualTrainer_FgRamp, nnSSLDualTrainer_QG_FgRamp, \
    nnSSLFixedDynamicTrainer_FgRamp, nnSSLFixedDynamicTrainerHetero_FgRamp, nnSSLFixedDynamicTrainer_QG_FgRamp
from nnssl_trainers.collapse_guard import nnSSLDualTrainer_Guard, nnSSLMeanTeacherTrainer_QG_Guard, \
    nnSSLDualTrainer_QG_Guard, nnSSLFixedDynamicTrainer_QG_FgRamp_Guard, nnSSLDualTrainer_FgRamp_Guard, \
    nnSSLFixedDynamicTrainer_FgRamp_Guard

__all__ = ["nnSSLTrainerBase", "nnSSLSupervisedTrainer", "nnSSLCPSTrainer", "nnSSLMeanTeacherTrainer", "nnSSLFixedDynamicTrainer", "nnSSLDualTrainer",
           "nnSSLDualTrainerPerClass", "nnSSLFixedDynamicTrainerHetero", "nnSSLMeanTeacherTrainer_QG", "nnSSLCPSTrainer_QG",
           "nnSSLDualTrainer_QG", "nnSSLFixedDynamicTrainer_QG", "nnSSLDualTrainer_FgRamp",
           "nnSSLDualTrainer_QG_FgRamp", "nnSSLFixedDynamicTrainer_FgRamp", "nnSSLFixedDynamicTrainerHetero_FgRamp", "nnSSLFixedDynamicTrainer_QG_FgRamp",
           "nnSSLDualTrainer_Guard", "nnSSLMeanTeacherTrainer_QG_Guard", "nnSSLDualTrainer_QG_Guard",
           "nnSSLFixedDynamicTrainer_QG_FgRamp_Guard", "nnSSLDualTrainer_FgRamp_Guard", "nnSSLFixedDynamicTrainer_FgRamp_Guard"]

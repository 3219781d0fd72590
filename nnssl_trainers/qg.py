"""The quality-guided (_QG) variant of every SSL trainer: the mixin in front, nothing else."""
from nnssl_trainers.cps import nnSSLCPSTrainer
from nnssl_trainers.dual import nnSSLDualTrainer
from nnssl_trainers.fixed_dynamic import nnSSLFixedDynamicTrainer
from nnssl_trainers.mean_teacher import nnSSLMeanTeacherTrainer
from nnssl_trainers.quality_guidance import QualityGuidanceMixin


class nnSSLMeanTeacherTrainer_QG(QualityGuidanceMixin, nnSSLMeanTeacherTrainer):
    """Mean Teacher with quality-aware regularisation and pseudo-label quality weighting."""


class nnSSLCPSTrainer_QG(QualityGuidanceMixin, nnSSLCPSTrainer):
    """CPS with quality-aware regularisation and pseudo-label quality weighting."""


class nnSSLDualTrainer_QG(QualityGuidanceMixin, nnSSLDualTrainer):
    """Method A with quality-aware regularisation and pseudo-label quality weighting."""


class nnSSLFixedDynamicTrainer_QG(QualityGuidanceMixin, nnSSLFixedDynamicTrainer):
    """Method B with quality-aware regularisation and pseudo-label quality weighting."""

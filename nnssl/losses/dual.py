"""Loss terms of method A (dual network, uncertainty-guided; METHODS.md section A).

One import point for nnSSLDualTrainer; the terms live in modules split by concept:

- ``nnssl.losses.dual_consistency``: confident_foreground, disagreement_mask,
  consistency_regularisation (Eq 4-6), entropy_filtered_supervision (Eq 9-11)
- ``nnssl.losses.pseudo_label``: cross_pseudo_supervision (Eq 7-8, threshold = tau_cps)
- ``nnssl.losses.uncertainty``: uncertainty_rectified_loss, bidirectional_uncertainty_loss (Eq 13-15)
- ``nnssl.losses.prototype``: reliable_mask, normalise_features, class_prototypes,
  subsample_per_class, select_prototype_voxels, prototype_loss(_from_selection) (Eq 16-20)
- ``nnssl.losses.entropy``: entropy (on probabilities), batch_percentile

Total (per iteration): L = sum_k L_sup^k + ramp(t) * (L_cps + L_efs + L_ue^A + L_ue^B)
                           + lambda_c(t) * (L_pgl^A + L_pgl^B).
"""
from nnssl.losses.dual_consistency import (
    DISAGREEMENT_MODES,
    confident_foreground,
    consistency_regularisation,
    disagreement_mask,
    entropy_filtered_supervision,
)
from nnssl.losses.entropy import batch_percentile, entropy
from nnssl.losses.prototype import (
    PrototypeSelection,
    class_prototypes,
    normalise_features,
    prototype_loss,
    prototype_loss_from_selection,
    reliable_mask,
    select_prototype_voxels,
    subsample_per_class,
)
from nnssl.losses.pseudo_label import cross_pseudo_supervision
from nnssl.losses.uncertainty import bidirectional_uncertainty_loss, uncertainty_rectified_loss

__all__ = [
    "DISAGREEMENT_MODES",
    "batch_percentile",
    "bidirectional_uncertainty_loss",
    "class_prototypes",
    "confident_foreground",
    "consistency_regularisation",
    "cross_pseudo_supervision",
    "disagreement_mask",
    "entropy",
    "entropy_filtered_supervision",
    "normalise_features",
    "prototype_loss",
    "prototype_loss_from_selection",
    "PrototypeSelection",
    "select_prototype_voxels",
    "reliable_mask",
    "subsample_per_class",
    "uncertainty_rectified_loss",
]

"""Loss terms as small pure functions on tensors (no nnU-Net needed)."""
from nnssl.losses.consistency import softmax_mse
from nnssl.losses.pseudo_label import cross_pseudo_supervision, hard_pseudo_label, masked_cross_entropy

__all__ = ["softmax_mse", "cross_pseudo_supervision", "hard_pseudo_label", "masked_cross_entropy"]

"""Quality guidance (METHODS.md C): Dice targets, synthetic mask corruptions, quality predictor."""
from nnssl.quality.corruptions import (
    CORRUPTIONS, DEFAULT_RATES, affine_warp, boundary_noise, class_swap, dilation, elastic_warp, empty_mask,
    erosion, full_mask, holes, one_hot, random_corruption, soften, spurious_blobs,
)
from nnssl.quality.dice import mean_foreground_dice, soft_dice_per_class
from nnssl.quality.network import QualityPredictor

__all__ = [
    "CORRUPTIONS", "DEFAULT_RATES", "affine_warp", "boundary_noise", "class_swap", "dilation", "elastic_warp",
    "empty_mask", "erosion", "full_mask", "holes", "one_hot", "random_corruption", "soften", "spurious_blobs",
    "mean_foreground_dice", "soft_dice_per_class", "QualityPredictor",
]

"""Fixed and dynamic pseudo-labels (METHODS.md B) as small pure tensor functions (2D and 3D)."""
from nnssl.pseudo_labels.cutmix import box_mask, box_sides, cutmix, default_partner, random_box
from nnssl.pseudo_labels.margin import ignore_outside, interior_mask, margin_voxels
from nnssl.pseudo_labels.shifted_crops import (
    com_fusion,
    dynamic_label,
    fixed_crop,
    map_to_fixed,
    region_size,
    shift_axes,
    shift_bounds,
    shift_offsets,
    shifted_crops,
    temporary_label,
)

__all__ = [
    "box_mask", "box_sides", "cutmix", "default_partner", "random_box",
    "com_fusion", "dynamic_label", "fixed_crop", "map_to_fixed", "region_size", "shift_axes", "shift_bounds",
    "shift_offsets", "shifted_crops", "temporary_label", "ignore_outside", "interior_mask", "margin_voxels",
]

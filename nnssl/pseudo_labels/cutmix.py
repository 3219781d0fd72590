"""CutMix with one random axis-aligned box shared by images and their pseudo-labels (METHODS.md B, CUT).

Shapes: images (B, C, *spatial), labels (B, *spatial) or (B, C, *spatial); *spatial = (H, W) or
(D, H, W). A box is a tuple of one ``slice`` per spatial axis (applied to the trailing axes).
"""
from __future__ import annotations

import math
from typing import List, Optional, Sequence, Tuple

import torch

Box = Tuple[slice, ...]


def box_sides(spatial_shape: Sequence[int], volume_ratio: float = 2 / 3) -> Tuple[int, ...]:
    """Per-axis box side: side_d = clamp(floor(t_d + 0.5), 1, size_d), t_d = size_d * r ** (1 / n).

    n = number of spatial axes, r = volume_ratio in (0, 1]. Rounding is half-up (not Python's
    banker's rounding). Hence |side_d - t_d| <= 0.5 whenever t_d >= 0.5, and < 1 always (the clamp
    to >= 1 only acts when t_d < 0.5). Since prod_d t_d / size_d = r, the achieved ratio
    prod_d side_d / size_d lies in [prod_d (t_d - 0.5) / size_d, prod_d (t_d + 0.5) / size_d] (for t_d >= 0.5).
    """
    if len(spatial_shape) == 0 or any(int(s) < 1 for s in spatial_shape):
        raise ValueError(f"spatial_shape must be non-empty with sizes >= 1, got {tuple(spatial_shape)}")
    if not 0.0 < float(volume_ratio) <= 1.0:
        raise ValueError(f"volume_ratio must be in (0, 1], got {volume_ratio}")
    f = float(volume_ratio) ** (1.0 / len(spatial_shape))
    return tuple(min(max(int(math.floor(int(s) * f + 0.5)), 1), int(s)) for s in spatial_shape)


def random_box(spatial_shape: Sequence[int], volume_ratio: float = 2 / 3,
               generator: Optional[torch.Generator] = None) -> Box:
    """One random box with the sides of ``box_sides`` (volume ratio ~ volume_ratio, see there).

    The start on axis d is uniform over the integers 0 .. size_d - side_d (box fully inside),
    drawn with ``torch.randint(..., generator=generator)`` (a CPU generator; same seed, same box).
    Returns ``tuple(slice(start_d, start_d + side_d))``.
    """
    sides = box_sides(spatial_shape, volume_ratio)
    box = []
    for size, side in zip(spatial_shape, sides):
        start = int(torch.randint(0, int(size) - side + 1, (1,), generator=generator).item())
        box.append(slice(start, start + side))
    return tuple(box)


def box_mask(spatial_shape: Sequence[int], box: Box, device: Optional[torch.device] = None) -> torch.Tensor:
    """Bool mask (*spatial) that is True inside ``box``."""
    _check_box(box, spatial_shape)
    m = torch.zeros(tuple(int(s) for s in spatial_shape), dtype=torch.bool, device=device)
    m[tuple(box)] = True
    return m


def _check_box(box: Box, spatial_shape: Sequence[int]) -> None:
    if len(box) != len(spatial_shape):
        raise ValueError(f"box has {len(box)} slices, spatial shape {tuple(spatial_shape)} needs {len(spatial_shape)}")
    for sl, size in zip(box, spatial_shape):
        if not isinstance(sl, slice) or sl.step not in (None, 1):
            raise ValueError(f"box entries must be slices with step 1, got {sl!r}")
        start, stop = sl.start or 0, size if sl.stop is None else sl.stop
        if not 0 <= start <= stop <= size:
            raise ValueError(f"box slice {sl!r} does not fit an axis of size {size}")


def default_partner(batch_size: int, device: Optional[torch.device] = None) -> torch.Tensor:
    """Roll by one: partner[i] = (i + 1) % B (B = 1 -> [0], i.e. the sample mixes with itself)."""
    return (torch.arange(batch_size, device=device) + 1) % batch_size


def cutmix(images: torch.Tensor, labels: Sequence[torch.Tensor] = (), box: Optional[Box] = None,
           generator: Optional[torch.Generator] = None, volume_ratio: float = 2 / 3,
           partner: Optional[torch.Tensor] = None
           ) -> Tuple[torch.Tensor, List[torch.Tensor], Box, torch.Tensor]:
    """Mix each sample with a partner of the same batch inside one box; labels get the same mix.

    mixed[i][..., box] = x[partner[i]][..., box], mixed[i] = x[i] outside the box; the same box and
    partners are applied to every tensor in ``labels``. Inputs are not modified (clones; gradients
    flow through both the own and the partner's voxels).

    Args:
        images: (B, C, *spatial).
        labels: tensors (B, *spatial) or (B, C, *spatial) (hard or soft pseudo-labels).
        box: reuse a box (tuple of slices, one per spatial axis); None -> ``random_box(spatial,
            volume_ratio, generator)``.
        partner: (B,) int64 indices in [0, B) (normally a permutation); None -> ``default_partner``:
            sample i takes the box from sample (i + 1) % B. With B = 1 the sample mixes with itself,
            so the output equals the input.
    Returns:
        (mixed_images, [mixed labels in input order], box, partner).
    """
    if images.ndim < 3:
        raise ValueError(f"images must be (B, C, *spatial), got {tuple(images.shape)}")
    b, spatial = images.shape[0], tuple(images.shape[2:])
    if box is None:
        box = random_box(spatial, volume_ratio, generator)
    box = tuple(box)
    _check_box(box, spatial)
    if partner is None:
        partner = default_partner(b, images.device)
    partner = torch.as_tensor(partner, dtype=torch.long, device=images.device)
    if partner.shape != (b,) or (b > 0 and (partner.min() < 0 or partner.max() >= b)):
        raise ValueError(f"partner must be (B,) = ({b},) indices in [0, {b}), got {partner.tolist()}")
    idx = (Ellipsis, *box)

    def mix(t: torch.Tensor) -> torch.Tensor:
        out = t.clone()
        out[idx] = t[partner.to(t.device)][idx]
        return out

    mixed_labels = []
    for lab in labels:
        if lab.shape[0] != b or tuple(lab.shape[-len(spatial):]) != spatial or lab.ndim not in (
                len(spatial) + 1, len(spatial) + 2):
            raise ValueError(f"label shape {tuple(lab.shape)} does not match images {tuple(images.shape)}")
        mixed_labels.append(mix(lab))
    return mix(images), mixed_labels, box, partner

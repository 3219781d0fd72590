"""Fixed and shifted crops of one loaded region, and fusion of their predictions (METHODS.md B).

Coordinates. Per unlabeled case the trainer loads a REGION of spatial size ``patch + 2 * shift``
(``shift`` = 0 on unshifted axes). The fixed crop x_f starts at ``shift`` in region coordinates;
the crop shifted by ``offset`` (|offset_d| <= shift_d) starts at ``shift + offset``. A region voxel r
is voxel ``r - shift`` of x_f and voxel ``r - shift - offset`` of the shifted crop, so fixed-crop voxel
x corresponds to shifted-crop voxel ``x - offset``. Everything here is a pure index shift (exact).

Shapes: B batch, C channels/classes, ``*patch`` = (H, W) in 2D or (D, H, W) in 3D (any number of
spatial axes works). Spatial axis indices (``axes``) count spatial axes only: 0 = first spatial axis.
"""
from __future__ import annotations

from typing import Callable, List, Sequence, Tuple, Union

import torch

Offset = Tuple[int, ...]


def _check_sizes(patch_size: Sequence[int], shift: Sequence[int], ndim: int) -> None:
    if len(patch_size) != ndim or len(shift) != ndim:
        raise ValueError(f"patch_size {tuple(patch_size)} and shift {tuple(shift)} need one entry per "
                         f"spatial axis ({ndim})")
    if any(int(p) < 1 for p in patch_size):
        raise ValueError(f"patch_size must be >= 1 on every axis, got {tuple(patch_size)}")
    if any(int(s) < 0 for s in shift):
        raise ValueError(f"shift must be >= 0 on every axis, got {tuple(shift)}")


def region_size(patch_size: Sequence[int], shift: Sequence[int]) -> Tuple[int, ...]:
    """Spatial size of the region to load: ``patch_d + 2 * shift_d`` per axis."""
    _check_sizes(patch_size, shift, len(patch_size))
    return tuple(int(p) + 2 * int(s) for p, s in zip(patch_size, shift))


def _normalized_axes(axes: Sequence[int], ndim: int) -> List[int]:
    """``axes`` as indices in [0, ndim) (negative ones count from the end); refuses out-of-range or repeated axes."""
    norm = []
    for a in axes:
        if not -ndim <= int(a) < ndim:
            raise ValueError(f"axis {a} out of range for {ndim} spatial axes")
        norm.append(int(a) % ndim)
    if len(set(norm)) != len(norm):
        raise ValueError(f"duplicate axes {tuple(axes)}")
    return norm


def shift_axes(ndim: int, axes: Sequence[int] = ()) -> List[int]:
    """The spatial axes method B shifts along: ``axes`` normalised, or when empty the two last (in-plane in 3D,
    both in 2D)."""
    return _normalized_axes(axes or list(range(ndim))[-2:], ndim)


def shift_offsets(shift: Sequence[int], axes: Sequence[int]) -> List[Offset]:
    """The 2 * len(axes) offsets of the shifted crops c_1..c_K.

    ``shift`` has one entry per spatial axis; for each axis a in ``axes`` (in the given order) the
    offsets ``+shift[a]`` then ``-shift[a]`` along a (0 on every other axis). Example, 3D, axes (1, 2):
    [(0, +s1, 0), (0, -s1, 0), (0, 0, +s2), (0, 0, -s2)]. Negative indices count from the end.
    """
    ndim = len(shift)
    if any(int(s) < 0 for s in shift):
        raise ValueError(f"shift must be >= 0 on every axis, got {tuple(shift)}")
    norm = _normalized_axes(axes, ndim)
    out: List[Offset] = []
    for a in norm:
        for sign in (1, -1):
            off = [0] * ndim
            off[a] = sign * int(shift[a])
            out.append(tuple(off))
    return out


def _crop(region: torch.Tensor, patch_size: Sequence[int], shift: Sequence[int],
          offset: Sequence[int]) -> torch.Tensor:
    sl = [slice(None), slice(None)]
    for p, s, o in zip(patch_size, shift, offset):
        if abs(int(o)) > int(s):
            raise ValueError(f"offset {tuple(offset)} exceeds shift {tuple(shift)}: crop leaves the region")
        start = int(s) + int(o)
        sl.append(slice(start, start + int(p)))
    return region[tuple(sl)]


def _check_region(region: torch.Tensor, patch_size: Sequence[int], shift: Sequence[int]) -> None:
    if region.ndim < 3:
        raise ValueError(f"region must be (B, C, *spatial), got shape {tuple(region.shape)}")
    _check_sizes(patch_size, shift, region.ndim - 2)
    expected = region_size(patch_size, shift)
    if tuple(region.shape[2:]) != expected:
        raise ValueError(f"region spatial size {tuple(region.shape[2:])} != patch + 2*shift = {expected} "
                         f"(patch {tuple(patch_size)}, shift {tuple(shift)})")


def fixed_crop(region: torch.Tensor, patch_size: Sequence[int], shift: Sequence[int]) -> torch.Tensor:
    """x_f = region[..., s_d : s_d + p_d] per axis: the centre patch (B, C, *patch) of the region.

    ``region`` is (B, C, *(patch + 2 * shift)); a ValueError names any size mismatch. Returns a view.
    """
    _check_region(region, patch_size, shift)
    return _crop(region, patch_size, shift, [0] * len(patch_size))


def shifted_crops(region: torch.Tensor, patch_size: Sequence[int], shift: Sequence[int],
                  offsets: Sequence[Sequence[int]], stack: bool = True
                  ) -> Union[torch.Tensor, List[torch.Tensor]]:
    """c_k = region[..., s_d + o_kd : s_d + o_kd + p_d] for each offset o_k (offset 0 = fixed crop).

    Args:
        region: (B, C, *(patch + 2 * shift)).
        offsets: K offsets, one int per spatial axis, |o_kd| <= s_d (e.g. from ``shift_offsets``).
        stack: True -> one tensor (K * B, C, *patch), offset-major: rows k*B .. k*B + B - 1 are c_k
            (``out.chunk(K)`` or ``out.split(B)`` recovers them); False -> list of K (B, C, *patch).
    """
    _check_region(region, patch_size, shift)
    if len(offsets) == 0:
        raise ValueError("need at least one offset")
    crops = []
    for o in offsets:
        if len(o) != len(patch_size):
            raise ValueError(f"offset {tuple(o)} needs one entry per spatial axis ({len(patch_size)})")
        crops.append(_crop(region, patch_size, shift, o))
    return torch.cat(crops, dim=0) if stack else crops


def map_to_fixed(pred: torch.Tensor, offset: Sequence[int]) -> Tuple[torch.Tensor, torch.Tensor]:
    """Place a prediction on the crop shifted by ``offset`` into fixed-crop coordinates.

    out[..., x] = pred[..., x - offset] where 0 <= x_d - o_d < p_d on every axis, else 0;
    coverage[:, 0, x] = (that condition). Exact: pure index shift, no interpolation.

    Args:
        pred: (B, C, *patch) (any dtype; softmax probabilities in the method).
        offset: one int per spatial axis.
    Returns:
        mapped (B, C, *patch) with pred's dtype/device, coverage (B, 1, *patch) bool.
    """
    if pred.ndim < 3 or len(offset) != pred.ndim - 2:
        raise ValueError(f"pred must be (B, C, *patch) with one offset per spatial axis, got shape "
                         f"{tuple(pred.shape)} and offset {tuple(offset)}")
    out = torch.zeros_like(pred)
    cov = torch.zeros((pred.shape[0], 1, *pred.shape[2:]), dtype=torch.bool, device=pred.device)
    dst, src = [slice(None), slice(None)], [slice(None), slice(None)]
    for p, o in zip(pred.shape[2:], offset):
        o = int(o)
        if abs(o) >= p:  # no overlap at all
            return out, cov
        dst.append(slice(max(o, 0), p + min(o, 0)))
        src.append(slice(max(-o, 0), p - max(o, 0)))
    out[tuple(dst)] = pred[tuple(src)]
    cov[tuple(dst)] = True
    return out, cov


def temporary_label(preds_shifted: Union[torch.Tensor, Sequence[torch.Tensor]],
                    offsets: Sequence[Sequence[int]]) -> Tuple[torch.Tensor, torch.Tensor]:
    """Temporary pseudo-label yt: average of the mapped shifted-crop softmaxes.

    yt(x) = sum_k m_k(x) * P_k(x) / n(x) with P_k, m_k = map_to_fixed(preds_shifted[k], offsets[k]),
    n(x) = sum_k m_k(x); yt(x) = 0 where n(x) = 0. Voxels count covering crops individually.

    Args:
        preds_shifted: K tensors (B, C, *patch) of probabilities, or one (K * B, C, *patch) tensor
            in the offset-major order of ``shifted_crops``.
        offsets: the K offsets, same order.
    Returns:
        probs (B, C, *patch) (float; input float dtype kept), coverage (B, 1, *patch) bool = n > 0.
    """
    if isinstance(preds_shifted, torch.Tensor):
        if len(offsets) == 0 or preds_shifted.shape[0] % len(offsets):
            raise ValueError(f"batch {preds_shifted.shape[0]} is not a multiple of K = {len(offsets)}")
        preds_shifted = list(preds_shifted.chunk(len(offsets), dim=0))
    if len(preds_shifted) != len(offsets) or len(offsets) == 0:
        raise ValueError(f"need one prediction per offset, got {len(preds_shifted)} and {len(offsets)}")
    total, count = None, None
    for p, o in zip(preds_shifted, offsets):
        if not p.is_floating_point():
            p = p.float()
        mapped, cov = map_to_fixed(p, o)
        if total is not None and mapped.shape != total.shape:
            raise ValueError(f"predictions differ in shape: {tuple(mapped.shape)} vs {tuple(total.shape)}")
        total = mapped if total is None else total + mapped
        count = cov.to(mapped.dtype) if count is None else count + cov.to(mapped.dtype)
    return total / count.clamp_min(1), count > 0


def com_fusion(fixed: torch.Tensor, temporary_probs: torch.Tensor, coverage: torch.Tensor) -> torch.Tensor:
    """COM: dynamic pseudo-label yd = argmax_c yt where covered, yf elsewhere.

    Args:
        fixed: yf as hard labels (B, *patch) (any integer/float dtype, cast to int64) or as
            per-class scores (B, C, *patch) (probabilities or logits; argmax over C taken here).
        temporary_probs: yt (B, C, *patch) from ``temporary_label``.
        coverage: (B, 1, *patch) or (B, *patch) bool, True where some shifted crop covers the voxel.
    Returns:
        yd (B, *patch) int64. Ties in argmax go to the lowest class index (torch.argmax).
    """
    nd = temporary_probs.ndim
    if nd < 3:
        raise ValueError(f"temporary_probs must be (B, C, *patch), got {tuple(temporary_probs.shape)}")
    spatial = (temporary_probs.shape[0], *temporary_probs.shape[2:])
    if fixed.ndim == nd:
        yf = fixed.argmax(dim=1)
    elif fixed.ndim == nd - 1:
        yf = fixed.long()
    else:
        raise ValueError(f"fixed must be (B, *patch) labels or (B, C, *patch) scores, got {tuple(fixed.shape)}")
    if coverage.ndim == nd:
        coverage = coverage[:, 0]
    if tuple(yf.shape) != spatial or tuple(coverage.shape) != spatial:
        raise ValueError(f"shape mismatch: fixed {tuple(fixed.shape)}, temporary {tuple(temporary_probs.shape)}, "
                         f"coverage {tuple(coverage.shape)}")
    return torch.where(coverage.bool(), temporary_probs.argmax(dim=1), yf)


def shift_bounds(patch_size: Sequence[int], axes: Sequence[int], min_fraction: float,
                 max_fraction: float) -> Tuple[List[int], List[int]]:
    """Lowest and highest shift per spatial axis: on ``axes`` hi_d = max(1, round(p_d * max_fraction)) and
    lo_d = min(hi_d, max(1, round(p_d * min_fraction))); 0 and 0 on every other axis."""
    lo, hi = [0] * len(patch_size), [0] * len(patch_size)
    for a in axes:
        hi[a] = max(1, int(round(patch_size[a] * max_fraction)))
        lo[a] = min(hi[a], max(1, int(round(patch_size[a] * min_fraction))))
    return lo, hi


def dynamic_label(predict: Callable[[torch.Tensor], torch.Tensor], region: torch.Tensor, fixed_probs: torch.Tensor,
                  patch_size: Sequence[int], shift: Sequence[int], axes: Sequence[int]) -> torch.Tensor:
    """yd = COM(softmax of ``predict`` on the shifted crops along ``axes``, averaged back into x_f; argmax of
    ``fixed_probs``) (B, *patch) int64. ``predict`` maps the stacked crops (K * B, C, *patch) to logits."""
    offsets = shift_offsets(shift, axes)
    logits = predict(shifted_crops(region, patch_size, shift, offsets))
    probs, coverage = temporary_label(torch.softmax(logits.float(), 1), offsets)
    return com_fusion(fixed_probs, probs, coverage)

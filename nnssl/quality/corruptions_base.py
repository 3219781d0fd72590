"""Shared contract and geometry helpers of the mask corruptions (METHODS.md C).

Every corruption is a pure function ``f(label, strength, rng, num_classes) -> label'`` on an integer
label map of shape (*spatial) (2D or 3D, values in 0 .. C-1). The ``corruption`` decorator enforces
the contract: inputs are validated, strength 0 returns an exact copy, the output has the input's
shape and dtype, and all randomness comes from the passed ``np.random.Generator``.
"""
from __future__ import annotations

import functools
import math
from typing import Callable, Sequence, Tuple

import numpy as np
from scipy import ndimage

Corruption = Callable[[np.ndarray, float, np.random.Generator, int], np.ndarray]


def check_label(label: np.ndarray, num_classes: int) -> None:
    """Raise ValueError unless ``label`` is an integer 2D/3D array with values in 0 .. num_classes-1."""
    if not isinstance(label, np.ndarray) or not np.issubdtype(label.dtype, np.integer):
        raise ValueError(f"label must be an integer numpy array, got {type(label).__name__} "
                         f"{getattr(label, 'dtype', '')}")
    if label.ndim not in (2, 3):
        raise ValueError(f"label must be 2D or 3D (*spatial), got shape {label.shape}")
    if int(num_classes) < 2:
        raise ValueError(f"num_classes must be >= 2 (background + foreground), got {num_classes}")
    if label.size and (int(label.min()) < 0 or int(label.max()) >= num_classes):
        raise ValueError(f"label values must lie in 0 .. {num_classes - 1}, got "
                         f"[{int(label.min())}, {int(label.max())}]")


def corruption(fn: Callable[..., np.ndarray]) -> Corruption:
    """Decorator: validate, strength 0 -> ``label.copy()``, output cast to the input dtype and checked.

    ``fn`` is only called for strength in (0, 1] and may return any integer array of the same shape.
    """
    @functools.wraps(fn)
    def wrapped(label: np.ndarray, strength: float, rng: np.random.Generator, num_classes: int) -> np.ndarray:
        check_label(label, num_classes)
        strength = float(strength)
        if not 0.0 <= strength <= 1.0:
            raise ValueError(f"strength must be in [0, 1], got {strength}")
        if strength == 0.0:
            return label.copy()
        out = np.asarray(fn(label, strength, rng, int(num_classes)))
        if out.shape != label.shape:
            raise AssertionError(f"{fn.__name__} changed the shape {label.shape} -> {out.shape}")
        return out.astype(label.dtype, copy=False)
    return wrapped


def distance_inside(mask: np.ndarray) -> np.ndarray:
    """Euclidean distance (voxels) of each True voxel to the nearest False voxel; the outside of the
    array counts as False (so a full mask is still finite). 0 outside the mask."""
    padded = np.pad(mask.astype(bool), 1, constant_values=False)
    return ndimage.distance_transform_edt(padded)[tuple(slice(1, -1) for _ in range(mask.ndim))]


def distance_outside(mask: np.ndarray) -> np.ndarray:
    """Euclidean distance (voxels) of each False voxel to the nearest True voxel (0 inside the mask,
    +inf everywhere if the mask is empty)."""
    mask = mask.astype(bool)
    if not mask.any():
        return np.full(mask.shape, np.inf)
    return ndimage.distance_transform_edt(~mask)


def inradius(mask: np.ndarray) -> float:
    """Largest inscribed radius r_in = max_v distance_inside(mask)_v (0 for an empty mask)."""
    return float(distance_inside(mask).max()) if mask.any() else 0.0


def equivalent_radius(label: np.ndarray) -> float:
    """Radius of the disc (2D) / ball (3D) with the foreground volume V = #{label > 0}, at least 1.

    2D: sqrt(V / pi); 3D: (3 V / (4 pi)) ** (1/3).
    """
    v = float(np.count_nonzero(label))
    r = math.sqrt(v / math.pi) if label.ndim == 2 else (3.0 * v / (4.0 * math.pi)) ** (1.0 / 3.0)
    return max(r, 1.0)


def ellipsoid_mask(shape: Sequence[int], center: Sequence[float], radii: Sequence[float]) -> np.ndarray:
    """Bool mask (*shape), True where sum_d ((v_d - center_d) / radii_d) ** 2 <= 1 (axis-aligned)."""
    out = np.zeros(tuple(shape), dtype=bool)
    lo = [max(int(math.floor(c - r)), 0) for c, r in zip(center, radii)]
    hi = [min(int(math.ceil(c + r)) + 1, s) for c, r, s in zip(center, radii, shape)]
    if any(h <= l for l, h in zip(lo, hi)):
        return out
    grids = np.ogrid[tuple(slice(l, h) for l, h in zip(lo, hi))]
    q = sum(((g - c) / max(r, 1e-6)) ** 2 for g, c, r in zip(grids, center, radii))
    out[tuple(slice(l, h) for l, h in zip(lo, hi))] = q <= 1.0
    return out


def random_blob(shape: Sequence[int], center: Sequence[float], radius: float,
                rng: np.random.Generator) -> np.ndarray:
    """Ellipsoid at ``center`` whose per-axis radii are radius * U(0.6, 1.4) (at least 0.5 voxel)."""
    radii = [max(radius * f, 0.5) for f in rng.uniform(0.6, 1.4, size=len(shape))]
    return ellipsoid_mask(shape, center, radii)


def random_voxel(mask: np.ndarray, rng: np.random.Generator) -> Tuple[int, ...]:
    """Coordinates of one uniformly drawn True voxel of ``mask`` (which must not be empty)."""
    idx = np.flatnonzero(mask)
    return tuple(int(i) for i in np.unravel_index(int(idx[rng.integers(idx.size)]), mask.shape))


def bounding_box(mask: np.ndarray, margin: float = 0.0) -> Tuple[slice, ...]:
    """Slices of the smallest box holding all True voxels, grown by ceil(margin) per side and clipped
    to the array (the whole array if the mask is empty)."""
    if not mask.any():
        return tuple(slice(0, s) for s in mask.shape)
    m = int(math.ceil(margin))
    out = []
    for ax in range(mask.ndim):
        hit = np.flatnonzero(mask.any(axis=tuple(a for a in range(mask.ndim) if a != ax)))
        out.append(slice(max(int(hit[0]) - m, 0), min(int(hit[-1]) + 1 + m, mask.shape[ax])))
    return tuple(out)


def foreground_classes(label: np.ndarray) -> np.ndarray:
    """Sorted foreground classes (> 0) present in ``label``."""
    present = np.unique(label)
    return present[present > 0]

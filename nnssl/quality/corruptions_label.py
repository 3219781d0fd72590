"""Label-level mask corruptions: class swap, empty and full masks, and softening into soft masks.

``class_swap``, ``empty_mask``, ``full_mask`` follow ``corruptions_base.corruption`` (integer map in,
same shape/dtype out, strength 0 = identity). ``soften`` turns a label map into a soft mask
(C, *spatial) float32 that sums to 1 over classes.
"""
from __future__ import annotations

import numpy as np
from scipy import ndimage

from nnssl.quality.corruptions_base import check_label, corruption, foreground_classes

SOFTEN_MAX_SIGMA = 2.0  # Gaussian sigma (voxels) of ``soften`` at strength 1


@corruption
def class_swap(label: np.ndarray, strength: float, rng: np.random.Generator, num_classes: int) -> np.ndarray:
    """Swap two random foreground classes a <-> b inside a random half-space (C > 2 only).

    The half-space {v : n . v <= q} has a random unit normal n and q = the ``strength``-quantile of
    n . v over the voxels of a or b, so ~strength of their voxels swap (strength 1: all of them).
    Identity for binary tasks (C <= 2) and when neither a nor b occurs.
    """
    if num_classes <= 2:
        return label.copy()
    present = foreground_classes(label)
    if present.size >= 2:
        a, b = rng.choice(present, size=2, replace=False)
    else:
        a, b = rng.choice(np.arange(1, num_classes), size=2, replace=False)
    ab = (label == a) | (label == b)
    if not ab.any():
        return label.copy()
    normal = rng.normal(size=label.ndim)
    normal /= max(float(np.linalg.norm(normal)), 1e-12)
    proj = np.tensordot(normal, np.indices(label.shape, dtype=np.float64), axes=1)
    region = ab & (proj <= np.quantile(proj[ab], strength))
    out = label.copy()
    out[region & (label == a)] = b
    out[region & (label == b)] = a
    return out


@corruption
def empty_mask(label: np.ndarray, strength: float, rng: np.random.Generator, num_classes: int) -> np.ndarray:
    """All background (strength only matters as 0 = identity)."""
    return np.zeros_like(label)


@corruption
def full_mask(label: np.ndarray, strength: float, rng: np.random.Generator, num_classes: int) -> np.ndarray:
    """All foreground: each background voxel takes the class of its nearest foreground voxel; without
    any foreground the whole volume gets one random class in 1 .. C-1 (strength: 0 = identity only)."""
    fg = label > 0
    if not fg.any():
        return np.full_like(label, int(rng.integers(1, num_classes)))
    idx = ndimage.distance_transform_edt(~fg, return_distances=False, return_indices=True)
    return label[tuple(idx)]


def one_hot(label: np.ndarray, num_classes: int) -> np.ndarray:
    """float32 (C, *spatial) with out[c] = (label == c)."""
    check_label(label, num_classes)
    return np.moveaxis(np.eye(num_classes, dtype=np.float32)[label], -1, 0).copy()


def soften(label: np.ndarray, strength: float, rng: np.random.Generator, num_classes: int) -> np.ndarray:
    """Soft mask: one-hot blurred by a Gaussian, renormalised over classes.

    m_c = G_sigma * onehot(label)_c / sum_k G_sigma * onehot(label)_k, sigma = strength *
    SOFTEN_MAX_SIGMA voxels (edge-replicated borders). Strength 0 gives the exact one-hot.
    ``rng`` is unused (kept for the common corruption signature).

    Returns:
        float32 (C, *spatial), entries in [0, 1], sum over C = 1.
    """
    strength = float(strength)
    if not 0.0 <= strength <= 1.0:
        raise ValueError(f"strength must be in [0, 1], got {strength}")
    soft = one_hot(label, num_classes)
    sigma = strength * SOFTEN_MAX_SIGMA
    if sigma == 0.0:
        return soft
    soft = np.stack([ndimage.gaussian_filter(ch, sigma, mode="nearest") for ch in soft]).clip(0.0, None)
    return (soft / np.maximum(soft.sum(axis=0, keepdims=True), 1e-12)).astype(np.float32)

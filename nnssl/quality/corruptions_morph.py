"""Morphological mask corruptions: erosion, dilation, holes, spurious blobs, boundary noise.

All follow the contract of ``corruptions_base.corruption``: ``f(label (*spatial) int, strength in
[0, 1], rng, num_classes) -> label' (*spatial)`` of the same dtype, strength 0 = exact identity.
Sizes scale with the structure (inscribed radius r_in of a class, equivalent radius r_eq of the
whole foreground), so a given strength damages small and large structures alike.
"""
from __future__ import annotations

import numpy as np
from scipy import ndimage

from nnssl.quality.corruptions_base import (
    bounding_box, corruption, distance_inside, distance_outside, equivalent_radius, foreground_classes,
    inradius, random_blob, random_voxel,
)

HOLE_RADIUS = 0.7    # hole radius = strength * HOLE_RADIUS * r_eq
BLOB_RADIUS = 0.5    # spurious blob radius = strength * BLOB_RADIUS * r_eq
MAX_BLOBS = 3        # holes / spurious blobs per call: uniform in 1 .. MAX_BLOBS


@corruption
def erosion(label: np.ndarray, strength: float, rng: np.random.Generator, num_classes: int) -> np.ndarray:
    """Per foreground class c: voxels of c within r_c = strength * r_in(c) of its border become 0.

    A voxel v of class c is removed iff distance_inside(label == c)_v <= r_c (the volume border and
    other classes count as outside). Strength 1 removes every class completely. ``rng`` is unused.
    """
    out = label.copy()
    for c in foreground_classes(label):
        box = bounding_box(label == c)  # tight box: everything outside it is "not c", distances exact
        mask = label[box] == c
        d = distance_inside(mask)
        out[box][mask & (d <= strength * d.max())] = 0
    return out


@corruption
def dilation(label: np.ndarray, strength: float, rng: np.random.Generator, num_classes: int) -> np.ndarray:
    """Per foreground class c: voxels within r_c = strength * max(r_in(c), 1) outside c become c.

    Distances are measured on the input; the classes are applied in a random order, so where two
    dilations compete the later one wins. Any other class (background or foreground) is overgrown.
    """
    out = label.copy()
    for c in rng.permutation(foreground_classes(label)):
        radius = strength * max(inradius(label[bounding_box(label == c)] == c), 1.0)
        box = bounding_box(label == c, radius + 1)  # holds every voxel within radius of c
        mask = label[box] == c
        out[box][(distance_outside(mask) <= radius) & ~mask] = c
    return out


@corruption
def holes(label: np.ndarray, strength: float, rng: np.random.Generator, num_classes: int) -> np.ndarray:
    """Remove 1 .. MAX_BLOBS random ellipsoids from the foreground (their foreground voxels -> 0).

    Each blob is centred at a uniformly drawn foreground voxel, radius strength * HOLE_RADIUS * r_eq
    (per-axis factor U(0.6, 1.4)). Identity if there is no foreground.
    """
    fg = label > 0
    if not fg.any():
        return label.copy()
    out = label.copy()
    radius = strength * HOLE_RADIUS * equivalent_radius(label)
    for _ in range(int(rng.integers(1, MAX_BLOBS + 1))):
        blob = random_blob(label.shape, random_voxel(fg, rng), radius, rng)
        out[blob & fg] = 0
    return out


@corruption
def spurious_blobs(label: np.ndarray, strength: float, rng: np.random.Generator,
                   num_classes: int) -> np.ndarray:
    """Paint 1 .. MAX_BLOBS random ellipsoids, each with a random foreground class 1 .. C-1.

    Radius strength * BLOB_RADIUS * r_eq (per-axis factor U(0.6, 1.4)). Centres: with probability 1/2
    a uniform voxel of the foreground bounding box grown by 2 r_eq (false positives next to the
    structure), otherwise a uniform voxel of the volume. Blobs overwrite whatever they cover.
    """
    out = label.copy()
    r_eq = equivalent_radius(label)
    fg = label > 0
    near = bounding_box(fg, 2.0 * r_eq) if fg.any() else None
    for _ in range(int(rng.integers(1, MAX_BLOBS + 1))):
        box = near if (near is not None and rng.random() < 0.5) else tuple(slice(0, s) for s in label.shape)
        centre = [int(rng.integers(b.start, b.stop)) for b in box]
        blob = random_blob(label.shape, centre, strength * BLOB_RADIUS * r_eq, rng)
        out[blob] = int(rng.integers(1, num_classes))
    return out


@corruption
def boundary_noise(label: np.ndarray, strength: float, rng: np.random.Generator,
                   num_classes: int) -> np.ndarray:
    """Relabel random voxels near class boundaries with the label of a random nearby voxel.

    Band = voxels whose (2w+1)^n neighbourhood holds more than one label, w = 1 + round(2 strength).
    Each band voxel is picked with probability strength and takes the label at v + o, o uniform in
    {-w .. w}^n (clipped to the volume), so only labels already present nearby appear.
    """
    w = 1 + int(round(2.0 * strength))
    size = 2 * w + 1
    band = ndimage.maximum_filter(label, size=size) != ndimage.minimum_filter(label, size=size)
    picked = band & (rng.random(label.shape) < strength)
    idx = np.nonzero(picked)
    if idx[0].size == 0:
        return label.copy()
    src = tuple(np.clip(i + rng.integers(-w, w + 1, size=i.size), 0, s - 1) for i, s in zip(idx, label.shape))
    out = label.copy()
    out[idx] = label[src]
    return out

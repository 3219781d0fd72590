"""Geometric mask corruptions: random affine and elastic warps (nearest-neighbour resampling).

Contract of ``corruptions_base.corruption``: ``f(label (*spatial) int, strength in [0, 1], rng,
num_classes) -> label'`` with the same shape and dtype, strength 0 = exact identity. Nearest-
neighbour sampling only copies existing labels (or 0 outside the volume), so the label set is kept.
"""
from __future__ import annotations

import math

import numpy as np
from scipy import ndimage

from nnssl.quality.corruptions_base import corruption, equivalent_radius

MAX_ROTATION = math.pi / 6   # rad, per rotation axis, at strength 1
MAX_LOG_SCALE = math.log(1.3)  # isotropic scale factor in [1/1.3, 1.3] at strength 1
MAX_SHIFT = 0.5              # translation per axis in units of r_eq at strength 1
ELASTIC_AMPLITUDE = 0.5      # std of the displacement at strength 1, units of the control spacing


def rotation_matrix(angles: np.ndarray) -> np.ndarray:
    """2D: one angle -> [[cos, -sin], [sin, cos]]; 3D: three angles -> R_0 @ R_1 @ R_2, R_k rotating
    the plane of the two axes other than k."""
    if angles.size == 1:
        c, s = math.cos(angles[0]), math.sin(angles[0])
        return np.array([[c, -s], [s, c]])
    rot = np.eye(3)
    for k, a in enumerate(angles):
        i, j = [ax for ax in range(3) if ax != k]
        r = np.eye(3)
        r[i, i] = r[j, j] = math.cos(a)
        r[i, j], r[j, i] = -math.sin(a), math.sin(a)
        rot = rot @ r
    return rot


@corruption
def affine_warp(label: np.ndarray, strength: float, rng: np.random.Generator, num_classes: int) -> np.ndarray:
    """Random rotation, isotropic scaling and translation about the foreground centre of mass.

    out(o) = label(A (o - c) + c + t) (nearest neighbour, 0 outside the volume) with A = s R,
    rotation angles U(-1, 1) * strength * MAX_ROTATION (1 angle in 2D, 3 in 3D),
    s = exp(U(-1, 1) * strength * MAX_LOG_SCALE), t_d = U(-1, 1) * strength * MAX_SHIFT * r_eq,
    c = centre of mass of label > 0 (the array centre if there is no foreground).
    """
    n = label.ndim
    fg = label > 0
    centre = np.array(ndimage.center_of_mass(fg) if fg.any() else [(s - 1) / 2 for s in label.shape])
    angles = rng.uniform(-1, 1, size=1 if n == 2 else 3) * strength * MAX_ROTATION
    scale = math.exp(rng.uniform(-1, 1) * strength * MAX_LOG_SCALE)
    shift = rng.uniform(-1, 1, size=n) * strength * MAX_SHIFT * equivalent_radius(label)
    matrix = scale * rotation_matrix(angles)
    offset = centre + shift - matrix @ centre
    return ndimage.affine_transform(label, matrix, offset=offset, output_shape=label.shape, order=0,
                                    mode="constant", cval=0)


def smooth_displacement(shape: tuple, spacing: float, amplitude: float,
                        rng: np.random.Generator) -> np.ndarray:
    """Smooth random field (n, *shape): N(0, amplitude^2) values on a control grid with ~``spacing``
    voxels between points (>= 2 points per axis), cubic-spline interpolated to every voxel."""
    grid = [max(2, int(math.ceil((s - 1) / spacing)) + 1) for s in shape]
    field = rng.normal(0.0, amplitude, size=(len(shape), *grid))
    for ax, (s, g) in enumerate(zip(shape, grid)):  # tensor-product spline: one axis at a time
        field = np.moveaxis(np.tensordot(field, _spline_matrix(g, s), axes=([ax + 1], [1])), -1, ax + 1)
    return field


def _spline_matrix(g: int, s: int) -> np.ndarray:
    """(s, g) matrix M with (M f)_i = cubic-spline interpolant of f (g control values) at position
    i (g - 1) / (s - 1), i = 0 .. s-1 (corners aligned)."""
    pos = np.arange(s) * ((g - 1) / max(s - 1, 1))
    return np.stack([ndimage.map_coordinates(e, pos[None], order=3, mode="nearest") for e in np.eye(g)], axis=1)


@corruption
def elastic_warp(label: np.ndarray, strength: float, rng: np.random.Generator, num_classes: int) -> np.ndarray:
    """out(v) = label(v + D(v)) (nearest neighbour, edge-replicated) with a smooth random field D.

    Control spacing h = max(4, r_eq) voxels, D ~ ``smooth_displacement`` with standard deviation
    strength * ELASTIC_AMPLITUDE * h per axis at the control points.
    """
    spacing = max(4.0, equivalent_radius(label))
    disp = smooth_displacement(label.shape, spacing, strength * ELASTIC_AMPLITUDE * spacing, rng)
    idx = tuple(np.clip(np.rint(np.arange(s).reshape([-1 if a == ax else 1 for a in range(label.ndim)]) + d),
                        0, s - 1).astype(np.intp) for ax, (s, d) in enumerate(zip(label.shape, disp)))
    return label[idx]

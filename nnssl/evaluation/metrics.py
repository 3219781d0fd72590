"""Segmentation metrics of the SSL papers (Dice, Jaccard, HD95, ASD) on boolean masks.

Conventions follow ``medpy.metric.binary`` (what UA-MT, MC-Net, BCP, ... report), reimplemented
from the definitions:

* surface (border) of a mask M: ``S(M) = M \\ erode(M)`` (= ``M xor erode(M)``) with the
  1-connected cross structuring element (``generate_binary_structure(ndim, 1)``), one iteration,
  voxels outside the array counted as background (``border_value=0``);
* directed surface distances ``d(A->B) = { min_{y in S(B)} ||(x - y) * spacing||_2 : x in S(A) }``,
  one value per voxel of S(A) in C (row-major) order;
* ``HD95 = percentile_95( d(P->R) ∪ d(R->P) )`` (numpy's linear interpolation);
* ``ASD = mean( d(P->R) )``, one-directional, exactly as ``medpy.metric.binary.asd``.

Method: medpy evaluates d(A->B) with a Euclidean distance transform of ``~S(B)`` over the whole
volume (twice per HD95, once more per ASD). Here the distances are an exact nearest-neighbour
search between the two surface point sets instead: the voxels of S(A) and S(B) become physical
coordinates ``index * spacing``, a ``scipy.spatial.cKDTree`` is built on each set, and every point
of the other set is queried with ``k=1`` (exact, ``eps=0``; ``workers=1`` since cases are already
evaluated in parallel by ``nnssl_evaluate``'s process pool). Both directions come from one surface
extraction. The cost scales with the number of surface voxels (typically O(n log n)) rather than
with the volume, and the result is the same minimum Euclidean distance the distance transform
gives: bit-identical on a unit grid (integer coordinates, exact squared sums), and equal up to
floating-point rounding of ``index * spacing`` (a few 1e-15 relative) with a non-unit spacing.

Empty masks: both empty -> Dice = Jaccard = 1, HD95 = ASD = 0; exactly one empty -> Dice =
Jaccard = 0, HD95 = ASD = NaN (undefined; ``case_metrics`` flags it).

Voxel counts (``voxel_counts``, named as in nnU-Net's own summary.json): ``TP = |P ∩ R|``,
``FP = |P \\ R|``, ``FN = |R \\ P|``, ``n_pred = |P|``, ``n_ref = |R|``; e.g. ``n_pred / n_ref`` is the
volume ratio and ``FP / n_ref`` the over-segmentation relative to the reference.

Speed: before surface extraction both masks are cropped to the bounding box of their union (padded
by one voxel), so the erosion costs O(box) instead of O(volume); the KD-trees only ever see the
surface voxels.
"""
from __future__ import annotations

from typing import Iterable, Sequence

import numpy as np
from scipy.spatial import cKDTree

Spacing = float | Sequence[float] | None

__all__ = [
    "dice", "jaccard", "surface_distances", "symmetric_surface_distances", "hd95", "asd",
    "voxel_counts", "case_metrics",
]


def voxel_counts(pred: np.ndarray, ref: np.ndarray) -> dict[str, int]:
    """{TP: |P ∩ R|, FP: |P \\ R|, FN: |R \\ P|, n_pred: |P|, n_ref: |R|} of two boolean masks."""
    pred, ref = np.asarray(pred, bool), np.asarray(ref, bool)
    tp, n_pred, n_ref = int(np.count_nonzero(pred & ref)), int(np.count_nonzero(pred)), int(np.count_nonzero(ref))
    return {"TP": tp, "FP": n_pred - tp, "FN": n_ref - tp, "n_pred": n_pred, "n_ref": n_ref}


def _dice_jaccard(c: dict[str, int]) -> tuple[float, float]:
    """(2 TP / (n_pred + n_ref), TP / (n_pred + n_ref - TP)) from ``voxel_counts``; 1 if both are empty."""
    total = c["n_pred"] + c["n_ref"]
    return (1.0, 1.0) if total == 0 else (2.0 * c["TP"] / total, c["TP"] / (total - c["TP"]))


def dice(pred: np.ndarray, ref: np.ndarray) -> float:
    """Dice = 2|P ∩ R| / (|P| + |R|); 1 if both masks are empty."""
    return _dice_jaccard(voxel_counts(pred, ref))[0]


def jaccard(pred: np.ndarray, ref: np.ndarray) -> float:
    """Jaccard = |P ∩ R| / |P ∪ R|; 1 if both masks are empty."""
    return _dice_jaccard(voxel_counts(pred, ref))[1]


def _spacing(spacing: Spacing, ndim: int) -> tuple[float, ...] | None:
    """Normalise a scalar / per-axis spacing to a tuple of ``ndim`` floats (None = unit grid)."""
    if spacing is None:
        return None
    s = np.broadcast_to(np.asarray(spacing, dtype=np.float64), (ndim,))
    return tuple(float(x) for x in s)


def _crop_to_union(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Crop two same-shape masks to the bounding box of ``a | b`` padded by 1 voxel (clamped).

    Why the crop is exact for surfaces and distances:
    * erosion: a voxel inside the box sees each cross neighbour either inside the box (same value
      as in the full array), outside the box but inside the array (background in the full array,
      as the box contains every foreground voxel; the 1-voxel pad makes such neighbours lie in
      the box anyway), or outside the array. The last case only happens where the box was
      clamped at the array edge, and there the full array's erosion sees ``border_value=0`` just
      like the cropped one. So S(M) restricted to the box is identical, and S(M) is empty
      outside the box (no foreground there).
    * distances: all of S(A) and S(B) lie in the box, and the crop shifts both point sets by the
      same offset; Euclidean distances are translation invariant, so the nearest-neighbour
      distances do not change (exactly on a unit grid; with a spacing the box-local coordinates
      only change the last-bit rounding of ``index * spacing``, and are the smaller numbers).
    """
    union = a | b
    box = []
    for ax in range(union.ndim):
        other = tuple(i for i in range(union.ndim) if i != ax)
        idx = np.flatnonzero(union.any(axis=other)) if other else np.flatnonzero(union)
        box.append(slice(max(int(idx[0]) - 1, 0), min(int(idx[-1]) + 2, union.shape[ax])))
    box_t = tuple(box)
    return a[box_t], b[box_t]


def _surface(mask: np.ndarray) -> np.ndarray:
    """S(M) = M AND NOT erode(M): erosion with the 1-connected cross, outside = background.

    Implemented with shifted views of a zero-padded copy (same result as
    ``binary_erosion(M, generate_binary_structure(ndim, 1), border_value=0)``, a few times faster).
    """
    padded = np.pad(mask, 1)
    inner = [slice(1, -1)] * mask.ndim
    interior = mask.copy()
    for ax in range(mask.ndim):
        for shift in (slice(0, -2), slice(2, None)):
            view = list(inner)
            view[ax] = shift
            interior &= padded[tuple(view)]
    return mask & ~interior


def _surfaces(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Cropped surfaces (S(A), S(B)) of two non-empty same-shape masks."""
    a, b = np.atleast_1d(np.asarray(a, bool)), np.atleast_1d(np.asarray(b, bool))
    if a.shape != b.shape:
        raise ValueError(f"mask shapes differ: {a.shape} vs {b.shape}")
    if not a.any() or not b.any():
        raise ValueError("surface distances are undefined for an empty mask")
    a, b = _crop_to_union(a, b)
    return _surface(a), _surface(b)


def _points(surf: np.ndarray, spacing: Spacing) -> np.ndarray:
    """Physical coordinates ``index * spacing`` of the voxels of ``surf``, shape (n, ndim), in C
    (row-major) order, i.e. the order of ``surf[mask]`` / medpy's ``dt[surface]``."""
    pts = np.argwhere(surf).astype(np.float64)
    sp = _spacing(spacing, surf.ndim)
    if sp is not None:
        pts *= np.asarray(sp)
    return pts


def _nearest(query: np.ndarray, tree: cKDTree) -> np.ndarray:
    """Exact Euclidean distance from each row of ``query`` to its nearest point in ``tree``."""
    return tree.query(query, k=1, workers=1)[0]


def _tree(points: np.ndarray) -> cKDTree:
    """KD-tree of one surface point set (sliding-midpoint splits: faster to build and to query on
    voxel grids than median splits; the query stays exact either way)."""
    return cKDTree(points, balanced_tree=False)


def _directed_pair(surf_a: np.ndarray, surf_b: np.ndarray, spacing: Spacing
                   ) -> tuple[np.ndarray, np.ndarray]:
    """(d(A->B), d(B->A)) at the voxels of S(A) resp. S(B): one KD-tree per surface, each queried
    with the other surface's points (k=1)."""
    pts_a, pts_b = _points(surf_a, spacing), _points(surf_b, spacing)
    return _nearest(pts_a, _tree(pts_b)), _nearest(pts_b, _tree(pts_a))


def _directed(surf_a: np.ndarray, surf_b: np.ndarray, spacing: Spacing) -> np.ndarray:
    """d(A->B) at the voxels of S(A), shape (|S(A)|,): KD-tree on S(B), queried with S(A)."""
    return _nearest(_points(surf_a, spacing), _tree(_points(surf_b, spacing)))


def surface_distances(a: np.ndarray, b: np.ndarray, spacing: Spacing = None) -> np.ndarray:
    """Directed surface distances d(A->B), shape (|S(A)|,); both masks must be non-empty.

    d(A->B)_x = min_{y in S(B)} ||(x - y) * spacing||_2 for every surface voxel x in S(A)
    (C order), by an exact KD-tree nearest-neighbour search.
    """
    surf_a, surf_b = _surfaces(a, b)
    return _directed(surf_a, surf_b, spacing)


def symmetric_surface_distances(pred: np.ndarray, ref: np.ndarray, spacing: Spacing = None
                                ) -> tuple[np.ndarray, np.ndarray]:
    """(d(P->R), d(R->P)) from a single crop and surface extraction (two KD-tree searches)."""
    return _directed_pair(*_surfaces(pred, ref), spacing)


def _hd95_asd(d_pr: np.ndarray, d_rp: np.ndarray) -> tuple[float, float]:
    """HD95 = P95(d(P->R) ∪ d(R->P)), ASD = mean(d(P->R))."""
    return float(np.percentile(np.concatenate([d_pr, d_rp]), 95)), float(d_pr.mean())


def _empty_rule(pred: np.ndarray, ref: np.ndarray) -> float | None:
    """0 if both masks are empty, NaN if exactly one is, None if both have foreground."""
    p, r = bool(np.any(pred)), bool(np.any(ref))
    if p and r:
        return None
    return 0.0 if not (p or r) else float("nan")


def hd95(pred: np.ndarray, ref: np.ndarray, spacing: Spacing = None) -> float:
    """95th percentile Hausdorff distance: P95(d(P->R) ∪ d(R->P)) (0 both empty, NaN one empty)."""
    rule = _empty_rule(pred, ref)
    if rule is not None:
        return rule
    return _hd95_asd(*symmetric_surface_distances(pred, ref, spacing))[0]


def asd(pred: np.ndarray, ref: np.ndarray, spacing: Spacing = None) -> float:
    """Average surface distance, one-directional: mean(d(P->R)) (0 both empty, NaN one empty)."""
    rule = _empty_rule(pred, ref)
    return rule if rule is not None else float(surface_distances(pred, ref, spacing).mean())


def _label_metrics(pred: np.ndarray, ref: np.ndarray, spacing: Spacing) -> dict[str, float | bool | int]:
    """All metrics of one binary pair; surfaces are extracted once for voxel and mm distances
    (the KD-trees are rebuilt for mm, as the coordinates scale per axis)."""
    counts = voxel_counts(pred, ref)
    d, j = _dice_jaccard(counts)
    out: dict[str, float | bool | int] = {"dice": d, "jaccard": j}
    p_empty, r_empty = counts["n_pred"] == 0, counts["n_ref"] == 0
    if p_empty or r_empty:
        dist = 0.0 if (p_empty and r_empty) else float("nan")
        out.update(hd95_vox=dist, asd_vox=dist, hd95_mm=dist, asd_mm=dist)
    else:
        surf_p, surf_r = _surfaces(pred, ref)
        vox = _hd95_asd(*_directed_pair(surf_p, surf_r, None))
        sp = _spacing(spacing, pred.ndim)
        mm = vox if sp is None or all(s == 1.0 for s in sp) else _hd95_asd(
            *_directed_pair(surf_p, surf_r, sp))
        out.update(hd95_vox=vox[0], asd_vox=vox[1], hd95_mm=mm[0], asd_mm=mm[1])
    out.update(pred_empty=bool(p_empty), ref_empty=bool(r_empty),
               distance_undefined=bool(p_empty != r_empty), **counts)
    return out


def case_metrics(pred_labelmap: np.ndarray, ref_labelmap: np.ndarray, labels: Iterable[int],
                 spacing: Spacing) -> dict[int, dict[str, float | bool | int]]:
    """Metrics of one case, per foreground label.

    pred_labelmap, ref_labelmap: integer label maps of identical shape (e.g. (z, y, x)).
    spacing: per-axis spacing in the arrays' axis order (mm); None = unit.
    Returns ``{label: {dice, jaccard, hd95_vox, asd_vox, hd95_mm, asd_mm, pred_empty, ref_empty,
    distance_undefined, TP, FP, FN, n_pred, n_ref}}``; ``*_vox`` ignore spacing (the papers' medpy
    convention), ``*_mm`` use it; ``distance_undefined`` is True when exactly one of the two masks is
    empty (NaN distances); the counts are ``voxel_counts``.
    """
    pred_labelmap, ref_labelmap = np.asarray(pred_labelmap), np.asarray(ref_labelmap)
    if pred_labelmap.shape != ref_labelmap.shape:
        raise ValueError(f"shapes differ: pred {pred_labelmap.shape} vs ref {ref_labelmap.shape}")
    return {int(lab): _label_metrics(pred_labelmap == lab, ref_labelmap == lab, spacing)
            for lab in labels}

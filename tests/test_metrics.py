"""Tests of nnssl.evaluation.metrics: hand-worked values, empty-mask rules, crop exactness, KD-tree
distances vs an EDT reference, medpy."""
from __future__ import annotations

import math

import numpy as np
import pytest
import SimpleITK as sitk
from scipy.ndimage import (binary_dilation, binary_erosion, distance_transform_edt,
                           gaussian_filter, generate_binary_structure)

from nnssl.evaluation.metrics import (_surface, asd, case_metrics, dice, hd95, jaccard,
                                      surface_distances, symmetric_surface_distances, voxel_counts)


# --- hand-worked cases ---------------------------------------------------------------------------
def test_1d_hand_worked():
    # P = {1,2,3}, R = {2,3,4,5}; |P∩R| = 2 -> Dice 4/7, Jaccard 2/5.
    # Surfaces (1D cross = both neighbours): S(P) = {1,3}, S(R) = {2,5}.
    # d(P->R) = [1, 1]; d(R->P) = [1, 2]; HD95 = P95([1,1,1,2]) = 1 + 0.85 = 1.85; ASD = 1.
    p = np.array([0, 1, 1, 1, 0, 0, 0], bool)
    r = np.array([0, 0, 1, 1, 1, 1, 0], bool)
    assert dice(p, r) == pytest.approx(4 / 7)
    assert jaccard(p, r) == pytest.approx(2 / 5)
    np.testing.assert_allclose(surface_distances(p, r), [1, 1])
    np.testing.assert_allclose(surface_distances(r, p), [1, 2])
    assert hd95(p, r) == pytest.approx(1.85)
    assert asd(p, r) == pytest.approx(1.0)
    assert asd(r, p) == pytest.approx(1.5)  # ASD is one-directional (pred -> ref)
    assert voxel_counts(p, r) == {"TP": 2, "FP": 1, "FN": 2, "n_pred": 3, "n_ref": 4}
    assert hd95(p, r, spacing=2.0) == pytest.approx(3.7)
    assert asd(p, r, spacing=[2.0]) == pytest.approx(2.0)


def test_2d_anisotropic_hand_worked():
    # R = 3x3 square rows 1-3, cols 1-3; P = same square shifted one column right.
    # |P∩R| = 6 -> Dice 12/18, Jaccard 6/12. Surfaces: the 8-pixel rings (centre is interior).
    # spacing (row 2.0, col 0.5): ring pixels of P off R's ring are one column away -> 0.5;
    #   d(P->R) = four 0 and four 0.5 -> ASD 0.25, union of both directions -> HD95 0.5.
    # spacing (row 0.5, col 2.0): (2,2) is now nearer to (1,2) (0.5) than to (2,1)/(2,3) (2.0);
    #   d(P->R) = [0, 0, 2, 0.5, 2, 0, 0, 2] -> ASD 6.5/8 = 0.8125.
    r = np.zeros((5, 5), bool)
    p = np.zeros((5, 5), bool)
    r[1:4, 1:4] = True
    p[1:4, 2:5] = True
    assert dice(p, r) == pytest.approx(2 / 3)
    assert jaccard(p, r) == pytest.approx(0.5)
    assert asd(p, r, (2.0, 0.5)) == pytest.approx(0.25)
    assert hd95(p, r, (2.0, 0.5)) == pytest.approx(0.5)
    assert asd(p, r) == pytest.approx(0.5) and hd95(p, r) == pytest.approx(1.0)
    np.testing.assert_allclose(surface_distances(p, r, (0.5, 2.0)), [0, 0, 2, 0.5, 2, 0, 0, 2])
    assert asd(p, r, (0.5, 2.0)) == pytest.approx(0.8125)


def test_3d_single_voxels_anisotropic():
    # Two single voxels offset by (2, 0, 3) voxels; spacing (2.5, 1, 0.5) -> sqrt(5^2 + 1.5^2).
    p = np.zeros((4, 3, 6), bool)
    r = np.zeros((4, 3, 6), bool)
    p[0, 1, 0] = True
    r[2, 1, 3] = True
    expected = math.sqrt(5.0**2 + 1.5**2)
    assert dice(p, r) == 0.0 and jaccard(p, r) == 0.0
    assert hd95(p, r, (2.5, 1.0, 0.5)) == pytest.approx(expected)
    assert asd(p, r, (2.5, 1.0, 0.5)) == pytest.approx(expected)
    assert hd95(p, r) == pytest.approx(math.sqrt(13))


def test_identical_masks_zero_distance():
    m = np.zeros((6, 6, 6), bool)
    m[1:5, 2:4, 1:6] = True
    assert dice(m, m) == 1.0 and jaccard(m, m) == 1.0
    assert hd95(m, m, (1, 2, 3)) == 0.0 and asd(m, m) == 0.0


# --- empty-mask rules ----------------------------------------------------------------------------
def test_both_empty():
    e = np.zeros((3, 4, 5), bool)
    assert (dice(e, e), jaccard(e, e), hd95(e, e), asd(e, e)) == (1.0, 1.0, 0.0, 0.0)


@pytest.mark.parametrize("pred_empty", [True, False])
def test_one_empty(pred_empty):
    e = np.zeros((3, 4, 5), bool)
    m = e.copy()
    m[1, 1:3, 2] = True
    p, r = (e, m) if pred_empty else (m, e)
    assert dice(p, r) == 0.0 and jaccard(p, r) == 0.0
    assert math.isnan(hd95(p, r)) and math.isnan(asd(p, r, 2.0))
    with pytest.raises(ValueError):
        surface_distances(p, r)
    out = case_metrics(p.astype(int), r.astype(int), [1], (1.0, 1.0, 1.0))[1]
    assert out["distance_undefined"] and out["pred_empty"] == pred_empty
    assert out["ref_empty"] != pred_empty
    assert all(math.isnan(out[k]) for k in ("hd95_vox", "asd_vox", "hd95_mm", "asd_mm"))


# --- surface definition and crop exactness -------------------------------------------------------
def _naive_directed(a: np.ndarray, b: np.ndarray, spacing=None) -> np.ndarray:
    """EDT reference on the full array (no crop; medpy's method): border = M xor erode(M), then
    ``distance_transform_edt(~border(B), sampling=spacing)`` read at the voxels of border(A)."""
    st = generate_binary_structure(a.ndim, 1)
    sa = a ^ binary_erosion(a, st, iterations=1, border_value=0)
    sb = b ^ binary_erosion(b, st, iterations=1, border_value=0)
    return distance_transform_edt(~sb, sampling=spacing)[sa]


def _blobs(rng: np.random.Generator, shape, thr=0.53) -> tuple[np.ndarray, np.ndarray]:
    a = gaussian_filter(rng.random(shape), 1.5) > thr
    b = gaussian_filter(rng.random(shape), 1.5) > thr
    return a, b


def test_surface_equals_scipy_erosion():
    rng = np.random.default_rng(1)
    for shape in [(7,), (9, 11), (8, 9, 10)]:
        m = rng.random(shape) > 0.3
        st = generate_binary_structure(len(shape), 1)
        np.testing.assert_array_equal(_surface(m), m ^ binary_erosion(m, st, border_value=0))


def test_crop_exact_mask_touching_array_edge():
    # A full block touches every face: with border_value 0 every face voxel is surface. The crop
    # (clamped at the edge) must keep that, and must equal the uncropped definition.
    ref = np.ones((5, 6, 7), bool)
    pred = ref.copy()
    pred[-1] = False
    pred[:, :2, :] = False
    sp = (1.5, 1.0, 0.7)
    d_pr, d_rp = symmetric_surface_distances(pred, ref, sp)
    np.testing.assert_allclose(d_pr, _naive_directed(pred, ref, sp))
    np.testing.assert_allclose(d_rp, _naive_directed(ref, pred, sp))
    assert d_pr.max() > 0  # the cut faces of pred are off ref's surface
    # small objects in a corner and far apart in a large volume
    a = np.zeros((40, 30, 50), bool)
    b = a.copy()
    a[0:3, 0:2, 0:4] = True
    b[30:40, 25:30, 44:50] = True
    for s in (None, sp):
        np.testing.assert_allclose(surface_distances(a, b, s), _naive_directed(a, b, s))
        np.testing.assert_allclose(surface_distances(b, a, s), _naive_directed(b, a, s))


def test_crop_exact_random():
    rng = np.random.default_rng(2)
    for _ in range(5):
        a, b = _blobs(rng, (20, 24, 18))
        a[:, :, :3] = False  # leave some room on one side, touch edges elsewhere
        if a.any() and b.any():
            np.testing.assert_allclose(surface_distances(a, b, (2.0, 1.0, 0.5)),
                                       _naive_directed(a, b, (2.0, 1.0, 0.5)))


def test_kdtree_equals_edt_reference_random_anisotropic():
    # The module computes d(A->B) by a KD-tree nearest-neighbour search on index * spacing; it must
    # give the EDT's values, in the same (C) order: bit-identical on the unit grid, to rounding
    # with an anisotropic spacing. Smooth blobs (large surfaces, mostly small distances) and
    # sparse noise (scattered voxels, large distances, many ties) in 1D, 2D and 3D.
    rng = np.random.default_rng(4)
    n = 0
    for shape, spacing in [((60,), (0.3,)), ((31, 27), (2.0, 0.35)),
                           ((18, 22, 15), (3.0, 0.7, 1.3)), ((16, 20, 24), (0.45, 2.25, 1.0))]:
        for kind in ("blobs", "noise"):
            for _ in range(3):
                if kind == "blobs":
                    a, b = _blobs(rng, shape)
                else:
                    a, b = rng.random(shape) > 0.95, rng.random(shape) > 0.9
                if not (a.any() and b.any()):
                    continue
                ref_pr, ref_rp = _naive_directed(a, b, spacing), _naive_directed(b, a, spacing)
                d_pr, d_rp = symmetric_surface_distances(a, b, spacing)
                assert d_pr.shape == ref_pr.shape and d_rp.shape == ref_rp.shape
                np.testing.assert_allclose(d_pr, ref_pr, rtol=1e-12, atol=1e-12)
                np.testing.assert_allclose(d_rp, ref_rp, rtol=1e-12, atol=1e-12)
                np.testing.assert_allclose(surface_distances(a, b, spacing), ref_pr,
                                           rtol=1e-12, atol=1e-12)
                unit_pr, unit_rp = _naive_directed(a, b), _naive_directed(b, a)
                np.testing.assert_array_equal(surface_distances(a, b), unit_pr)
                np.testing.assert_array_equal(surface_distances(b, a), unit_rp)
                # HD95 / ASD from the EDT reference sets, via the public functions and case_metrics
                hd_ref = np.percentile(np.concatenate([ref_pr, ref_rp]), 95)
                assert hd95(a, b, spacing) == pytest.approx(hd_ref, rel=1e-12, abs=1e-12)
                assert asd(a, b, spacing) == pytest.approx(ref_pr.mean(), rel=1e-12, abs=1e-12)
                out = case_metrics(a.astype(np.int16), b.astype(np.int16), [1], spacing)[1]
                assert out["hd95_mm"] == pytest.approx(hd_ref, rel=1e-12, abs=1e-12)
                assert out["asd_mm"] == pytest.approx(ref_pr.mean(), rel=1e-12, abs=1e-12)
                assert out["hd95_vox"] == np.percentile(np.concatenate([unit_pr, unit_rp]), 95)
                assert out["asd_vox"] == unit_pr.mean()
                n += 1
    assert n >= 18


# --- case_metrics --------------------------------------------------------------------------------
def test_case_metrics_vox_vs_mm_and_labels():
    ref = np.zeros((6, 8, 8), np.int32)
    pred = np.zeros_like(ref)
    ref[1:4, 1:4, 1:4] = 1
    pred[1:4, 1:4, 2:5] = 1   # shifted one voxel along x
    ref[2:5, 5:7, 5:7] = 2    # class 2 missing in pred -> undefined
    out = case_metrics(pred, ref, [1, 2, 3], (3.0, 1.0, 0.5))
    assert set(out) == {1, 2, 3}
    assert out[1]["dice"] == pytest.approx(2 * 18 / 54)
    assert out[1]["hd95_vox"] == pytest.approx(hd95(pred == 1, ref == 1))
    assert out[1]["hd95_mm"] == pytest.approx(hd95(pred == 1, ref == 1, (3.0, 1.0, 0.5)))
    assert out[1]["asd_mm"] == pytest.approx(asd(pred == 1, ref == 1, (3.0, 1.0, 0.5)))
    assert out[1]["asd_mm"] != pytest.approx(out[1]["asd_vox"])  # spacing is used for mm
    assert out[2]["distance_undefined"] and out[2]["pred_empty"] and not out[2]["ref_empty"]
    assert out[3]["dice"] == 1.0 and out[3]["hd95_mm"] == 0.0 and not out[3]["distance_undefined"]
    # class 1: two 3x3x3 cubes overlapping in 3x3x2; class 2 (2x2x3 voxels) missed; class 3 absent from both
    assert {k: out[1][k] for k in ("TP", "FP", "FN", "n_pred", "n_ref")} == \
           {"TP": 18, "FP": 9, "FN": 9, "n_pred": 27, "n_ref": 27}
    assert {k: out[2][k] for k in ("TP", "FP", "FN", "n_pred", "n_ref")} == \
           {"TP": 0, "FP": 0, "FN": 12, "n_pred": 0, "n_ref": 12}
    assert {k: out[3][k] for k in ("TP", "FP", "FN", "n_pred", "n_ref")} == \
           {"TP": 0, "FP": 0, "FN": 0, "n_pred": 0, "n_ref": 0}
    with pytest.raises(ValueError):
        case_metrics(pred[:-1], ref, [1], None)


# --- agreement with medpy ------------------------------------------------------------------------
def _check_medpy(p: np.ndarray, r: np.ndarray, spacing) -> None:
    mb = pytest.importorskip("medpy.metric.binary")
    assert dice(p, r) == pytest.approx(mb.dc(p, r), abs=1e-6)
    assert jaccard(p, r) == pytest.approx(mb.jc(p, r), abs=1e-6)
    for s in (None, spacing):
        assert hd95(p, r, s) == pytest.approx(mb.hd95(p, r, voxelspacing=s), abs=1e-3)
        assert asd(p, r, s) == pytest.approx(mb.asd(p, r, voxelspacing=s), abs=1e-3)


@pytest.mark.parametrize("shape,spacing", [((40, 50), (0.7, 1.9)),
                                           ((24, 30, 20), (2.5, 0.8, 0.8))])
def test_medpy_random_blobs(shape, spacing):
    rng = np.random.default_rng(3)
    n = 0
    for _ in range(6):
        a, b = _blobs(rng, shape)
        if a.any() and b.any():
            _check_medpy(a, b, spacing)
            n += 1
    assert n >= 3


def test_medpy_real_hippocampus(hippocampus_dir):
    files = sorted((hippocampus_dir / "labelsTr").glob("hippocampus_*.nii.gz"))[:4]
    st = generate_binary_structure(3, 1)
    for i, f in enumerate(files):
        img = sitk.ReadImage(str(f))
        lab = np.rint(sitk.GetArrayFromImage(img)).astype(np.int32)
        for c in (1, 2):
            ref = lab == c
            shifted = np.roll(ref, (1, -1), axis=(0, 2))
            pred = binary_dilation(shifted, st) if i % 2 else shifted & binary_erosion(ref, st)
            _check_medpy(pred, ref, (1.0, 0.8, 2.0))

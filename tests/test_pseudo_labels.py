"""Fixed/dynamic pseudo-label tensor operations (METHODS.md B) on hand-checkable volumes."""
from __future__ import annotations

import math

import pytest
import torch

from nnssl.pseudo_labels import (
    box_mask, box_sides, com_fusion, cutmix, dynamic_label, fixed_crop, ignore_outside, interior_mask, map_to_fixed,
    margin_voxels, random_box, region_size, shift_axes, shift_bounds, shift_offsets, shifted_crops, temporary_label,
)


def _region(b, c, patch, shift):
    """Region whose value is the linear index of the voxel in the whole (B, C, *region) tensor."""
    size = region_size(patch, shift)
    return torch.arange(b * c * math.prod(size), dtype=torch.float64).view(b, c, *size)


# ---------------------------------------------------------------- offsets, crops
def test_shift_offsets_order_and_errors():
    assert shift_offsets((0, 2, 3), (1, 2)) == [(0, 2, 0), (0, -2, 0), (0, 0, 3), (0, 0, -3)]
    assert shift_offsets((4, 5), (1, 0)) == [(0, 5), (0, -5), (4, 0), (-4, 0)]
    assert shift_offsets((1, 2, 3), (-1,)) == [(0, 0, 3), (0, 0, -3)]
    with pytest.raises(ValueError):
        shift_offsets((1, -1), (0,))
    with pytest.raises(ValueError):
        shift_offsets((1, 1), (0, 0))
    with pytest.raises(ValueError):
        shift_offsets((1, 1), (2,))


def test_fixed_and_shifted_crops_by_hand():
    region = torch.arange(30).view(1, 1, 5, 6)  # patch (3, 2), shift (1, 2)
    assert region_size((3, 2), (1, 2)) == (5, 6)
    fx = fixed_crop(region, (3, 2), (1, 2))
    assert fx[0, 0].tolist() == [[8, 9], [14, 15], [20, 21]]
    crops = shifted_crops(region, (3, 2), (1, 2), [(0, 2), (0, -2), (1, 0), (0, 0)])
    assert crops.shape == (4, 1, 3, 2)
    assert crops[0, 0].tolist() == [[10, 11], [16, 17], [22, 23]]
    assert crops[1, 0].tolist() == [[6, 7], [12, 13], [18, 19]]
    assert crops[2, 0].tolist() == [[14, 15], [20, 21], [26, 27]]
    assert torch.equal(crops[3], fx[0])
    as_list = shifted_crops(region, (3, 2), (1, 2), [(0, 2), (1, 0)], stack=False)
    assert torch.equal(as_list[0], crops[0:1]) and torch.equal(as_list[1], crops[2:3])


def test_stacking_is_offset_major():
    region = _region(2, 1, (3, 4), (1, 1))
    offs = shift_offsets((1, 1), (0, 1))
    crops = shifted_crops(region, (3, 4), (1, 1), offs)
    assert crops.shape == (8, 1, 3, 4)
    for k, o in enumerate(offs):
        ref = region[:, :, 1 + o[0]:4 + o[0], 1 + o[1]:5 + o[1]]
        assert torch.equal(crops[2 * k:2 * k + 2], ref)


def test_crop_errors():
    region = torch.zeros(1, 1, 5, 6)
    with pytest.raises(ValueError, match="patch \\+ 2\\*shift"):
        fixed_crop(region, (3, 3), (1, 2))
    with pytest.raises(ValueError):
        fixed_crop(region, (3, 2, 1), (1, 2, 0))
    with pytest.raises(ValueError):
        fixed_crop(region, (3, 2), (1, -2))
    with pytest.raises(ValueError):
        fixed_crop(torch.zeros(5, 6), (3, 2), (1, 2))
    with pytest.raises(ValueError, match="exceeds shift"):
        shifted_crops(region, (3, 2), (1, 2), [(2, 0)])
    with pytest.raises(ValueError):
        shifted_crops(region, (3, 2), (1, 2), [(0,)])


# ---------------------------------------------------------------- mapping back
def test_map_to_fixed_by_hand():
    pred = torch.arange(12.).view(1, 1, 3, 4)
    out, cov = map_to_fixed(pred, (0, 1))
    assert out[0, 0].tolist() == [[0, 0, 1, 2], [0, 4, 5, 6], [0, 8, 9, 10]]
    assert cov[0, 0].tolist() == [[False, True, True, True]] * 3
    out, cov = map_to_fixed(pred, (-2, 0))
    assert out[0, 0].tolist() == [[8, 9, 10, 11], [0, 0, 0, 0], [0, 0, 0, 0]]
    assert cov.shape == (1, 1, 3, 4) and cov.dtype == torch.bool and int(cov.sum()) == 4
    out, cov = map_to_fixed(pred, (0, 4))  # no overlap
    assert not cov.any() and not out.any()
    with pytest.raises(ValueError):
        map_to_fixed(pred, (1,))


@pytest.mark.parametrize("patch, shift, offsets", [
    ((5, 6), (1, 2), None),
    ((5, 6), (3, 2), [(1, -2), (-3, 1), (0, 0)]),  # diagonal / partial offsets too
    ((4, 5, 6), (0, 2, 3), None),
    ((4, 5, 6), (1, 2, 3), [(1, -2, 3), (-1, 0, -2)]),
    ((3, 4, 4), (1, 3, 2), None),  # shift > patch/2 on axis 1 -> gaps in the union
])
def test_exact_round_trip_through_every_shifted_crop(patch, shift, offsets):
    b, c = 2, 3
    region = _region(b, c, patch, shift)
    nd = len(patch)
    if offsets is None:
        offsets = shift_offsets(shift, [a for a in range(nd) if shift[a] > 0])
    fixed = fixed_crop(region, patch, shift)
    crops = shifted_crops(region, patch, shift, offsets, stack=False)
    for o, crop in zip(offsets, crops):
        mapped, cov = map_to_fixed(crop, o)
        full = cov.expand_as(mapped)
        assert torch.equal(mapped[full], fixed[full])  # exact: same region voxel
        assert not mapped[~full].any()
        assert int(cov.sum()) == b * math.prod(p - abs(x) for p, x in zip(patch, o))
        assert torch.equal(cov, cov[:1].expand_as(cov))  # same footprint for every sample
    # the temporary label of an identity "network" is the fixed crop itself wherever covered
    probs, cov = temporary_label(crops, offsets)
    full = cov.expand_as(probs)
    assert torch.equal(probs[full], fixed[full]) and not probs[~full].any()


def test_union_coverage_has_gap_when_shift_exceeds_half_patch():
    # patch width 4, shift 3: +3 covers column 3, -3 covers column 0 -> columns 1, 2 uncovered
    probs = [torch.ones(1, 2, 2, 4)] * 2
    _, cov = temporary_label(probs, shift_offsets((0, 3), (1,)))
    assert cov[0, 0].tolist() == [[True, False, False, True]] * 2


# ---------------------------------------------------------------- temporary label, COM
def test_temporary_label_averages_over_covering_crops():
    # patch (1, 4); offsets +1 -> cols 1..3, -1 -> cols 0..2, +2 -> cols 2..3: counts 1, 2, 3, 2
    offsets = [(0, 1), (0, -1), (0, 2)]
    vals = [0.1, 0.2, 0.6]
    preds = [torch.stack([torch.full((1, 4), v), torch.full((1, 4), 1 - v)])[None] for v in vals]
    probs, cov = temporary_label(preds, offsets)
    assert probs.shape == (1, 2, 1, 4) and cov.shape == (1, 1, 1, 4)
    expected0 = [0.2, (0.1 + 0.2) / 2, (0.1 + 0.2 + 0.6) / 3, (0.1 + 0.6) / 2]
    assert torch.allclose(probs[0, 0, 0], torch.tensor(expected0))
    assert torch.allclose(probs[0].sum(0), torch.ones(1, 4))  # still a distribution
    assert cov.all()
    stacked, cov2 = temporary_label(torch.cat(preds), offsets)  # (K*B, C, *patch) form
    assert torch.equal(stacked, probs) and torch.equal(cov2, cov)
    # only the +1 crop: column 0 uncovered -> 0 there
    probs, cov = temporary_label(preds[:1], offsets[:1])
    assert cov[0, 0, 0].tolist() == [False, True, True, True]
    assert torch.allclose(probs[0, 0, 0], torch.tensor([0.0, 0.1, 0.1, 0.1]))
    with pytest.raises(ValueError):
        temporary_label(preds, offsets[:2])
    with pytest.raises(ValueError):
        temporary_label(torch.cat(preds)[:2], offsets)


def test_com_takes_temporary_on_covered_and_fixed_elsewhere():
    yf = torch.tensor([[[0, 0, 3, 0]]])  # (B=1, 1, 4)
    temp = torch.zeros(1, 4, 1, 4)
    temp[0, 1, 0, 0] = temp[0, 1, 0, 1] = temp[0, 2, 0, 2] = 1.0  # argmax [1, 1, 2, 0]
    cov = torch.tensor([True, False, True, False]).view(1, 1, 1, 4)
    yd = com_fusion(yf, temp, cov)
    assert yd.dtype == torch.int64 and yd.tolist() == [[[1, 0, 2, 0]]]
    fixed_probs = torch.nn.functional.one_hot(yf, 4).permute(0, 3, 1, 2).float()
    assert torch.equal(com_fusion(fixed_probs, temp, cov), yd)
    assert torch.equal(com_fusion(yf, temp, cov[:, 0]), yd)  # (B, *patch) coverage


def test_com_3d_against_masks():
    g = torch.Generator().manual_seed(0)
    fixed, temp = torch.rand(2, 3, 3, 4, 5, generator=g), torch.rand(2, 3, 3, 4, 5, generator=g)
    cov = torch.rand(2, 1, 3, 4, 5, generator=g) > 0.5
    yd = com_fusion(fixed, temp, cov)
    assert torch.equal(yd[cov[:, 0]], temp.argmax(1)[cov[:, 0]])
    assert torch.equal(yd[~cov[:, 0]], fixed.argmax(1)[~cov[:, 0]])
    with pytest.raises(ValueError):
        com_fusion(fixed[:, :, :2], temp, cov)
    with pytest.raises(ValueError):
        com_fusion(fixed[0, 0, 0], temp, cov)


# ---------------------------------------------------------------- boxes, CutMix
def test_box_sides_by_hand():
    assert box_sides((6, 6)) == (5, 5)  # 6 * sqrt(2/3) = 4.90
    assert box_sides((12, 12, 12)) == (10, 10, 10)  # 12 * (2/3)^(1/3) = 10.48
    assert box_sides((7, 9), 1.0) == (7, 9)
    assert box_sides((1, 1, 1), 0.01) == (1, 1, 1)  # clamp to >= 1
    for bad in (0.0, -0.5, 1.5):
        with pytest.raises(ValueError):
            box_sides((4, 4), bad)
    with pytest.raises(ValueError):
        box_sides((4, 0))


@pytest.mark.parametrize("shape", [(6, 6), (7, 13), (32, 48), (5, 5, 5), (8, 16, 24), (20, 3, 11)])
@pytest.mark.parametrize("ratio", [2 / 3, 0.5, 0.25])
def test_random_box_ratio_within_one_voxel_per_axis(shape, ratio):
    g = torch.Generator().manual_seed(1)
    for _ in range(5):
        box = random_box(shape, ratio, generator=g)
        sides = [sl.stop - sl.start for sl in box]
        assert all(0 <= sl.start and sl.stop <= s for sl, s in zip(box, shape))
        t = [s * ratio ** (1 / len(shape)) for s in shape]
        assert all(abs(side - ti) <= 0.5 + 1e-9 for side, ti in zip(sides, t))
        achieved = math.prod(sides) / math.prod(shape)
        lo = math.prod((ti - 0.5) / s for ti, s in zip(t, shape))
        hi = math.prod((ti + 0.5) / s for ti, s in zip(t, shape))
        assert lo - 1e-12 <= achieved <= hi + 1e-12
        assert int(box_mask(shape, box).sum()) == math.prod(sides)


def test_random_box_seeded_and_positions_uniform_range():
    a = [random_box((8, 16, 24), generator=torch.Generator().manual_seed(7)) for _ in range(2)]
    assert a[0] == a[1]
    g = torch.Generator().manual_seed(0)
    starts = {random_box((6, 6), generator=g)[0].start for _ in range(100)}
    assert starts == {0, 1}  # side 5 in 6: both positions occur, nothing outside


def test_cutmix_by_hand():
    x = torch.stack([torch.zeros(1, 2, 3), torch.full((1, 2, 3), 10.)])
    y = torch.tensor([[[0, 0, 0], [0, 0, 0]], [[1, 1, 1], [1, 1, 1]]])
    box = (slice(0, 1), slice(1, 3))
    xm, (ym,), box_out, partner = cutmix(x, [y], box=box)
    assert xm[0, 0].tolist() == [[0, 10, 10], [0, 0, 0]]
    assert xm[1, 0].tolist() == [[10, 0, 0], [10, 10, 10]]
    assert ym.tolist() == [[[0, 1, 1], [0, 0, 0]], [[1, 0, 0], [1, 1, 1]]]
    assert box_out == box and partner.tolist() == [1, 0]
    assert x[0].sum() == 0 and y[0].sum() == 0  # inputs untouched


@pytest.mark.parametrize("spatial", [(5, 6), (4, 5, 6)])
def test_cutmix_every_voxel_same_box_for_images_and_labels(spatial):
    b, c = 3, 2
    g = torch.Generator().manual_seed(3)
    x = torch.rand(b, c, *spatial, generator=g)
    hard = torch.randint(0, 4, (b, *spatial), generator=g)
    soft = torch.rand(b, 4, *spatial, generator=g)
    xm, (hm, sm), box, partner = cutmix(x, [hard, soft], generator=torch.Generator().manual_seed(5))
    assert box == random_box(spatial, 2 / 3, torch.Generator().manual_seed(5))
    assert partner.tolist() == [1, 2, 0]  # roll by one
    m = box_mask(spatial, box)
    for src, out in ((x, xm), (hard, hm), (soft, sm)):
        for i in range(b):
            j = (i + 1) % b
            mm = m.expand_as(src[i])
            assert torch.equal(out[i][mm], src[j][mm]) and torch.equal(out[i][~mm], src[i][~mm])
    # reuse the box with an explicit partner permutation
    perm = torch.tensor([2, 0, 1])
    xm2, (hm2,), box2, p2 = cutmix(x, [hard], box=box, partner=perm)
    assert box2 == box and torch.equal(p2, perm)
    assert torch.equal(xm2[0][m.expand_as(x[0])], x[2][m.expand_as(x[0])])
    assert torch.equal(hm2[1][m], hard[0][m])


def test_cutmix_batch_of_one_and_gradients():
    x = torch.rand(1, 1, 4, 4, requires_grad=True)
    xm, labels, _, partner = cutmix(x, [], generator=torch.Generator().manual_seed(0))
    assert partner.tolist() == [0] and labels == [] and torch.equal(xm, x)
    xm.sum().backward()
    assert torch.equal(x.grad, torch.ones_like(x))


def test_cutmix_errors():
    x = torch.zeros(2, 1, 4, 4)
    with pytest.raises(ValueError):
        cutmix(x, [], box=(slice(0, 2),))
    with pytest.raises(ValueError):
        cutmix(x, [], box=(slice(0, 5), slice(0, 2)))
    with pytest.raises(ValueError):
        cutmix(x, [], partner=torch.tensor([0, 2]))
    with pytest.raises(ValueError):
        cutmix(x, [torch.zeros(2, 4, 5)])
    with pytest.raises(ValueError):
        cutmix(x, [torch.zeros(3, 4, 4)])
    with pytest.raises(ValueError):
        cutmix(torch.zeros(4, 4), [])


# ---------------------------------------------------------------- patch-border margin
def test_margin_voxels_round_half_up_and_refuse_no_interior():
    assert margin_voxels((48, 48, 32), 0.2) == (10, 10, 6)  # 9.6 -> 10, 6.4 -> 6
    assert margin_voxels((4, 6, 10), 0.25) == (1, 2, 3)  # 1.0, 1.5 -> 2 (not banker's 2), 2.5 -> 3
    assert margin_voxels((5, 7), 0.0) == (0, 0)
    for bad in (-0.1, 0.5):
        with pytest.raises(ValueError, match=r"must be in \[0, 0.5\)"):
            margin_voxels((8, 8), bad)
    with pytest.raises(ValueError, match="leaves no interior in patch \\(8, 4\\)"):
        margin_voxels((8, 4), 0.45)  # 0.45 * 4 -> 2 of 4 voxels per border


def test_interior_mask_and_ignore_outside_by_hand():
    expected = torch.tensor([[0, 0, 0, 0, 0, 0],
                             [0, 0, 1, 1, 0, 0],
                             [0, 0, 1, 1, 0, 0],
                             [0, 0, 0, 0, 0, 0]], dtype=torch.bool)
    assert torch.equal(interior_mask((4, 6), 0.25), expected)
    assert bool(interior_mask((3, 4, 5), 0.0).all())
    labels = torch.arange(2 * 4 * 6).view(2, 4, 6) % 3  # classes 0..2, ignore label 3
    out = ignore_outside(labels, interior_mask((4, 6), 0.25), 3)
    assert torch.equal(out[:, expected], labels[:, expected])  # interior kept, per sample
    assert bool((out[:, ~expected] == 3).all()) and labels.max() < 3
    assert torch.equal(ignore_outside(labels, interior_mask((4, 6), 0.0), 3), labels)
    with pytest.raises(ValueError, match=r"\(B, \*patch\)"):
        ignore_outside(torch.zeros(5, dtype=torch.long), expected, 3)


def test_shift_axes_default_normalise_and_refuse():
    assert shift_axes(3) == [1, 2] and shift_axes(2) == [0, 1] and shift_axes(3, []) == [1, 2]
    assert shift_axes(3, [-1, 0]) == [2, 0]
    with pytest.raises(ValueError, match="out of range"):
        shift_axes(3, [3])
    with pytest.raises(ValueError, match="duplicate"):
        shift_axes(3, [2, -1])


def test_shift_bounds_by_hand():
    assert shift_bounds((48, 48, 32), (1, 2), 0.125, 0.25) == ([0, 6, 4], [0, 12, 8])
    assert shift_bounds((4, 3), (0, 1), 0.01, 0.05) == ([1, 1], [1, 1])  # at least 1 on a shifted axis
    assert shift_bounds((40, 8), (0,), 0.5, 0.25) == ([10, 0], [10, 0])  # lo never above hi


def test_dynamic_label_of_a_shift_invariant_prediction_is_the_fixed_label():
    """Logits that vary along axis 0 only do not change under shifts along axis 1: yd = argmax of the fixed crop;
    a prediction that flips the classes gives the other class on every covered voxel."""
    patch, shift, axes = (4, 6), (0, 2), (1,)
    col = torch.tensor([1.0, -1.0, 2.0, -2.0])[:, None].expand(4, 6 + 4)
    region = torch.stack([col, -col])[None]  # (1, 2 classes, 4, 10)
    fixed = torch.softmax(fixed_crop(region, patch, shift), 1)
    assert torch.equal(dynamic_label(lambda x: x, region, fixed, patch, shift, axes), fixed.argmax(1))
    flipped = dynamic_label(lambda x: x.flip(1), region, fixed, patch, shift, axes)
    assert torch.equal(flipped, 1 - fixed.argmax(1))  # every voxel is covered by a crop shifted by 2 of 6

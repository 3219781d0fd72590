"""benchmarks/error_profile.py: voxel error shares and connected components (hand-computed values)."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "benchmarks"))
from error_profile import component_profile, main, voxel_profile  # noqa: E402


def _case(name, dice, n_pred, n_ref, fp, fn):
    return {"case": name, "metrics": {"1": {"dice": dice, "n_pred": n_pred, "n_ref": n_ref,
                                            "FP": fp, "FN": fn}}}


SUMMARY = {"labels": [1], "per_case": [
    _case("a", 0.8, 10, 8, 3, 1),   # |P|/|R| = 1.25, FP/|R| = 0.375, FN/|R| = 0.125
    _case("b", 0.6, 4, 8, 0, 4),    # 0.5, 0, 0.5
    _case("c", 0.0, 2, 0, 2, 0),    # empty reference: Dice only
]}


def test_voxel_profile_hand_values_leave_empty_references_out_of_the_ratios():
    p = voxel_profile(SUMMARY)
    assert p["dice"] == pytest.approx((0.8 + 0.6 + 0.0) / 3)
    assert p["volume_ratio"] == pytest.approx(0.875)
    assert (p["fp_mean"], p["fp_median"]) == (pytest.approx(0.1875), pytest.approx(0.1875))
    assert (p["fn_mean"], p["fn_median"]) == (pytest.approx(0.3125), pytest.approx(0.3125))
    assert (p["n_cases"], p["n_empty_ref"]) == (3, 1)


def test_voxel_profile_names_the_case_without_counts():
    old = {"labels": [1], "per_case": [{"case": "x.nii.gz", "metrics": {"1": {"dice": 0.5}}}]}
    with pytest.raises(ValueError, match="x.nii.gz"):
        voxel_profile(old)
    with pytest.raises(KeyError, match="label 2"):
        voxel_profile(SUMMARY, label=2)


def test_component_profile_hand_values():
    pred = np.array([1, 1, 1, 0, 0, 1, 0, 0], bool).reshape(1, 1, 8)
    ref = np.array([1, 1, 1, 1, 0, 0, 0, 0], bool).reshape(1, 1, 8)
    p = component_profile(pred, ref)
    assert p["n_components"] == 2
    assert p["dice"] == pytest.approx(2 * 3 / 8)
    assert p["dice_largest"] == pytest.approx(2 * 3 / 7)
    assert p["outside_largest"] == pytest.approx(0.25)
    assert p["volume_ratio"] == pytest.approx(1.0)


def test_component_profile_uses_face_connectivity_and_handles_empty_masks():
    diagonal = np.zeros((1, 2, 2), bool)
    diagonal[0, 0, 0] = diagonal[0, 1, 1] = True
    assert component_profile(diagonal, diagonal)["n_components"] == 2
    empty = component_profile(np.zeros((2, 2, 2), bool), np.zeros((2, 2, 2), bool))
    assert empty["n_components"] == 0 and empty["outside_largest"] == 0.0
    assert np.isnan(empty["volume_ratio"]) and empty["dice"] == 1.0


def _write(path: Path, arr: np.ndarray) -> None:
    sitk.WriteImage(sitk.GetImageFromArray(arr.astype(np.uint8)), str(path))


def test_main_components_row_from_label_maps_and_missing_prediction_error(tmp_path, capsys):
    pred_dir, ref_dir = tmp_path / "pred", tmp_path / "ref"
    pred_dir.mkdir(), ref_dir.mkdir()
    ref = np.zeros((3, 4, 8), np.uint8)
    ref[1, 1, :4] = 1
    pred = ref.copy()
    pred[1, 1, 3] = 0
    pred[1, 1, 6] = 2            # a stray voxel of another foreground label
    _write(ref_dir / "c1.nii.gz", ref), _write(pred_dir / "c1.nii.gz", pred)
    main(["components", str(pred_dir), str(ref_dir)])
    row = capsys.readouterr().out.strip().splitlines()[-1]
    assert row == f"| {pred_dir} | 75.00 | 85.71 | 2 | 25.0% | 1.00 |"
    _write(ref_dir / "c2.nii.gz", ref)
    with pytest.raises(FileNotFoundError, match="c2.nii.gz"):
        main(["components", str(pred_dir), str(ref_dir)])


def test_main_voxels_rows_and_bad_arguments(tmp_path, capsys):
    path = tmp_path / "s.json"
    path.write_text(json.dumps(SUMMARY))
    main(["voxels", f"sup={path}"])
    out = capsys.readouterr().out.splitlines()
    assert out[2] == "| sup | 46.67 | 0.88 | 0.19, 0.19 | 0.31, 0.31 |"
    assert "1 of 3 cases have an empty reference" in out[3]
    old = tmp_path / "old.json"
    old.write_text(json.dumps({"labels": [1], "per_case": [{"case": "x", "metrics": {"1": {"dice": 0.5}}}]}))
    for bad in (str(path), f"sup={tmp_path / 'missing.json'}", f"old={old}"):
        with pytest.raises(SystemExit):
            main(["voxels", bad])
    assert f"{old}: case x: the summary has no voxel counts" in capsys.readouterr().err

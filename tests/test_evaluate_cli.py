"""Tests of the ``nnssl_evaluate`` console script and ``evaluate_folders`` on real Hippocampus labels."""
from __future__ import annotations

import json
import math
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk

from nnssl.evaluation import dice, hd95
from nnssl.evaluation.evaluate import evaluate_folders

N_CASES = 4
HEADER = "| Class | Dice (%) | Jaccard (%) | HD95 (voxel) | ASD (voxel) | HD95 (mm) | ASD (mm) |"


def _exe() -> str:
    cand = Path(sys.executable).parent / "nnssl_evaluate"
    exe = str(cand) if cand.is_file() else shutil.which("nnssl_evaluate")
    if exe is None:
        pytest.fail("console script nnssl_evaluate not installed (pip install -e .)")
    return exe


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([_exe(), *map(str, args)], capture_output=True, encoding="utf-8", errors="replace",
                          timeout=120)


def _read(path: Path) -> np.ndarray:
    return np.rint(sitk.GetArrayFromImage(sitk.ReadImage(str(path)))).astype(np.int32)


def _write_like(arr: np.ndarray, like: Path, out: Path) -> None:
    img = sitk.GetImageFromArray(arr.astype(np.uint8))
    img.CopyInformation(sitk.ReadImage(str(like)))
    sitk.WriteImage(img, str(out))


@pytest.fixture
def folders(hippocampus_dir, tmp_path) -> tuple[Path, Path]:
    """ref/ = copies of real labels; pred/ = shifted labels, class 2 dropped in the last case."""
    ref, pred = tmp_path / "ref", tmp_path / "pred"
    ref.mkdir()
    pred.mkdir()
    files = sorted((hippocampus_dir / "labelsTr").glob("hippocampus_*.nii.gz"))[:N_CASES]
    for i, f in enumerate(files):
        shutil.copy(f, ref / f.name)
        p = np.roll(_read(f), (1, -1), axis=(0, 2))
        if i == N_CASES - 1:
            p[p == 2] = 0
        _write_like(p, f, pred / f.name)
    return ref, pred


def test_cli_json_and_table(folders):
    ref, pred = folders
    res = run_cli("-ref", ref, "-pred", pred, "-np", "2")
    assert res.returncode == 0, res.stderr
    summary = json.loads((pred / "nnssl_summary.json").read_text())
    names = sorted(p.name for p in ref.iterdir())
    assert summary["labels"] == [1, 2] and summary["num_cases"] == N_CASES
    assert [c["case"] for c in summary["per_case"]] == names
    assert summary["cases_with_undefined_distances"] == [names[-1]]
    for c in summary["per_case"]:
        r, p = _read(ref / c["case"]), _read(pred / c["case"])
        assert c["spacing"] == [1.0, 1.0, 1.0]
        for lab in (1, 2):
            m = c["metrics"][str(lab)]
            assert m["dice"] == pytest.approx(dice(p == lab, r == lab), abs=1e-9)
            tp = int(((p == lab) & (r == lab)).sum())
            assert (m["TP"], m["FP"], m["FN"]) == (tp, int((p == lab).sum()) - tp, int((r == lab).sum()) - tp)
            assert (m["n_pred"], m["n_ref"]) == (int((p == lab).sum()), int((r == lab).sum()))
            if c["case"] == names[-1] and lab == 2:
                assert m["hd95_vox"] is None and m["distance_undefined"] and m["pred_empty"]
            else:
                assert m["hd95_vox"] == pytest.approx(hd95(p == lab, r == lab), abs=1e-9)
                assert m["hd95_mm"] == pytest.approx(m["hd95_vox"])  # 1 mm isotropic
    agg = summary["aggregate"]
    d1 = [c["metrics"]["1"]["dice"] for c in summary["per_case"]]
    assert agg["1"]["dice"]["mean"] == pytest.approx(np.mean(d1))
    assert agg["1"]["dice"]["std"] == pytest.approx(np.std(d1))
    assert agg["2"]["hd95_vox"]["n_undefined"] == 1 and agg["2"]["hd95_vox"]["n"] == N_CASES - 1
    assert agg["2"]["dice"]["n_undefined"] == 0
    per_case_mean = [np.mean([c["metrics"][k]["dice"] for k in ("1", "2")]) for c in summary["per_case"]]
    assert agg["mean"]["dice"]["mean"] == pytest.approx(np.mean(per_case_mean))
    out = res.stdout
    assert HEADER in out
    mean = agg["mean"]["dice"]
    assert f"| mean | {100 * mean['mean']:.2f} ± {100 * mean['std']:.2f} |" in out
    assert f"1 of {N_CASES} cases" in out


def test_cli_dataset_labels(folders, nnunet_env):
    ref, pred = folders
    ds = nnunet_env["nnUNet_raw"] / "Dataset004_Hippocampus"
    ds.mkdir()
    labels = {"background": 0, "Anterior": 1, "Posterior": 2, "ignore": 3}
    (ds / "dataset.json").write_text(json.dumps({"labels": labels, "file_ending": ".nii.gz"}))
    out = ref.parent / "out.json"
    res = run_cli("-ref", ref, "-pred", pred, "-d", "4", "-np", "1", "-o", out)
    assert res.returncode == 0, res.stderr
    summary = json.loads(out.read_text())
    assert summary["labels"] == [1, 2] and set(summary["aggregate"]) == {"1", "2", "mean"}
    assert "| Anterior (1) |" in res.stdout and "| Posterior (2) |" in res.stdout
    assert not (pred / "nnssl_summary.json").exists()


def test_cli_explicit_labels_and_extra_prediction(folders):
    ref, pred = folders
    shutil.copy(next(pred.iterdir()), pred / "extra_case.nii.gz")
    res = run_cli("-ref", ref, "-pred", pred, "-l", "2", "-np", "1")
    assert res.returncode == 0, res.stderr
    assert "extra_case.nii.gz" in res.stderr  # warned about and ignored
    summary = json.loads((pred / "nnssl_summary.json").read_text())
    assert summary["labels"] == [2] and summary["num_cases"] == N_CASES


def test_cli_missing_prediction(folders):
    ref, pred = folders
    victim = sorted(pred.iterdir())[1]
    victim.unlink()
    res = run_cli("-ref", ref, "-pred", pred, "-np", "1")
    assert res.returncode != 0
    assert victim.name in res.stderr and "missing" in res.stderr
    assert not (pred / "nnssl_summary.json").exists()


def test_cli_shape_mismatch(folders):
    ref, pred = folders
    victim = sorted(pred.iterdir())[0]
    arr = _read(victim)[:-2]
    img = sitk.GetImageFromArray(arr.astype(np.uint8))
    sitk.WriteImage(img, str(victim))
    res = run_cli("-ref", ref, "-pred", pred, "-np", "2")
    assert res.returncode != 0
    assert "shape" in res.stderr and str(victim) in res.stderr and str(ref / victim.name) in res.stderr


def test_cli_refuses_overwrite(folders):
    ref, pred = folders
    out = pred / "nnssl_summary.json"
    out.write_text("sentinel")
    res = run_cli("-ref", ref, "-pred", pred, "-np", "1")
    assert res.returncode != 0 and "--overwrite" in res.stderr and str(out) in res.stderr
    assert out.read_text() == "sentinel"
    res = run_cli("-ref", ref, "-pred", pred, "-np", "1", "--overwrite")
    assert res.returncode == 0, res.stderr
    assert json.loads(out.read_text())["num_cases"] == N_CASES


def test_cli_missing_folder_and_help(tmp_path):
    res = run_cli("-ref", tmp_path / "nope", "-pred", tmp_path)
    assert res.returncode != 0 and str(tmp_path / "nope") in res.stderr
    res = run_cli("-h")
    assert res.returncode == 0 and "-ref" in res.stdout and "--overwrite" in res.stdout


def test_evaluate_folders_anisotropic_spacing(folders):
    """mm distances use the reference spacing, reversed to numpy axis order."""
    mb = pytest.importorskip("medpy.metric.binary")
    ref, pred = folders
    for f in ref.iterdir():
        img = sitk.ReadImage(str(f))
        img.SetSpacing((2.0, 1.0, 0.5))  # (x, y, z)
        sitk.WriteImage(img, str(f))
    s = evaluate_folders(ref, pred, labels=[1], num_processes=1, verbose=False)
    c = s["per_case"][0]
    assert c["spacing"] == [0.5, 1.0, 2.0]
    r, p = _read(ref / c["case"]) == 1, _read(pred / c["case"]) == 1
    assert c["metrics"][1]["hd95_mm"] == pytest.approx(mb.hd95(p, r, (0.5, 1.0, 2.0)), abs=1e-3)
    assert c["metrics"][1]["asd_mm"] == pytest.approx(mb.asd(p, r, (0.5, 1.0, 2.0)), abs=1e-3)
    assert not math.isclose(c["metrics"][1]["asd_mm"], c["metrics"][1]["asd_vox"])


def test_class_absent_from_a_case_counts_zero_voxels(tmp_path):
    """Default labels are the union over all references; a class absent from both masks of one case is
    both-empty there (Dice 1, distances 0) with zero voxel counts, and counted normally where present."""
    ref, pred = tmp_path / "ref", tmp_path / "pred"
    ref.mkdir()
    pred.mkdir()
    a = np.zeros((4, 5, 6), np.uint8)
    a[1:3, 1:3, 1:4] = 1  # 12 voxels of class 1
    b = a.copy()
    b[3, 3:5, 4:6] = 2    # case b: 4 voxels of class 2 in the reference ...
    pb = b.copy()
    pb[3, 3, 4] = 0       # ... of which the prediction misses one
    for name, r, p in (("a.nii.gz", a, a), ("b.nii.gz", b, pb)):
        sitk.WriteImage(sitk.GetImageFromArray(r), str(ref / name))
        sitk.WriteImage(sitk.GetImageFromArray(p), str(pred / name))
    summary = evaluate_folders(ref, pred, num_processes=1, verbose=False)
    assert summary["labels"] == [1, 2]
    m = {c["case"]: c["metrics"] for c in summary["per_case"]}
    assert m["a.nii.gz"][2]["dice"] == 1.0 and m["a.nii.gz"][2]["hd95_mm"] == 0.0
    assert {k: m["a.nii.gz"][2][k] for k in ("TP", "FP", "FN", "n_pred", "n_ref")} == \
           {"TP": 0, "FP": 0, "FN": 0, "n_pred": 0, "n_ref": 0}
    assert {k: m["b.nii.gz"][2][k] for k in ("TP", "FP", "FN", "n_pred", "n_ref")} == \
           {"TP": 3, "FP": 0, "FN": 1, "n_pred": 3, "n_ref": 4}
    assert m["b.nii.gz"][1]["TP"] == m["b.nii.gz"][1]["n_ref"] == 12 and m["b.nii.gz"][1]["FP"] == 0
    saved = json.loads((pred / "nnssl_summary.json").read_text())
    assert saved["per_case"][1]["metrics"]["2"]["FN"] == 1

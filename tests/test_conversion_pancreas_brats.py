"""Tests of the Pancreas-CT and BraTS 2019 converters on tiny synthetic inputs in the original layouts."""
from __future__ import annotations

import hashlib
import json
import re
import shutil
from pathlib import Path

import h5py
import numpy as np
import pytest
import SimpleITK as sitk

from nnssl.data.raw import load_split
from nnssl.dataset_conversion import brats, pancreas
from realdata import tree_digest, verify_integrity

SPACING = (0.7, 0.7, 2.5)
ORIGIN = (-12.0, 20.5, 30.0)
SHAPE = (8, 16, 16)  # numpy (z, y, x)


def names(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


# ----------------------------------------------------------------------------------------------- Pancreas
def write_dicom_series(volume: np.ndarray, folder: Path, spacing=SPACING, origin=ORIGIN) -> None:
    """int16 (z, y, x) volume -> one CT DICOM series (one file per slice) that GDCM can order."""
    folder.mkdir(parents=True, exist_ok=True)
    uid = f"1.2.826.0.1.3680043.2.1125.{abs(hash(str(folder))) % 10**12}"
    writer = sitk.ImageFileWriter()
    writer.KeepOriginalImageUIDOn()
    order = list(range(volume.shape[0]))[::-1]  # write in reverse so that GDCM must sort by position
    for k in order:
        sl = sitk.GetImageFromArray(volume[k:k + 1])
        sl.SetSpacing(spacing)
        z = origin[2] + k * spacing[2]
        tags = {"0008|0060": "CT", "0010|0020": folder.parent.parent.name, "0020|000d": uid + ".1",
                "0020|000e": uid + ".2", "0020|0032": "\\".join(map(str, (origin[0], origin[1], z))),
                "0020|0037": "1\\0\\0\\0\\1\\0", "0020|0013": str(k + 1), "0028|0030": f"{spacing[1]}\\{spacing[0]}",
                "0018|0050": str(spacing[2]), "0008|0016": "1.2.840.10008.5.1.4.1.1.2",
                "0008|0018": f"{uid}.3.{k + 1}", "0028|1052": "0", "0028|1053": "1"}
        for t, v in tags.items():
            sl.SetMetaData(t, v)
        writer.SetFileName(str(folder / f"{k + 1:03d}.dcm"))
        writer.Execute(sl)


def pancreas_volume(n: int) -> np.ndarray:
    rng = np.random.default_rng(n)
    return rng.integers(-1000, 1000, SHAPE).astype(np.int16)


def pancreas_label(n: int, shape=SHAPE) -> np.ndarray:
    lab = np.zeros(shape, np.uint8)
    lab[2:5, 3:9, 4:4 + n] = 1
    return lab


def write_label(arr: np.ndarray, path: Path, spacing=SPACING, origin=ORIGIN) -> None:
    img = sitk.GetImageFromArray(arr)
    img.SetSpacing(spacing)
    img.SetOrigin(origin)
    path.parent.mkdir(parents=True, exist_ok=True)
    sitk.WriteImage(img, str(path))


@pytest.fixture
def pancreas_tcia(tmp_path) -> Path:
    """TCIA layout with patients 1, 2, 3 (nested study/series folders) and labels."""
    root = tmp_path / "Pancreas-CT"
    for n in (1, 2, 3):
        write_dicom_series(pancreas_volume(n), root / f"PANCREAS_{n:04d}" / "11-24-2015-PANCREAS0001-Pancreas"
                           / "Pancreas-99667")
        write_label(pancreas_label(n), tmp_path / "labels" / f"label{n:04d}.nii.gz")
    return root


def test_cli_help(capsys):
    for mod, opts in ((pancreas, ["--labels", "--h5", "--spacing", "--labeled", "--train_ids", "--test_ids",
                                  "--overwrite", "-np", "Hounsfield"]),
                      (brats, ["--labels", "--split_lists", "--seed", "--num_train", "--num_val", "--labeled",
                               "--overwrite", "-np", "t1ce"])):
        with pytest.raises(SystemExit) as e:
            mod.main(["-h"])
        assert e.value.code == 0
        out = capsys.readouterr().out
        for o in opts:
            assert o in out, (mod.__name__, o)


def test_pancreas_dicom(pancreas_tcia, nnunet_env, monkeypatch, capsys):
    labels = pancreas_tcia.parent / "labels"
    rc = pancreas.main(["-i", str(pancreas_tcia), "--labels", str(labels), "-d", "510", "--labeled", "1",
                        "--train_ids", "1-2", "--test_ids", "3-4", "-np", "1"])
    cap = capsys.readouterr()
    assert rc == 0, cap.err
    assert "converted 3/3" in cap.out and "pancreas_0004" in cap.out  # absent id noted
    out = nnunet_env["nnUNet_raw"] / "Dataset510_Pancreas"
    assert names(out / "imagesTr") == ["pancreas_0001_0000.nii.gz"]
    assert names(out / "labelsTr") == ["pancreas_0001.nii.gz"]
    assert names(out / "imagesUnlabeled") == ["pancreas_0002_0000.nii.gz"]
    assert names(out / "imagesTs") == ["pancreas_0003_0000.nii.gz"]
    assert names(out / "labelsTs") == ["pancreas_0003.nii.gz"]
    dj = json.loads((out / "dataset.json").read_text())
    assert dj["channel_names"] == {"0": "CT"} and dj["labels"] == {"background": 0, "pancreas": 1}
    assert (dj["numTraining"], dj["numUnlabeled"], dj["numTest"]) == (1, 1, 1)
    split = load_split(out)
    assert (split["labeled"], split["unlabeled"], split["test"]) == (["pancreas_0001"], ["pancreas_0002"],
                                                                     ["pancreas_0003"])
    assert split["converter"] == "nnssl_convert_pancreas" and split["skipped_absent_ids"] == ["pancreas_0004"]
    # HU values and geometry preserved (the DICOM slices were written in reverse order)
    for n, img_dir, lab_dir in ((1, "imagesTr", "labelsTr"), (3, "imagesTs", "labelsTs")):
        img = sitk.ReadImage(str(out / img_dir / f"pancreas_{n:04d}_0000.nii.gz"))
        lab = sitk.ReadImage(str(out / lab_dir / f"pancreas_{n:04d}.nii.gz"))
        np.testing.assert_array_equal(sitk.GetArrayFromImage(img), pancreas_volume(n))
        np.testing.assert_allclose(img.GetSpacing(), SPACING, rtol=1e-5)
        np.testing.assert_allclose(img.GetOrigin(), ORIGIN, atol=1e-4)
        np.testing.assert_allclose(img.GetDirection(), np.eye(3).ravel(), atol=1e-6)
        np.testing.assert_array_equal(sitk.GetArrayFromImage(lab), pancreas_label(n))
        np.testing.assert_allclose(lab.GetOrigin(), ORIGIN, atol=1e-4)
    verify_integrity(out, monkeypatch)


def test_pancreas_label_resampled_when_direction_differs(pancreas_tcia, nnunet_env):
    """A label stored with the z axis flipped (another direction/origin) is put onto the DICOM grid."""
    labels = pancreas_tcia.parent / "labels"
    arr = pancreas_label(1)
    img = sitk.GetImageFromArray(arr[::-1].copy())
    img.SetSpacing(SPACING)
    img.SetDirection((1, 0, 0, 0, 1, 0, 0, 0, -1))
    img.SetOrigin((ORIGIN[0], ORIGIN[1], ORIGIN[2] + (SHAPE[0] - 1) * SPACING[2]))
    sitk.WriteImage(img, str(labels / "label0001.nii.gz"))
    out = pancreas.convert_pancreas(pancreas_tcia, 511, labels_dir=labels, labeled=1, train_ids="1",
                                    test_ids="", num_processes=1)
    lab = sitk.ReadImage(str(out / "labelsTr" / "pancreas_0001.nii.gz"))
    np.testing.assert_array_equal(sitk.GetArrayFromImage(lab), arr)
    np.testing.assert_allclose(lab.GetDirection(), np.eye(3).ravel(), atol=1e-6)


@pytest.mark.parametrize("problem,match", [
    ("missing_label", r"missing label file\(s\) in .*labels for: pancreas_0002 \(label0002.nii.gz\)"),
    ("shape", r"image/label shape mismatch: image .*PANCREAS_0001 \(16, 16, 8\) vs label .*label0001.nii.gz "
              r"\(16, 16, 7\)"),
    ("spacing", r"image/label spacing mismatch: image .*PANCREAS_0001 .* vs label .*label0001.nii.gz"),
    ("duplicate", r"duplicate case id\(s\) in .*Pancreas-CT: pancreas_0001: .*PANCREAS_0001, .*PANCREAS_001"),
    ("two_series", r"2 DICOM series found below .*PANCREAS_0001"),
])
def test_pancreas_bad_input(pancreas_tcia, nnunet_env, capsys, problem, match):
    labels = pancreas_tcia.parent / "labels"
    if problem == "missing_label":
        (labels / "label0002.nii.gz").unlink()
    elif problem == "shape":
        write_label(pancreas_label(1, (7, 16, 16)), labels / "label0001.nii.gz")
    elif problem == "spacing":
        write_label(pancreas_label(1), labels / "label0001.nii.gz", spacing=(0.7, 0.7, 3.0))
    elif problem == "duplicate":
        shutil.copytree(pancreas_tcia / "PANCREAS_0001", pancreas_tcia / "PANCREAS_001")
    elif problem == "two_series":
        write_dicom_series(pancreas_volume(9), pancreas_tcia / "PANCREAS_0001" / "other" / "series2")
    rc = pancreas.main(["-i", str(pancreas_tcia), "--labels", str(labels), "-d", "512", "--labeled", "2",
                        "--train_ids", "1-2", "--test_ids", "3", "-np", "1"])
    err = capsys.readouterr().err
    assert rc == 1
    assert re.search("error: .*" + match, err), err
    assert not (nnunet_env["nnUNet_raw"] / "Dataset512_Pancreas").exists()
    assert not [p for p in nnunet_env["nnUNet_raw"].iterdir() if p.name.startswith(".")]


def test_pancreas_h5_and_existing_target(tmp_path, nnunet_env, monkeypatch, capsys):
    root = tmp_path / "Pancreas_h5"
    root.mkdir()
    rng = np.random.default_rng(0)
    arrays = {}
    for n in (1, 2, 3):
        img = rng.random((12, 10, 6)).astype(np.float32)  # (x, y, z)
        lab = np.zeros((12, 10, 6), np.uint8)
        lab[3:6, 2:5, 1:4] = 1
        arrays[n] = (img, lab)
        path = root / f"image{n:04d}_norm.h5" if n != 3 else root / "PANCREAS_0003" / "mri_norm2.h5"
        path.parent.mkdir(exist_ok=True)
        with h5py.File(path, "w") as f:
            f["image"], f["label"] = img, lab
    argv = ["-i", str(root), "--h5", "--spacing", "0.8", "0.8", "1.5", "-d", "513", "--labeled", "1",
            "--train_ids", "1-2", "--test_ids", "3", "-np", "2"]
    assert pancreas.main(argv) == 0, capsys.readouterr().err
    out = nnunet_env["nnUNet_raw"] / "Dataset513_Pancreas"
    dj = json.loads((out / "dataset.json").read_text())
    assert dj["channel_names"] == {"0": "CT_preprocessed"}
    img = sitk.ReadImage(str(out / "imagesTs" / "pancreas_0003_0000.nii.gz"))
    assert img.GetSize() == (12, 10, 6) and np.allclose(img.GetSpacing(), (0.8, 0.8, 1.5))
    np.testing.assert_array_equal(sitk.GetArrayFromImage(img).transpose(2, 1, 0), arrays[3][0])
    lab = sitk.ReadImage(str(out / "labelsTr" / "pancreas_0001.nii.gz"))
    np.testing.assert_array_equal(sitk.GetArrayFromImage(lab).transpose(2, 1, 0), arrays[1][1])
    assert names(out / "imagesUnlabeled") == ["pancreas_0002_0000.nii.gz"]
    verify_integrity(out, monkeypatch)
    # existing target: refused without --overwrite, untouched; replaced with it
    before = tree_digest(out)
    capsys.readouterr()
    assert pancreas.main(argv) == 1
    assert "already exists; pass --overwrite" in capsys.readouterr().err
    assert tree_digest(out) == before
    assert pancreas.main(argv[:-4] + ["--labeled", "2", "--overwrite", "-np", "1"]) == 0
    assert load_split(out)["labeled"] == ["pancreas_0001", "pancreas_0002"]


# ----------------------------------------------------------------------------------------------- BraTS
BRATS_SPACING, BRATS_ORIGIN = (1.0, 1.0, 1.0), (-90.0, 126.0, -72.0)
BRATS_DIRECTION = (-1.0, 0.0, 0.0, 0.0, -1.0, 0.0, 0.0, 0.0, 1.0)
BRATS_SHAPE = (6, 7, 8)
MOD_VALUE = {"t1": 10.0, "t1ce": 20.0, "t2": 30.0, "flair": 40.0}


def brats_seg(k: int) -> np.ndarray:
    seg = np.zeros(BRATS_SHAPE, np.uint8)
    seg[1:3, 1:3, 1:3] = 2
    seg[2, 2, 2] = 1
    seg[2, 2, 3 + k % 3] = 4
    return seg


def write_brats_case(root: Path, grade: str, case: str, k: int) -> None:
    d = root / grade / case
    d.mkdir(parents=True, exist_ok=True)
    for m, v in MOD_VALUE.items():
        arr = np.full(BRATS_SHAPE, v + k, np.float32)
        _write(arr, d / f"{case}_{m}.nii.gz")
    _write(brats_seg(k), d / f"{case}_seg.nii.gz")


def _write(arr: np.ndarray, path: Path) -> None:
    img = sitk.GetImageFromArray(arr)
    img.SetSpacing(BRATS_SPACING)
    img.SetOrigin(BRATS_ORIGIN)
    img.SetDirection(BRATS_DIRECTION)
    sitk.WriteImage(img, str(path))


@pytest.fixture
def brats_tree(tmp_path) -> tuple[Path, list[str]]:
    root = tmp_path / "MICCAI_BraTS_2019_Data_Training"
    ids = []
    for k in range(6):
        grade = "HGG" if k < 4 else "LGG"
        case = f"BraTS19_{'TCIA' if k % 2 else 'CBICA'}_{k:03d}_1"
        write_brats_case(root, grade, case, k)
        ids.append(case)
    return root, ids


def write_lists(tmp_path: Path, train, val, test) -> list[str]:
    paths = []
    for name, ids in (("train.txt", train), ("val.txt", val), ("test.txt", test)):
        (tmp_path / name).write_text("\n".join(ids) + "\n")
        paths.append(str(tmp_path / name))
    return paths


def test_brats_split_lists(brats_tree, tmp_path, nnunet_env, monkeypatch, capsys):
    root, ids = brats_tree
    lists = write_lists(tmp_path, [ids[3], ids[0], ids[4]], [ids[1]], [ids[5], ids[2]])
    rc = brats.main(["-i", str(root), "-d", "520", "--labeled", "2", "--split_lists", *lists, "-np", "2"])
    cap = capsys.readouterr()
    assert rc == 0, cap.err
    assert "converted 6/6" in cap.out
    out = nnunet_env["nnUNet_raw"] / "Dataset520_BraTS2019"
    labeled, unlabeled, test = sorted([ids[3], ids[0]]), [ids[4]], sorted([ids[1], ids[5], ids[2]])
    assert names(out / "imagesTr") == sorted(f"{i}_{c:04d}.nii.gz" for i in labeled for c in range(4))
    assert names(out / "labelsTr") == [f"{i}.nii.gz" for i in labeled]
    assert names(out / "imagesUnlabeled") == [f"{ids[4]}_{c:04d}.nii.gz" for c in range(4)]
    assert names(out / "imagesTs") == sorted(f"{i}_{c:04d}.nii.gz" for i in test for c in range(4))
    assert names(out / "labelsTs") == [f"{i}.nii.gz" for i in test]
    dj = json.loads((out / "dataset.json").read_text())
    assert dj["channel_names"] == {"0": "T1", "1": "T1ce", "2": "T2", "3": "Flair"}
    assert dj["labels"] == {"background": 0, "whole_tumor": 1}
    assert (dj["numTraining"], dj["numUnlabeled"], dj["numTest"]) == (2, 1, 3)
    split = load_split(out)
    assert (split["labeled"], split["unlabeled"], split["test"]) == (labeled, unlabeled, test)
    assert split["val"] == [ids[1]] and split["test_only"] == sorted([ids[5], ids[2]]) and split["seed"] is None
    # channel order, label mapping and geometry
    k = 3
    for c, m in enumerate(brats.MODALITIES):
        img = sitk.ReadImage(str(out / "imagesTr" / f"{ids[k]}_{c:04d}.nii.gz"))
        src = sitk.ReadImage(str(root / "HGG" / ids[k] / f"{ids[k]}_{m}.nii.gz"))
        assert np.all(sitk.GetArrayFromImage(img) == MOD_VALUE[m] + k)
        assert img.GetSpacing() == src.GetSpacing() and img.GetOrigin() == src.GetOrigin()
        assert img.GetDirection() == src.GetDirection()
    lab = sitk.ReadImage(str(out / "labelsTr" / f"{ids[k]}.nii.gz"))
    np.testing.assert_array_equal(sitk.GetArrayFromImage(lab), (brats_seg(k) > 0).astype(np.uint8))
    assert lab.GetOrigin() == BRATS_ORIGIN and lab.GetDirection() == BRATS_DIRECTION
    verify_integrity(out, monkeypatch)


def test_brats_region_labels(brats_tree, tmp_path, nnunet_env, monkeypatch):
    """--labels regions: BraTS 0/2/1/4 stored as 0/1/2/3 and nnU-Net region labels in dataset.json."""
    root, ids = brats_tree
    lists = write_lists(tmp_path, [ids[0], ids[1]], [ids[2]], [ids[3]])
    rc = brats.main(["-i", str(root), "-d", "523", "--labels", "regions", "--labeled", "1",
                     "--split_lists", *lists, "-np", "1"])
    assert rc == 0
    out = nnunet_env["nnUNet_raw"] / "Dataset523_BraTS2019"
    dj = json.loads((out / "dataset.json").read_text())
    assert dj["labels"] == {"background": 0, "whole_tumor": [1, 2, 3], "tumor_core": [2, 3],
                            "enhancing_tumor": [3]}
    assert dj["regions_class_order"] == [1, 2, 3]
    for folder, k in (("labelsTr", 0), ("labelsTs", 2)):
        got = sitk.GetArrayFromImage(sitk.ReadImage(str(out / folder / f"{ids[k]}.nii.gz")))
        seg = brats_seg(k)
        expected = np.select([seg == 2, seg == 1, seg == 4], [1, 2, 3], 0)
        np.testing.assert_array_equal(got, expected)
        assert set(np.unique(got).tolist()) == {0, 1, 2, 3}
    verify_integrity(out, monkeypatch)


def test_brats_seeded_split(brats_tree, nnunet_env):
    root, ids = brats_tree
    out = brats.convert_brats(root, 521, labeled=1, num_train=3, num_val=1, seed=7, num_processes=1)
    split = load_split(out)
    train, val, test = brats.draw_split(ids, 3, 1, None, 7)
    assert len(test) == 2 and sorted(train + val + test) == sorted(ids)
    assert split["labeled"] == [train[0]] and split["unlabeled"] == sorted(train[1:])
    assert split["val"] == val and split["test_only"] == sorted(test) and split["seed"] == 7
    assert brats.draw_split(ids, 3, 1, None, 7) == (train, val, test)
    assert brats.draw_split(ids, 3, 1, None, 8) != (train, val, test)


@pytest.mark.parametrize("problem,match", [
    ("missing_modality", r"missing modality/label file\(s\): .*BraTS19_CBICA_000_1_t1ce.nii.gz"),
    ("shape", r"modality shape mismatch: .*BraTS19_CBICA_000_1_flair.nii.gz \(8, 7, 5\) vs "
              r".*BraTS19_CBICA_000_1_t1.nii.gz \(8, 7, 6\)"),
    ("seg_shape", r"image/label shape mismatch: .*BraTS19_CBICA_000_1_seg.nii.gz"),
    ("label_value", r"label file .*BraTS19_CBICA_000_1_seg.nii.gz contains unexpected value\(s\) \[3\]"),
    ("duplicate", r"duplicate case id\(s\) across HGG/LGG: BraTS19_CBICA_000_1 \(.*HGG.*, .*LGG.*\)"),
    ("existing", r"already exists; pass --overwrite"),
])
def test_brats_bad_input(brats_tree, tmp_path, nnunet_env, capsys, problem, match):
    root, ids = brats_tree
    case_dir = root / "HGG" / ids[0]
    if problem == "missing_modality":
        (case_dir / f"{ids[0]}_t1ce.nii.gz").unlink()
    elif problem == "shape":
        _write(np.zeros((5, 7, 8), np.float32), case_dir / f"{ids[0]}_flair.nii.gz")
    elif problem == "seg_shape":
        _write(np.zeros((5, 7, 8), np.uint8), case_dir / f"{ids[0]}_seg.nii.gz")
    elif problem == "label_value":
        seg = brats_seg(0)
        seg[0, 0, 0] = 3
        _write(seg, case_dir / f"{ids[0]}_seg.nii.gz")
    elif problem == "duplicate":
        shutil.copytree(case_dir, root / "LGG" / ids[0])
    target = nnunet_env["nnUNet_raw"] / "Dataset522_BraTS2019"
    if problem == "existing":
        target.mkdir()
        (target / "keep.txt").write_text("existing")
    lists = write_lists(tmp_path, [ids[0], ids[1]], [ids[2]], [ids[3]])
    rc = brats.main(["-i", str(root), "-d", "522", "--labeled", "1", "--split_lists", *lists, "-np", "1"])
    err = capsys.readouterr().err
    assert rc == 1
    assert re.search("error: .*" + match, err), err
    if problem == "existing":
        assert tree_digest(target) == {"keep.txt": hashlib.sha256(b"existing").hexdigest()}
    else:
        assert not target.exists()
    assert not [p for p in nnunet_env["nnUNet_raw"].iterdir() if p.name.startswith(".")]

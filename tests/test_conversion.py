"""Tests of the LA and MSD converters (nnssl.dataset_conversion) on a few real cases and synthetic tasks."""
from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
from pathlib import Path

import h5py
import numpy as np
import pytest
import SimpleITK as sitk

from nnssl.data.raw import get_unlabeled_cases, load_split
from nnssl.data.validation import validate_unlabeled
from nnssl.dataset_conversion import la, msd
from nnssl.dataset_conversion.common import ConversionError, read_id_list
from realdata import make_la_subset, make_msd_subset, tree_digest, verify_integrity, write_msd_json

HIPPO_FLOAT_LABEL = "hippocampus_243"  # stored as float32 in the distributed data


# ----------------------------------------------------------------------------------------------- helpers
def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(list(args), capture_output=True, encoding="utf-8", errors="replace", timeout=120)


def no_partial_folders(root: Path) -> bool:
    return not [p for p in root.iterdir() if p.name.startswith(".")]


@pytest.fixture
def msd_subset(hippocampus_dir, tmp_path) -> Path:
    """MSD-layout copy of 8 real Hippocampus cases (incl. one float label)."""
    ids = sorted(Path(t["image"]).name[:-7] for t in json.loads((hippocampus_dir / "dataset.json").read_text())
                 ["training"])[:7] + [HIPPO_FLOAT_LABEL]
    task = tmp_path / "Task04_Hippocampus"
    make_msd_subset(hippocampus_dir, task, len(ids), ids)
    return task


@pytest.fixture
def la_subset(la_dir, tmp_path) -> Path:
    """UA-MT-layout copy of 4 real LA cases with a 4-line train.list."""
    make_la_subset(la_dir, tmp_path / "LA", 4)
    return tmp_path / "LA"


def make_synthetic_task(task: Path, n: int = 4, channels: int = 2, label_fn=None, test: int = 0) -> list[str]:
    """Tiny MSD task with 4D (channels > 1) images, non-trivial geometry; returns case ids."""
    rng = np.random.default_rng(0)
    for sub in ("imagesTr", "labelsTr", "imagesTs"):
        (task / sub).mkdir(parents=True, exist_ok=True)
    ids = [f"synth_{k:03d}" for k in range(n)]
    direction = (0.0, 1.0, 0.0, -1.0, 0.0, 0.0, 0.0, 0.0, 1.0)
    for k, i in enumerate(ids + [f"synthtest_{k:03d}" for k in range(test)]):
        arr = rng.random((channels, 5, 6, 7)).astype(np.float32) if channels > 1 else rng.random((5, 6, 7))
        img = sitk.GetImageFromArray(arr.astype(np.float32), isVector=False)
        d4 = np.eye(4)
        d4[:3, :3] = np.reshape(direction, (3, 3))
        img.SetSpacing((0.5, 0.75, 2.0, 1.0)[:img.GetDimension()])
        img.SetOrigin((10.0, -3.0, 4.5, 0.0)[:img.GetDimension()])
        img.SetDirection((d4 if channels > 1 else d4[:3, :3]).ravel().tolist())
        folder = "imagesTr" if i in ids else "imagesTs"
        sitk.WriteImage(img, str(task / folder / f"{i}.nii.gz"))
        if i in ids:
            lab = (rng.random((5, 6, 7)) > 0.5).astype(np.uint8)
            lab = label_fn(i, lab) if label_fn else lab
            limg = sitk.GetImageFromArray(lab)
            limg.SetSpacing((0.5, 0.75, 2.0))
            limg.SetOrigin((10.0, -3.0, 4.5))
            limg.SetDirection(direction)
            sitk.WriteImage(limg, str(task / "labelsTr" / f"{i}.nii.gz"))
    modality = {str(c): f"mod{c}" for c in range(channels)}
    write_msd_json(task, ids, modality, {"0": "background", "1": "thing"},
                   test=[f"synthtest_{k:03d}" for k in range(test)])
    return ids


# ----------------------------------------------------------------------------------------------- CLI help
@pytest.mark.parametrize("script,options", [
    ("nnssl_convert_la", ["--labeled", "--test_list", "--max_unlabeled", "--test", "-np", "--overwrite", "0.625"]),
    ("nnssl_convert_msd", ["--labeled_fraction", "--test_fraction", "--seed", "--include_msd_test_as_unlabeled",
                           "--max_unlabeled", "--overwrite"]),
])
def test_cli_help(script, options):
    r = run(script, "-h")
    assert r.returncode == 0, r.stderr
    for o in options:
        assert o in r.stdout, (o, r.stdout)


# ----------------------------------------------------------------------------------------------- LA
def test_la_conversion(la_subset, nnunet_env, monkeypatch):
    ids = read_id_list(la_subset / "train.list")
    r = run("nnssl_convert_la", "-i", str(la_subset), "-d", "501", "--labeled", "2", "--test", "1", "-np", "2")
    assert r.returncode == 0, r.stderr
    assert "converted 4/4" in r.stdout
    out = nnunet_env["nnUNet_raw"] / "Dataset501_LA"
    assert sorted(p.name for p in (out / "imagesTr").iterdir()) == [f"{i}_0000.nii.gz" for i in sorted(ids[:2])]
    assert sorted(p.name for p in (out / "labelsTr").iterdir()) == [f"{i}.nii.gz" for i in sorted(ids[:2])]
    assert [p.name for p in (out / "imagesUnlabeled").iterdir()] == [f"{ids[2]}_0000.nii.gz"]
    assert [p.name for p in (out / "imagesTs").iterdir()] == [f"{ids[3]}_0000.nii.gz"]
    assert [p.name for p in (out / "labelsTs").iterdir()] == [f"{ids[3]}.nii.gz"]
    dj = json.loads((out / "dataset.json").read_text())
    assert dj["channel_names"] == {"0": "MRI"} and dj["labels"] == {"background": 0, "left_atrium": 1}
    assert (dj["numTraining"], dj["numUnlabeled"], dj["numTest"], dj["file_ending"]) == (2, 1, 1, ".nii.gz")
    split = load_split(out)
    assert (split["labeled"], split["unlabeled"], split["test"]) == (sorted(ids[:2]), [ids[2]], [ids[3]])
    assert split["converter"] == "nnssl_convert_la" and split["arguments"]["labeled"] == 2
    assert split["source_path"] == str(la_subset)
    # geometry and orientation: ITK x axis == h5 axis 0, spacing 0.625
    with h5py.File(la_subset / la.CASE_FOLDER / ids[0] / la.H5_NAME) as f:
        h5_img, h5_lab = f["image"][:], f["label"][:]
    img = sitk.ReadImage(str(out / "imagesTr" / f"{ids[0]}_0000.nii.gz"))
    lab = sitk.ReadImage(str(out / "labelsTr" / f"{ids[0]}.nii.gz"))
    assert img.GetSize() == h5_img.shape and np.allclose(img.GetSpacing(), 0.625)
    np.testing.assert_array_equal(sitk.GetArrayFromImage(img).transpose(2, 1, 0), h5_img)
    lab_arr = sitk.GetArrayFromImage(lab)
    assert lab_arr.dtype == np.uint8 and set(np.unique(lab_arr)) == {0, 1}
    np.testing.assert_array_equal(lab_arr.transpose(2, 1, 0), h5_lab)
    verify_integrity(out, monkeypatch)
    assert validate_unlabeled(out, num_processes=1) == []
    assert list(get_unlabeled_cases(out)) == [ids[2]]


def test_la_test_list_and_max_unlabeled(la_subset, nnunet_env):
    ids = read_id_list(la_subset / "train.list")
    (la_subset / "train.list").write_text("\n".join(ids[:3]) + "\n")
    (la_subset / "test.list").write_text(ids[3] + "\n")
    with pytest.raises(ConversionError, match="cannot be combined"):
        la.convert_la(la_subset, 501, labeled=1, test=1)
    out = la.convert_la(la_subset, 501, labeled=1, max_unlabeled=1, num_processes=1)
    split = load_split(out)
    assert (split["labeled"], split["unlabeled"], split["test"]) == ([ids[0]], [ids[1]], [ids[3]])
    assert split["test_source"].endswith("test.list")


def test_la_missing_label_key_leaves_existing_output(la_subset, nnunet_env):
    ids = read_id_list(la_subset / "train.list")
    out = la.convert_la(la_subset, 501, labeled=1, max_unlabeled=0, num_processes=1)
    before = tree_digest(out)
    bad = la_subset / la.CASE_FOLDER / ids[1] / la.H5_NAME
    with h5py.File(bad, "r+") as f:
        del f["label"]
    assert la.main(["-i", str(la_subset), "-d", "501", "--labeled", "2", "--overwrite", "-np", "1"]) == 1
    with pytest.raises(ConversionError, match=f"{bad}.*no dataset 'label'"):
        la.convert_la(la_subset, 501, labeled=2, overwrite=True, num_processes=1)
    assert tree_digest(out) == before
    assert no_partial_folders(nnunet_env["nnUNet_raw"])


def test_la_bad_lists(la_subset, nnunet_env):
    ids = read_id_list(la_subset / "train.list")
    (la_subset / "train.list").write_text("\n".join(ids + [ids[1]]) + "\n")
    with pytest.raises(ConversionError, match=f"duplicate case id.*train.list.*{ids[1]}"):
        la.convert_la(la_subset, 501, labeled=1)
    (la_subset / "train.list").write_text("\n".join(ids) + "\n")
    with pytest.raises(ConversionError, match="--labeled 5 is larger than the 4"):
        la.convert_la(la_subset, 501, labeled=5)
    shutil.rmtree(la_subset / la.CASE_FOLDER / ids[2])
    with pytest.raises(ConversionError, match=f"missing h5 file.*{ids[2]}"):
        la.convert_la(la_subset, 501, labeled=1)
    assert list(nnunet_env["nnUNet_raw"].iterdir()) == []


# ----------------------------------------------------------------------------------------------- MSD
def test_msd_hippocampus(msd_subset, nnunet_env, monkeypatch):
    r = run("nnssl_convert_msd", "-i", str(msd_subset), "-d", "502", "--labeled", "3", "--test", "2",
            "--seed", "7", "-np", "2")
    assert r.returncode == 0, r.stderr
    assert "converted 8/8" in r.stdout
    out = nnunet_env["nnUNet_raw"] / "Dataset502_Hippocampus"
    dj = json.loads((out / "dataset.json").read_text())
    assert dj["labels"] == {"background": 0, "Anterior": 1, "Posterior": 2} and dj["channel_names"] == {"0": "MRI"}
    assert (dj["numTraining"], dj["numUnlabeled"], dj["numTest"]) == (3, 3, 2)
    split = load_split(out)
    assert split["seed"] == 7 and split["arguments"]["test"] == 2
    all_ids = sorted(split["labeled"] + split["unlabeled"] + split["test"])
    assert all_ids == sorted(p.name[:-7] for p in (msd_subset / "imagesTr").iterdir())
    for sub, folder, suffix in [("labeled", "imagesTr", "_0000"), ("labeled", "labelsTr", ""),
                                ("unlabeled", "imagesUnlabeled", "_0000"), ("test", "imagesTs", "_0000"),
                                ("test", "labelsTs", "")]:
        assert sorted(p.name for p in (out / folder).iterdir()) == [f"{i}{suffix}.nii.gz" for i in split[sub]]
    for i in split["labeled"] + split["test"]:
        folder = "Tr" if i in split["labeled"] else "Ts"
        src_img = sitk.ReadImage(str(msd_subset / "imagesTr" / f"{i}.nii.gz"))
        img = sitk.ReadImage(str(out / f"images{folder}" / f"{i}_0000.nii.gz"))
        lab = sitk.ReadImage(str(out / f"labels{folder}" / f"{i}.nii.gz"))
        for a, b in [(img, src_img), (lab, src_img)]:
            assert a.GetSize() == b.GetSize() and np.allclose(a.GetSpacing(), b.GetSpacing())
            assert np.allclose(a.GetOrigin(), b.GetOrigin()) and np.allclose(a.GetDirection(), b.GetDirection())
        np.testing.assert_array_equal(sitk.GetArrayFromImage(img), sitk.GetArrayFromImage(src_img))
        lab_arr = sitk.GetArrayFromImage(lab)
        assert lab_arr.dtype == np.uint8 and set(np.unique(lab_arr)) <= {0, 1, 2}
        src_lab = sitk.GetArrayFromImage(sitk.ReadImage(str(msd_subset / "labelsTr" / f"{i}.nii.gz")))
        np.testing.assert_array_equal(lab_arr, src_lab.astype(np.uint8))
    verify_integrity(out, monkeypatch)
    assert validate_unlabeled(out, num_processes=1) == []


def test_msd_float_label_is_cast(msd_subset, nnunet_env):
    assert sitk.ReadImage(str(msd_subset / "labelsTr" / f"{HIPPO_FLOAT_LABEL}.nii.gz")).GetPixelID() \
        == sitk.sitkFloat32
    out = msd.convert_msd(msd_subset, 502, labeled=8, num_processes=1)
    lab = sitk.ReadImage(str(out / "labelsTr" / f"{HIPPO_FLOAT_LABEL}.nii.gz"))
    assert lab.GetPixelID() == sitk.sitkUInt8 and set(np.unique(sitk.GetArrayFromImage(lab))) == {0, 1, 2}
    assert json.loads((out / "dataset.json").read_text())["numUnlabeled"] == 0


def test_copy_msd_cases_lists_exactly_the_copied_cases(msd_subset, tmp_path):
    ids = msd.msd_case_ids(msd_subset)
    assert ids == sorted(ids) and len(ids) == 8
    msd.copy_msd_cases(msd_subset, tmp_path / "sub", ids[1:3])
    meta = json.loads((tmp_path / "sub" / "dataset.json").read_text())
    assert meta["numTraining"] == 2 and msd.msd_case_ids(tmp_path / "sub") == ids[1:3]
    assert meta["labels"] == json.loads((msd_subset / "dataset.json").read_text())["labels"]
    assert sorted(p.name for p in (tmp_path / "sub" / "labelsTr").iterdir()) == [f"{i}.nii.gz" for i in ids[1:3]]
    with pytest.raises(ConversionError, match="hippocampus_999.nii.gz"):
        msd.copy_msd_cases(msd_subset, tmp_path / "bad", ["hippocampus_999"])


def test_msd_split_reproducible(msd_subset, nnunet_env):
    ids = [f"c{k:02d}" for k in range(20)]
    a, b, c = (msd.draw_split(ids, 4, 5, s) for s in (1, 1, 2))
    assert a == b and a != c
    test, labeled, unlabeled = a
    assert (len(test), len(labeled), len(unlabeled)) == (4, 5, 11)
    assert sorted(test + labeled + unlabeled) == ids
    splits = [load_split(msd.convert_msd(msd_subset, d, labeled=2, test=2, seed=s, num_processes=1))
              for d, s in [(503, 1), (504, 1), (505, 2)]]
    key = [(s["labeled"], s["unlabeled"], s["test"]) for s in splits]
    assert key[0] == key[1] and key[0] != key[2]


def test_msd_4d_two_modalities(tmp_path, nnunet_env, monkeypatch):
    task = tmp_path / "Task99_Synth"
    ids = make_synthetic_task(task, n=4, channels=2, test=2)
    out = msd.convert_msd(task, 599, labeled=2, test=1, seed=0, include_msd_test_as_unlabeled=True,
                          max_unlabeled=2, num_processes=1)
    dj = json.loads((out / "dataset.json").read_text())
    assert dj["channel_names"] == {"0": "mod0", "1": "mod1"}
    split = load_split(out)
    # remainder of the training cases first, then the MSD test images, capped at 2
    assert len(split["unlabeled"]) == 2 and "synthtest_000" in split["unlabeled"]
    assert "synthtest_001" not in split["unlabeled"]
    assert sorted(get_unlabeled_cases(out)) == split["unlabeled"]
    for i in split["labeled"]:
        src = sitk.ReadImage(str(task / "imagesTr" / f"{i}.nii.gz"))
        src_arr = sitk.GetArrayFromImage(src)  # (c, z, y, x)
        channel_files = sorted(p.name for p in (out / "imagesTr").glob(f"{i}_*"))
        assert channel_files == [f"{i}_0000.nii.gz", f"{i}_0001.nii.gz"]
        for ch in range(2):
            img = sitk.ReadImage(str(out / "imagesTr" / f"{i}_{ch:04d}.nii.gz"))
            assert img.GetDimension() == 3
            np.testing.assert_array_equal(sitk.GetArrayFromImage(img), src_arr[ch])
            assert np.allclose(img.GetSpacing(), (0.5, 0.75, 2.0)) and np.allclose(img.GetOrigin(), (10, -3, 4.5))
            assert np.allclose(img.GetDirection(), (0, 1, 0, -1, 0, 0, 0, 0, 1))
    assert validate_unlabeled(out, num_processes=1) == []
    assert set(split["labeled"] + split["test"]) <= set(ids)
    verify_integrity(out, monkeypatch)


def test_msd_label_value_not_in_labels_keeps_existing(tmp_path, nnunet_env):
    task = tmp_path / "Task98_Synth"
    make_synthetic_task(task, n=3, channels=1)
    out = msd.convert_msd(task, 598, labeled=1, num_processes=1)
    before = tree_digest(out)
    bad = task / "labelsTr" / "synth_002.nii.gz"
    orig = sitk.ReadImage(str(bad))
    arr = sitk.GetArrayFromImage(orig)
    arr[0, 0, 0] = 3
    new = sitk.GetImageFromArray(arr)
    new.CopyInformation(orig)
    sitk.WriteImage(new, str(bad))
    r = run("nnssl_convert_msd", "-i", str(task), "-d", "598", "--labeled", "3", "--overwrite", "-np", "1")
    assert r.returncode == 1
    assert str(bad) in r.stderr and "[3]" in r.stderr and "not in the dataset.json labels" in r.stderr
    assert "Traceback" not in r.stderr
    assert tree_digest(out) == before
    assert no_partial_folders(nnunet_env["nnUNet_raw"])


def test_msd_labeled_too_large(msd_subset, nnunet_env, capsys):
    marker = nnunet_env["nnUNet_raw"] / "Dataset502_Hippocampus"
    marker.mkdir()
    (marker / "keep.txt").write_text("existing")
    assert msd.main(["-i", str(msd_subset), "-d", "502", "--labeled", "100", "--overwrite"]) == 1
    err = capsys.readouterr().err
    assert "--labeled 100 is larger than the 8" in err and str(msd_subset / "dataset.json") in err
    assert tree_digest(nnunet_env["nnUNet_raw"]) == {"Dataset502_Hippocampus/keep.txt":
                                                     hashlib.sha256(b"existing").hexdigest()}


def test_msd_existing_target_and_overwrite(tmp_path, nnunet_env):
    task = tmp_path / "Task97_Synth"
    make_synthetic_task(task, n=6, channels=1)
    out = msd.convert_msd(task, 597, labeled=1, seed=0, num_processes=1)
    before = tree_digest(out)
    with pytest.raises(ConversionError, match=f"{out} already exists.*--overwrite"):
        msd.convert_msd(task, 597, labeled=2, num_processes=1)
    with pytest.raises(ConversionError, match="dataset id 597"):
        msd.convert_msd(task, 597, name="Other", labeled=1, num_processes=1)
    assert tree_digest(out) == before
    msd.convert_msd(task, 597, labeled=4, seed=3, overwrite=True, num_processes=2)
    assert len(load_split(out)["labeled"]) == 4 and tree_digest(out) != before
    assert no_partial_folders(nnunet_env["nnUNet_raw"])


@pytest.mark.parametrize("problem", ["non_integral", "shape"])
def test_msd_bad_labels(tmp_path, nnunet_env, problem):
    def label_fn(case_id, lab):
        if case_id != "synth_001":
            return lab
        return lab.astype(np.float32) + 0.5 if problem == "non_integral" else lab[:, :, :-1]
    task = tmp_path / "Task96_Synth"
    make_synthetic_task(task, n=2, channels=1, label_fn=label_fn)
    bad = str(task / "labelsTr" / "synth_001.nii.gz")
    msg = "non-integral values" if problem == "non_integral" else "shape mismatch.*synth_001.nii.gz"
    with pytest.raises(ConversionError, match=msg) as e:
        msd.convert_msd(task, 596, labeled=2, num_processes=1)
    assert bad in str(e.value)
    assert list(nnunet_env["nnUNet_raw"].iterdir()) == []


def test_nan_images_rejected(tmp_path, la_subset, nnunet_env):
    task = tmp_path / "Task95_Synth"
    make_synthetic_task(task, n=2, channels=1)
    bad = task / "imagesTr" / "synth_000.nii.gz"
    img = sitk.ReadImage(str(bad))
    arr = sitk.GetArrayFromImage(img)
    arr[2, 2, 2] = np.nan
    new = sitk.GetImageFromArray(arr)
    new.CopyInformation(img)
    sitk.WriteImage(new, str(bad))
    with pytest.raises(ConversionError, match=f"{bad}.*1 NaN"):
        msd.convert_msd(task, 595, labeled=1, num_processes=1)
    ids = read_id_list(la_subset / "train.list")
    h5 = la_subset / la.CASE_FOLDER / ids[0] / la.H5_NAME
    with h5py.File(h5, "r+") as f:
        f["image"][0, 0, 0] = np.inf
    with pytest.raises(ConversionError, match=f"{h5}.*non-finite"):
        la.convert_la(la_subset, 501, labeled=1, num_processes=1)
    assert list(nnunet_env["nnUNet_raw"].iterdir()) == []

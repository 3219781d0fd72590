"""Tests of nnssl.data.raw (format API) and nnssl.data.validation (unlabeled-image checks)."""
from __future__ import annotations

import hashlib
import json
import subprocess
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk

from nnssl.data.raw import (SPLIT_FILE, UNLABELED_FOLDER, get_unlabeled_cases, load_split, write_dataset_json,
                            write_split)
from nnssl.data.validation import check_unlabeled, main, validate_unlabeled


def tree_digest(path: Path) -> dict[str, str]:
    """Relative path -> sha256 of every file below ``path`` (byte-for-byte comparison)."""
    return {str(p.relative_to(path)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(path.rglob("*")) if p.is_file()}


def write_img(path: Path, arr: np.ndarray, spacing=None) -> None:
    img = sitk.GetImageFromArray(arr, isVector=False)
    img.SetSpacing(spacing or (1.0,) * arr.ndim)
    sitk.WriteImage(img, str(path))


def make_raw(folder: Path, channels: int = 1, unlabeled: tuple[str, ...] = ("u1", "u2"),
             shape=(4, 5, 6)) -> Path:
    """Tiny valid nnssl raw dataset: one labeled case, ``unlabeled`` cases, ``channels`` channels."""
    for sub in ("imagesTr", "labelsTr", UNLABELED_FOLDER):
        (folder / sub).mkdir(parents=True)
    rng = np.random.default_rng(0)
    for c in range(channels):
        write_img(folder / "imagesTr" / f"lab1_{c:04d}.nii.gz", rng.random(shape).astype(np.float32))
        for u in unlabeled:
            write_img(folder / UNLABELED_FOLDER / f"{u}_{c:04d}.nii.gz", rng.random(shape).astype(np.float32))
    write_img(folder / "labelsTr" / "lab1.nii.gz", np.ones(shape, np.uint8))
    write_dataset_json(folder, {str(c): f"ch{c}" for c in range(channels)}, {"background": 0, "fg": 1}, 1,
                       ".nii.gz", num_unlabeled=len(unlabeled))
    return folder


def set_num_unlabeled(folder: Path, n: int | None) -> None:
    dj = json.loads((folder / "dataset.json").read_text())
    dj.pop("numUnlabeled")
    if n is not None:
        dj["numUnlabeled"] = n
    (folder / "dataset.json").write_text(json.dumps(dj))


# ----------------------------------------------------------------------------------------------- raw API
def test_raw_api(tmp_path):
    raw = make_raw(tmp_path / "Dataset900_T", channels=2, unlabeled=("b", "a"))
    cases = get_unlabeled_cases(raw)
    u = raw / UNLABELED_FOLDER
    assert cases == {"a": [str(u / "a_0000.nii.gz"), str(u / "a_0001.nii.gz")],
                     "b": [str(u / "b_0000.nii.gz"), str(u / "b_0001.nii.gz")]}
    dj = json.loads((raw / "dataset.json").read_text())
    assert dj["numUnlabeled"] == 2 and dj["numTraining"] == 1 and dj["channel_names"] == {"0": "ch0", "1": "ch1"}
    assert get_unlabeled_cases(raw, dj) == cases
    split = {"labeled": ["lab1"], "unlabeled": ["a", "b"], "test": [], "seed": 3}
    write_split(raw, split)
    assert load_split(raw) == split
    (raw / SPLIT_FILE).unlink()
    with pytest.raises(FileNotFoundError, match=SPLIT_FILE):
        load_split(raw)


def test_num_unlabeled_mismatch(tmp_path):
    raw = make_raw(tmp_path / "Dataset900_T")
    set_num_unlabeled(raw, 5)
    with pytest.raises(ValueError, match=r"dataset.json says numUnlabeled=5 but 2"):
        get_unlabeled_cases(raw)
    assert any("numUnlabeled=5" in p for p in validate_unlabeled(raw, num_processes=1))
    set_num_unlabeled(raw, None)  # absent: not checked
    assert len(get_unlabeled_cases(raw)) == 2


def test_missing_unlabeled_folder(tmp_path):
    raw = make_raw(tmp_path / "Dataset900_T")
    for f in (raw / UNLABELED_FOLDER).iterdir():
        f.unlink()
    (raw / UNLABELED_FOLDER).rmdir()
    before = tree_digest(raw)
    with pytest.raises(FileNotFoundError, match=str(raw / UNLABELED_FOLDER)):
        get_unlabeled_cases(raw)
    problems = validate_unlabeled(raw)
    assert len(problems) == 1 and str(raw / UNLABELED_FOLDER) in problems[0] and "does not exist" in problems[0]
    with pytest.raises(ValueError, match="does not exist"):
        check_unlabeled(raw)
    assert tree_digest(raw) == before


# ----------------------------------------------------------------------------------------------- validation
def test_valid_dataset_and_cli(tmp_path, nnunet_env, capsys):
    raw = make_raw(nnunet_env["nnUNet_raw"] / "Dataset901_Ok", channels=2)
    assert validate_unlabeled(raw, num_processes=1) == []
    check_unlabeled(raw, num_processes=1)
    assert main(["-d", "901", "-np", "1"]) == 0
    assert "OK" in capsys.readouterr().out
    r = subprocess.run(["nnssl_validate_unlabeled", "-d", "Dataset901_Ok"], capture_output=True, encoding="utf-8",
                       errors="replace", timeout=120)
    assert r.returncode == 0, r.stderr
    assert "OK" in r.stdout and "2 unlabeled case(s), 2 channel(s)" in r.stdout
    assert main(["-d", "977"]) == 1
    assert "977" in capsys.readouterr().err


def test_wrong_channel_count(tmp_path, capsys):
    raw = make_raw(tmp_path / "Dataset902_Ch", channels=2, unlabeled=("u1", "u2", "u3"))
    u = raw / UNLABELED_FOLDER
    (u / "u1_0001.nii.gz").unlink()
    write_img(u / "u2_0002.nii.gz", np.zeros((4, 5, 6), np.float32))
    before = tree_digest(raw)
    problems = validate_unlabeled(raw, num_processes=1)
    assert len(problems) == 2
    assert str(u / "u1_0001.nii.gz") in problems[0] and "missing channel" in problems[0]
    assert str(u / "u2_0002.nii.gz") in problems[1] and "unexpected channel" in problems[1]
    with pytest.raises(ValueError, match="2 problem") as e:
        check_unlabeled(raw, num_processes=1)
    assert "u1_0001.nii.gz" in str(e.value) and "u2_0002.nii.gz" in str(e.value)
    assert main(["--folder", str(raw), "-np", "2"]) == 1
    err = capsys.readouterr().err
    assert "u1_0001.nii.gz: missing channel" in err and "u2_0002.nii.gz: unexpected channel" in err
    assert tree_digest(raw) == before


@pytest.mark.parametrize("value,word", [(np.nan, "NaN"), (np.inf, "inf")])
def test_non_finite_image(tmp_path, value, word):
    raw = make_raw(tmp_path / "Dataset903_Nan")
    arr = np.zeros((4, 5, 6), np.float32)
    arr[1, 2, 3] = value
    bad = raw / UNLABELED_FOLDER / "u2_0000.nii.gz"
    write_img(bad, arr)
    before = tree_digest(raw)
    problems = validate_unlabeled(raw, num_processes=1)
    assert len(problems) == 1 and str(bad) in problems[0] and f"1 {word}" in problems[0]
    with pytest.raises(ValueError, match=word):
        check_unlabeled(raw, num_processes=1)
    assert tree_digest(raw) == before


def test_file_names_unreadable_dimensionality_and_shapes(tmp_path):
    raw = make_raw(tmp_path / "Dataset904_Misc", channels=2, unlabeled=("u1", "u2", "u3", "u4"))
    u = raw / UNLABELED_FOLDER
    write_img(u / "wrong_0000.nii", np.zeros((4, 5, 6), np.float32))          # wrong file ending
    write_img(u / "noSuffix.nii.gz", np.zeros((4, 5, 6), np.float32))         # no channel suffix
    (u / "u1_0000.nii.gz").write_bytes(b"not an image")                       # unreadable
    write_img(u / "u2_0000.nii.gz", np.zeros((5, 6), np.float32))             # 2D among 3D
    write_img(u / "u2_0001.nii.gz", np.zeros((5, 6), np.float32))
    write_img(u / "u3_0001.nii.gz", np.zeros((4, 5, 7), np.float32))          # channel shapes differ
    write_img(u / "u4_0001.nii.gz", np.zeros((2, 4, 5, 6), np.float32))       # 4D: several channels in a file
    problems = validate_unlabeled(raw, num_processes=1)
    text = "\n".join(problems)
    assert f"{u / 'wrong_0000.nii'}: does not end with dataset.json's file_ending '.nii.gz'" in text
    assert f"{u / 'noSuffix.nii.gz'}: name does not follow CASE_XXXX.nii.gz" in text
    assert f"{u / 'u1_0000.nii.gz'}: unreadable" in text
    assert f"{u / 'u2_0000.nii.gz'}: is 2D but the labeled images are 3D" in text
    assert f"{u / 'u2_0001.nii.gz'}: is 2D" in text
    assert "case u3: channels have different shapes" in text
    assert f"{u / 'u4_0001.nii.gz'}: holds 2 channels" in text
    assert "numUnlabeled" not in text and len(problems) == 7  # the two stray files are not counted as cases
    assert sorted(validate_unlabeled(raw, num_processes=2)) == sorted(problems)  # parallel == serial


def test_2d_dataset_accepts_2d_unlabeled(tmp_path):
    raw = make_raw(tmp_path / "Dataset905_2D", shape=(5, 6))
    assert validate_unlabeled(raw, num_processes=1) == []
    write_img(raw / UNLABELED_FOLDER / "u1_0000.nii.gz", np.zeros((3, 5, 6), np.float32))
    problems = validate_unlabeled(raw, num_processes=1)
    assert len(problems) == 1 and "u1_0000.nii.gz: is 3D but the labeled images are 2D" in problems[0]

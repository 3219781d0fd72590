"""The nnssl raw dataset format: nnU-Net's raw format plus unlabeled and test images.

``$nnUNet_raw/DatasetXXX_Name/``::

    imagesTr/{CASE}_{XXXX}{ending}   labelsTr/{CASE}{ending}   labeled cases only (nnU-Net's own check passes)
    imagesUnlabeled/{CASE}_{XXXX}{ending}                       unlabeled images (same channel suffixes)
    imagesTs/{CASE}_{XXXX}{ending}   labelsTs/{CASE}{ending}   held-out test cases (labels kept for evaluation)
    dataset.json                                                nnU-Net's keys + numUnlabeled (+ numTest)
    nnssl_split.json                                            source, converter, arguments, seed, case lists

This module is the format's small API; conversion lives in ``nnssl.dataset_conversion`` and checks in
``nnssl.data.validation``.
"""
from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any, Sequence

import numpy as np

UNLABELED_FOLDER = "imagesUnlabeled"
SPLIT_FILE = "nnssl_split.json"
DATASET_JSON = "dataset.json"


def _load_json(path: Path) -> dict:
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def _save_json(obj: Any, path: Path) -> None:
    with open(path, "w", encoding="utf-8") as f:
        json.dump(obj, f, indent=2, sort_keys=False)
        f.write("\n")


def load_dataset_json(raw_dataset_dir: str | os.PathLike) -> dict:
    """Read ``dataset.json`` of a raw dataset folder (FileNotFoundError naming the path if absent)."""
    path = Path(raw_dataset_dir) / DATASET_JSON
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found: not an nnU-Net raw dataset folder")
    return _load_json(path)


def group_channel_files(folder: str | os.PathLike, file_ending: str) -> tuple[dict[str, list[str]], list[str]]:
    """Group ``{CASE}_{XXXX}{file_ending}`` files of a folder by case id.

    Returns (case id -> sorted list of absolute file paths, sorted list of file names that do not
    follow the pattern). Hidden files and sub-folders are ignored.
    """
    pattern = re.compile(r"(.+)_(\d{4})" + re.escape(file_ending))
    cases: dict[str, list[str]] = {}
    stray: list[str] = []
    for name in sorted(os.listdir(folder)):
        full = os.path.join(os.path.abspath(folder), name)
        if name.startswith(".") or not os.path.isfile(full):
            continue
        m = pattern.fullmatch(name)
        if m is None:
            stray.append(name)
        else:
            cases.setdefault(m.group(1), []).append(full)
    return {k: sorted(v) for k, v in sorted(cases.items())}, stray


def check_num_unlabeled(dataset_json: dict, num_found: int, json_path: str | os.PathLike) -> None:
    """Raise ValueError if dataset.json's ``numUnlabeled`` is present and differs from ``num_found``."""
    expected = dataset_json.get("numUnlabeled")
    if expected is not None and int(expected) != num_found:
        raise ValueError(f"{json_path} says numUnlabeled={expected} but {num_found} unlabeled case(s) were "
                         f"found in {UNLABELED_FOLDER}/")


def get_unlabeled_cases(raw_dataset_dir: str | os.PathLike,
                        dataset_json: dict | None = None) -> dict[str, list[str]]:
    """Case id -> sorted list of channel files in ``imagesUnlabeled/`` (absolute paths).

    Like the ``images`` entries of nnunetv2's ``get_filenames_of_train_images_and_targets``. Raises
    FileNotFoundError naming the folder if ``imagesUnlabeled/`` is missing and ValueError if dataset.json's
    ``numUnlabeled`` does not match the number of cases found.
    """
    raw_dataset_dir = Path(raw_dataset_dir)
    if dataset_json is None:
        dataset_json = load_dataset_json(raw_dataset_dir)
    folder = raw_dataset_dir / UNLABELED_FOLDER
    if not folder.is_dir():
        raise FileNotFoundError(f"unlabeled image folder {folder} does not exist")
    cases, _ = group_channel_files(folder, dataset_json["file_ending"])
    check_num_unlabeled(dataset_json, len(cases), raw_dataset_dir / DATASET_JSON)
    return cases


def label_ids(value: int | Sequence[int]) -> list[int]:
    """The integer values of one dataset.json label: [value] for a class, the listed values for a region."""
    return [int(value)] if isinstance(value, (int, np.integer)) else [int(x) for x in value]


def write_dataset_json(raw_dataset_dir: str | os.PathLike, channel_names: dict,
                       labels: dict[str, int | Sequence[int]], num_training: int, file_ending: str,
                       num_unlabeled: int, num_test: int = 0, **extra: Any) -> dict:
    """Write nnU-Net's dataset.json plus ``numUnlabeled``/``numTest`` (and any ``extra`` keys); return it.

    A label value is an int, or a sequence of ints for an nnU-Net region (then ``extra`` must carry
    ``regions_class_order``)."""
    content = {
        "channel_names": {str(k): v for k, v in channel_names.items()},
        "labels": {k: (int(v) if isinstance(v, (int, np.integer)) else label_ids(v)) for k, v in labels.items()},
        "numTraining": int(num_training),
        "file_ending": file_ending,
        "numUnlabeled": int(num_unlabeled),
        "numTest": int(num_test),
        **extra,
    }
    _save_json(content, Path(raw_dataset_dir) / DATASET_JSON)
    return content


def write_split(raw_dataset_dir: str | os.PathLike, split: dict) -> None:
    """Write ``nnssl_split.json`` (keys: source_dataset, source_path, converter, arguments, seed, labeled,
    unlabeled, test)."""
    _save_json(split, Path(raw_dataset_dir) / SPLIT_FILE)


def load_split(raw_dataset_dir: str | os.PathLike) -> dict:
    """Read ``nnssl_split.json`` of a raw dataset folder (FileNotFoundError naming the path if absent)."""
    path = Path(raw_dataset_dir) / SPLIT_FILE
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found: this dataset was not written by an nnssl converter")
    return _load_json(path)

"""Checks of the unlabeled part of an nnssl raw dataset (``nnssl_validate_unlabeled``).

nnU-Net's ``verify_dataset_integrity`` checks imagesTr/labelsTr; this module checks ``imagesUnlabeled/``:
folder present, file names and ending, exactly the channels of dataset.json per case, every file readable
with nnU-Net's reader, finite values, one channel per file, same shape across a case's channels, the
dimensionality (2D/3D) of the labeled images, and dataset.json's ``numUnlabeled``.
"""
from __future__ import annotations

import argparse
import multiprocessing
import os
import re
import sys
from pathlib import Path
from typing import Optional, Sequence

import numpy as np

from nnssl.data.raw import (DATASET_JSON, UNLABELED_FOLDER, check_num_unlabeled, group_channel_files,
                            load_dataset_json)


def _ndim(data: np.ndarray, props: dict) -> int:
    """2 or 3: nnU-Net's readers return 2D images as (c, 1, x, y) with a sentinel spacing of 999 * max."""
    spacing = props.get("spacing", ())
    two_d = data.shape[1] == 1 and len(spacing) == 3 and spacing[0] >= 999 * max(spacing[1:]) * 0.999
    return 2 if two_d else 3


def count_nonfinite(path: str, data: Optional[np.ndarray] = None) -> tuple[int, int]:
    """(NaN count, inf count) of an image file. ITK's NIfTI reader (hence nnU-Net's SimpleITKIO) silently
    replaces non-finite voxels, so NIfTI files are also checked on disk with nibabel. ``data``: the array
    already read with nnU-Net's reader, if any."""
    arrays = [] if data is None else [data]
    if path.endswith((".nii", ".nii.gz")):
        import nibabel
        try:
            arrays.append(np.asanyarray(nibabel.load(path).dataobj))
        except Exception:  # readability is judged by nnU-Net's reader, not nibabel
            pass
    counts = [(int(np.isnan(a).sum()), int(np.isinf(a).sum())) for a in arrays if a.dtype.kind == "f"]
    return max((c[0] for c in counts), default=0), max((c[1] for c in counts), default=0)


def _read(reader_cls, path: str) -> tuple[Optional[np.ndarray], Optional[dict], Optional[str]]:
    try:
        data, props = reader_cls().read_images([path])
        return data, props, None
    except Exception as e:  # any reader failure = unreadable file
        msg = (str(e).strip().splitlines() or ["no message"])[-1]
        return None, None, f"{path}: unreadable ({type(e).__name__}: {msg[:300]})"


def _check_case(case_id: str, files: list[str], reader_cls, ref_ndim: Optional[int],
                ref_file: Optional[str]) -> list[str]:
    """Read-level checks of one case's channel files; returns problems."""
    problems, shapes = [], {}
    for f in files:
        data, props, err = _read(reader_cls, f)
        if err:
            problems.append(err)
            continue
        if data.shape[0] != 1:
            problems.append(f"{f}: holds {data.shape[0]} channels; nnU-Net expects one channel per file")
        n_nan, n_inf = count_nonfinite(f, data)
        if n_nan or n_inf:
            problems.append(f"{f}: non-finite values ({n_nan} NaN, {n_inf} inf)")
        nd = _ndim(data, props)
        if ref_ndim is not None and nd != ref_ndim:
            problems.append(f"{f}: is {nd}D but the labeled images are {ref_ndim}D (e.g. {ref_file})")
        shapes[f] = data.shape[1:]
    if len(set(shapes.values())) > 1:
        problems.append(f"case {case_id}: channels have different shapes: "
                        + ", ".join(f"{os.path.basename(f)} {s}" for f, s in shapes.items()))
    return problems


def _reader_and_reference(raw: Path, dataset_json: dict):
    """nnU-Net reader class for the dataset and (ndim, file) of the first labeled image, if any."""
    from nnunetv2.imageio.reader_writer_registry import determine_reader_writer_from_dataset_json

    labeled, _ = group_channel_files(raw / "imagesTr", dataset_json["file_ending"]) \
        if (raw / "imagesTr").is_dir() else ({}, [])
    ref_file = next(iter(labeled.values()))[0] if labeled else None
    try:  # prefer a reader that can open a labeled image; else the first one for the file ending
        reader = determine_reader_writer_from_dataset_json(dataset_json, ref_file, verbose=False)
    except Exception:
        reader = determine_reader_writer_from_dataset_json(dataset_json, None, verbose=False)
    ref_ndim = None
    if ref_file:
        data, props, err = _read(reader, ref_file)
        ref_ndim = None if err else _ndim(data, props)
    return reader, ref_ndim, ref_file


def validate_unlabeled(raw_dataset_dir: str | os.PathLike, num_processes: int = 2) -> list[str]:
    """Problems of ``imagesUnlabeled/`` (each naming the file or folder); an empty list means OK."""
    raw = Path(raw_dataset_dir).absolute()
    try:
        dataset_json = load_dataset_json(raw)
        channels = sorted(int(c) for c in dataset_json["channel_names"])
        file_ending = dataset_json["file_ending"]
    except (FileNotFoundError, ValueError, KeyError) as e:
        return [f"{raw / DATASET_JSON}: cannot use it ({type(e).__name__}: {e})"]
    folder = raw / UNLABELED_FOLDER
    if not folder.is_dir():
        return [f"unlabeled image folder {folder} does not exist"]
    cases, stray = group_channel_files(folder, file_ending)
    problems = [f"{folder / s}: does not end with dataset.json's file_ending '{file_ending}'"
                if not s.endswith(file_ending) else
                f"{folder / s}: name does not follow CASE_XXXX{file_ending} (4-digit channel suffix)"
                for s in stray]
    try:
        check_num_unlabeled(dataset_json, len(cases), raw / DATASET_JSON)
    except ValueError as e:
        problems.append(str(e))
    expected = [f"{c:04d}" for c in channels]
    for case_id, files in cases.items():
        found = [re.search(r"_(\d{4})" + re.escape(file_ending) + "$", f).group(1) for f in files]
        for c in sorted(set(expected) - set(found)):
            problems.append(f"{folder / (case_id + '_' + c + file_ending)}: missing channel file (dataset.json "
                            f"channel_names has {len(expected)} channel(s))")
        for c in sorted(set(found) - set(expected)):
            problems.append(f"{folder / (case_id + '_' + c + file_ending)}: unexpected channel file (dataset.json "
                            f"channel_names has {len(expected)} channel(s): {', '.join(expected)})")
    if not cases:
        return problems
    try:
        reader, ref_ndim, ref_file = _reader_and_reference(raw, dataset_json)
    except Exception as e:
        return problems + [f"{raw / DATASET_JSON}: no nnU-Net reader for file_ending '{file_ending}' ({e})"]
    args = [(k, v, reader, ref_ndim, ref_file) for k, v in cases.items()]
    if num_processes > 1 and len(args) > 1:
        with multiprocessing.get_context("spawn").Pool(min(num_processes, len(args))) as pool:
            results = pool.starmap(_check_case, args)
    else:
        results = [_check_case(*a) for a in args]
    return problems + [p for r in results for p in r]


def check_unlabeled(raw_dataset_dir: str | os.PathLike, num_processes: int = 2) -> None:
    """Raise ValueError listing all problems found by :func:`validate_unlabeled`."""
    problems = validate_unlabeled(raw_dataset_dir, num_processes)
    if problems:
        raise ValueError(f"{len(problems)} problem(s) in the unlabeled images of {raw_dataset_dir}:\n"
                         + "\n".join(f"  - {p}" for p in problems))


def main(argv: Sequence[str] | None = None) -> int:
    """Console script ``nnssl_validate_unlabeled``: exit 1 with the problem list, 0 with a short summary."""
    p = argparse.ArgumentParser(prog="nnssl_validate_unlabeled",
                                description="Check imagesUnlabeled/ of an nnssl raw dataset (channels, file "
                                            "names, readability, NaN/inf, shapes, 2D/3D vs imagesTr).")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("-d", "--dataset", help="dataset id or name (DatasetXXX_Name) under $nnUNet_raw")
    src.add_argument("--folder", help="path of the raw dataset folder")
    p.add_argument("-np", "--num_processes", type=int, default=2, help="worker processes (default: 2)")
    a = p.parse_args(argv)
    if a.folder:
        folder = Path(a.folder)
    else:
        from nnunetv2.utilities.dataset_name_id_conversion import maybe_convert_to_dataset_name
        if not os.environ.get("nnUNet_raw"):
            p.error("$nnUNet_raw is not set (or use --folder)")
        try:
            folder = Path(os.environ["nnUNet_raw"]) / maybe_convert_to_dataset_name(a.dataset)
        except (RuntimeError, ValueError) as e:
            print(f"error: {e}", file=sys.stderr)
            return 1
    problems = validate_unlabeled(folder, a.num_processes)
    if problems:
        print(f"{len(problems)} problem(s) in {folder / UNLABELED_FOLDER}:", file=sys.stderr)
        print("\n".join(f"  - {q}" for q in problems), file=sys.stderr)
        return 1
    dj = load_dataset_json(folder)
    n = len(group_channel_files(folder / UNLABELED_FOLDER, dj["file_ending"])[0])
    print(f"OK: {folder / UNLABELED_FOLDER}: {n} unlabeled case(s), {len(dj['channel_names'])} channel(s) each")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Shared dataset writer for the nnssl converters (LA, MSD).

A converter describes its cases (:class:`Case`) and supplies a ``loader`` turning one case into SimpleITK
images (one per channel) plus an optional label image. :func:`write_dataset` does everything else: target
folder checks, parallel conversion with progress output, label checks (integral values that dataset.json
declares), file naming in the nnssl raw format (see ``nnssl.data.raw``), dataset.json and nnssl_split.json.

Safety: the dataset is written into a hidden temporary folder beside the target and renamed into place
only when complete, so a crash or bad input never leaves a half-written dataset and never modifies an
existing one (with ``--overwrite`` the old folder is replaced only after the new one is fully written).
"""
from __future__ import annotations

import argparse
import multiprocessing
import os
import shutil
import sys
import tempfile
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Optional, Sequence

import numpy as np
import SimpleITK as sitk

from nnssl.data.raw import UNLABELED_FOLDER, label_ids, write_dataset_json, write_split

FILE_ENDING = ".nii.gz"
SUBSETS = {  # subset -> (image folder, label folder)
    "labeled": ("imagesTr", "labelsTr"),
    "unlabeled": (UNLABELED_FOLDER, None),
    "test": ("imagesTs", "labelsTs"),
}


class ConversionError(Exception):
    """Bad converter input; the message names the file and the problem."""


@dataclass(frozen=True)
class Case:
    """One case to convert. ``source``/``label_source`` name the input files (used by the loader and in
    error messages); ``label_source`` is None for unlabeled cases."""
    case_id: str
    subset: str
    source: str
    label_source: Optional[str] = None


Loader = Callable[[Case], "tuple[list[sitk.Image], Optional[sitk.Image]]"]


def read_id_list(path: str | os.PathLike) -> list[str]:
    """Case ids of a list file (one per line, blank lines ignored); ConversionError on a missing file or
    duplicate ids."""
    path = Path(path)
    if not path.is_file():
        raise ConversionError(f"list file {path} does not exist")
    ids = [line.strip() for line in path.read_text().splitlines() if line.strip()]
    check_unique_ids(ids, str(path))
    return ids


def check_unique_ids(ids: Iterable[str], where: str) -> None:
    """ConversionError naming ``where`` if a case id occurs more than once."""
    dups = sorted(i for i, n in Counter(ids).items() if n > 1)
    if dups:
        raise ConversionError(f"duplicate case id(s) in {where}: {', '.join(dups)}")


def resolve_target(dataset_id: int, name: str, output_root: str | os.PathLike | None = None) -> Path:
    """``<output_root or $nnUNet_raw>/DatasetXXX_Name``; refuses a second folder with the same id."""
    if not 0 < dataset_id < 1000:
        raise ConversionError(f"dataset id must be in 1..999, got {dataset_id}")
    root = output_root or os.environ.get("nnUNet_raw")
    if not root:
        raise ConversionError("no output folder: set $nnUNet_raw or pass -o/--output_root")
    target = Path(root).absolute() / f"Dataset{dataset_id:03d}_{name}"
    if Path(root).is_dir():
        clash = sorted(p.name for p in Path(root).iterdir()
                       if p.name.startswith(f"Dataset{dataset_id:03d}_") and p.name != target.name)
        if clash:
            raise ConversionError(f"{root} already holds {', '.join(clash)} with dataset id {dataset_id}; "
                                  f"nnU-Net needs unique ids (choose another -d)")
    return target


def to_label_image(label: sitk.Image, source: str, allowed: set[int]) -> sitk.Image:
    """Integer label image (uint8/uint16) with the same geometry; ConversionError naming ``source`` if values
    are not integral or not in ``allowed`` (dataset.json labels)."""
    arr = sitk.GetArrayViewFromImage(label)
    if arr.dtype.kind == "f":
        bad = ~np.isfinite(arr) | (arr != np.round(arr))
        if bad.any():
            raise ConversionError(f"label file {source} has non-integral values, e.g. "
                                  f"{np.unique(arr[bad])[:5].tolist()}")
    values = np.unique(arr).astype(np.int64)
    unexpected = sorted(set(values.tolist()) - allowed)
    if unexpected:
        raise ConversionError(f"label file {source} contains value(s) {unexpected} not in the dataset.json "
                              f"labels {sorted(allowed)}")
    out = sitk.GetImageFromArray(arr.astype(np.uint8 if max(allowed) < 256 else np.uint16))
    out.CopyInformation(label)
    return out


def _convert_case(task: tuple) -> str:
    """Worker: load one case, check it and write its files into the temporary dataset folder."""
    case, loader, out_dir, num_channels, allowed, file_ending = task
    images, label = loader(case)
    if len(images) != num_channels:
        raise ConversionError(f"{case.source}: {len(images)} channel(s) but dataset.json expects {num_channels}")
    for img in images:
        if img.GetSize() != images[0].GetSize():
            raise ConversionError(f"{case.source}: channels have different sizes "
                                  f"{[i.GetSize() for i in images]}")
        if not np.isfinite(sitk.GetArrayViewFromImage(img)).all():
            raise ConversionError(f"image {case.source} contains non-finite values (NaN/inf)")
    img_dir, lab_dir = SUBSETS[case.subset]
    if lab_dir is not None:
        if label is None:
            raise ConversionError(f"case {case.case_id} ({case.subset}) has no label ({case.label_source})")
        if label.GetSize() != images[0].GetSize():
            raise ConversionError(f"image/label shape mismatch for case {case.case_id}: image {case.source} "
                                  f"{images[0].GetSize()} vs label {case.label_source} {label.GetSize()}")
        if not np.allclose(label.GetSpacing(), images[0].GetSpacing(), rtol=1e-4):
            raise ConversionError(f"image/label spacing mismatch for case {case.case_id}: image {case.source} "
                                  f"{images[0].GetSpacing()} vs label {case.label_source} {label.GetSpacing()}")
        label = to_label_image(label, str(case.label_source), allowed)
        sitk.WriteImage(label, os.path.join(out_dir, lab_dir, case.case_id + file_ending), True)
    for c, img in enumerate(images):
        sitk.WriteImage(img, os.path.join(out_dir, img_dir, f"{case.case_id}_{c:04d}{file_ending}"), True)
    return case.case_id


def label_values(labels: dict[str, int | Sequence[int]]) -> set[int]:
    """Integer values a label file may hold: the dataset.json label values, or for region labels the union of
    the regions' values (plus background)."""
    return {x for v in labels.values() for x in label_ids(v)}


def write_dataset(target: str | os.PathLike, cases: Sequence[Case], loader: Loader, channel_names: dict[str, str],
                  labels: dict[str, int | Sequence[int]], split_info: dict[str, Any], num_processes: int = 2,
                  overwrite: bool = False, file_ending: str = FILE_ENDING, **dataset_json_extra: Any) -> Path:
    """Convert ``cases`` into the nnssl raw dataset folder ``target`` (atomically, see module docstring).

    ``split_info`` (source_dataset, source_path, converter, arguments, seed) is completed with the
    ``labeled``/``unlabeled``/``test`` id lists and written to nnssl_split.json. Raises ConversionError.
    """
    target = Path(target).absolute()
    if target.exists() and not overwrite:
        raise ConversionError(f"target {target} already exists; pass --overwrite to replace it")
    check_unique_ids([c.case_id for c in cases], "the cases to convert")
    by_subset = {s: sorted(c.case_id for c in cases if c.subset == s) for s in SUBSETS}
    if not by_subset["labeled"]:
        raise ConversionError("no labeled cases: nnU-Net needs at least one labeled training case")
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.partial-", dir=target.parent))
    try:
        for folder in {f for pair in SUBSETS.values() for f in pair if f}:
            (tmp / folder).mkdir()
        allowed = label_values(labels)
        tasks = [(c, loader, str(tmp), len(channel_names), allowed, file_ending) for c in cases]
        _run_tasks(tasks, num_processes)
        write_dataset_json(tmp, channel_names, labels, len(by_subset["labeled"]), file_ending,
                           len(by_subset["unlabeled"]), len(by_subset["test"]), **dataset_json_extra)
        write_split(tmp, {**split_info, **by_subset})
        _move_into_place(tmp, target, overwrite)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"wrote {target}: {len(by_subset['labeled'])} labeled, {len(by_subset['unlabeled'])} unlabeled, "
          f"{len(by_subset['test'])} test cases", flush=True)
    return target


def _run_tasks(tasks: list[tuple], num_processes: int) -> None:
    """Run ``_convert_case`` over ``tasks`` (spawn pool if num_processes > 1), printing progress."""
    n, step = len(tasks), max(1, len(tasks) // 20)

    def progress(done: int) -> None:
        if done % step == 0 or done == n:
            print(f"converted {done}/{n}", flush=True)

    if num_processes <= 1 or n <= 1:
        for i, t in enumerate(tasks, 1):
            _convert_case(t)
            progress(i)
        return
    # spawn, not fork: SimpleITK/ITK threads in the parent make fork unsafe
    with multiprocessing.get_context("spawn").Pool(min(num_processes, n)) as pool:
        for i, _ in enumerate(pool.imap_unordered(_convert_case, tasks), 1):
            progress(i)


def _move_into_place(tmp: Path, target: Path, overwrite: bool) -> None:
    """Rename the finished temporary folder to ``target``; an old target is removed only afterwards."""
    if not target.exists():
        os.rename(tmp, target)
        return
    if not overwrite:
        raise ConversionError(f"target {target} appeared during conversion; pass --overwrite to replace it")
    old = Path(tempfile.mkdtemp(prefix=f".{target.name}.old-", dir=target.parent))
    os.rename(target, old / target.name)
    try:
        os.rename(tmp, target)
    except BaseException:
        os.rename(old / target.name, target)
        raise
    finally:
        if target.exists():
            shutil.rmtree(old, ignore_errors=True)


def add_common_args(parser: argparse.ArgumentParser, default_name: str | None) -> None:
    """Output/target options shared by the converters."""
    parser.add_argument("-d", "--dataset_id", type=int, required=True,
                        help="nnU-Net dataset id of the output (folder DatasetXXX_NAME)")
    parser.add_argument("-n", "--name", default=default_name,
                        help=f"dataset name of the output (default: {default_name or 'from the source'})")
    parser.add_argument("-o", "--output_root", default=None,
                        help="folder receiving DatasetXXX_NAME (default: $nnUNet_raw)")
    parser.add_argument("-np", "--num_processes", type=int, default=2,
                        help="parallel conversion processes (default: 2)")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace an existing target folder (only after the new one is fully written)")


def arguments_record(arguments: dict[str, Any]) -> dict[str, Any]:
    """JSON-friendly copy of a converter's arguments (paths as strings) for nnssl_split.json."""
    return {k: (str(v) if isinstance(v, os.PathLike) else v) for k, v in arguments.items()}


def run_cli(convert: Callable[[], Path]) -> int:
    """Run ``convert``; on ConversionError print ``error: ...`` to stderr and return 1, else 0."""
    try:
        convert()
    except ConversionError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    return 0


def read_image(path: str) -> "sitk.Image":
    """SimpleITK image of ``path``; ConversionError naming the file if it is missing or unreadable."""
    if not os.path.isfile(path):
        raise ConversionError(f"missing file {path}")
    try:
        return sitk.ReadImage(path)
    except RuntimeError as e:
        raise ConversionError(f"cannot read {path}: {str(e).strip().splitlines()[-1]}") from None


def read_h5_array(f: Any, key: str, path: str) -> np.ndarray:
    """3D dataset ``key`` of an open h5 file (axes x, y, z); ConversionError naming the file otherwise."""
    if key not in f:
        raise ConversionError(f"h5 file {path} has no dataset '{key}' (found: {sorted(f.keys())})")
    arr = np.asarray(f[key])
    if arr.ndim != 3:
        raise ConversionError(f"h5 file {path}: dataset '{key}' has shape {arr.shape}, expected 3D (x, y, z)")
    return arr

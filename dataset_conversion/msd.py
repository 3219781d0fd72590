"""Convert a Medical Segmentation Decathlon task to the nnssl raw format (``nnssl_convert_msd``).

Input: a task folder in the original MSD layout (``imagesTr/NAME_XXX.nii.gz``, 3D or 4D for multi-modal
tasks, ``labelsTr/``, optional ``imagesTs/`` without labels, MSD ``dataset.json`` with ``modality``,
``labels`` {"0": "background", ...} and the ``training`` list).

Split: the MSD training cases, sorted by id, are split with ``numpy.random.default_rng(seed)``: first the
test subset is drawn (kept with labels in imagesTs/labelsTs), then the labeled subset from the remaining
cases; the remainder is unlabeled (``--max_unlabeled N`` keeps its first N ids). 4D images are split into
channel files _0000, _0001, ... keeping the 3D spacing/origin/direction; labels are cast to integers.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
from pathlib import Path
from typing import Optional, Sequence

import numpy as np
import SimpleITK as sitk

from nnssl.data.validation import count_nonfinite
from nnssl.dataset_conversion.common import (Case, ConversionError, add_common_args, arguments_record,
                                             check_unique_ids, read_image, resolve_target, run_cli,
                                             write_dataset)


def split_channels(img: sitk.Image, path: str) -> list[sitk.Image]:
    """3D image -> [img]; 4D image -> one 3D image per volume (3D geometry of the 4D image kept)."""
    if img.GetDimension() == 3:
        return [img]
    if img.GetDimension() != 4:
        raise ConversionError(f"{path} is {img.GetDimension()}D, expected 3D or 4D")
    size = list(img.GetSize())
    n, size[3] = size[3], 0
    return [sitk.Extract(img, size, [0, 0, 0, t], sitk.ExtractImageFilter.DIRECTIONCOLLAPSETOSUBMATRIX)
            for t in range(n)]


def load_msd_case(case: Case) -> tuple[list[sitk.Image], Optional[sitk.Image]]:
    """Loader for :func:`write_dataset`: channels of the (3D/4D) image and the label if the case has one."""
    images = split_channels(read_image(case.source), case.source)
    n_nan, n_inf = count_nonfinite(case.source)  # ITK's NIfTI reader hides them: check the file itself
    if n_nan or n_inf:
        raise ConversionError(f"image {case.source} contains non-finite values ({n_nan} NaN, {n_inf} inf)")
    label = read_image(case.label_source) if case.label_source else None
    if label is not None and label.GetDimension() != 3:
        raise ConversionError(f"label file {case.label_source} is {label.GetDimension()}D, expected 3D")
    return images, label


def draw_split(case_ids: Sequence[str], n_test: int, n_labeled: int,
               seed: int) -> tuple[list[str], list[str], list[str]]:
    """(test, labeled, unlabeled) sorted id lists: test drawn first from the sorted ids, then labeled from
    the rest, with ``numpy.random.default_rng(seed)``."""
    ids = sorted(case_ids)
    rng = np.random.default_rng(seed)
    test = sorted(ids[i] for i in rng.choice(len(ids), n_test, replace=False))
    rest = [i for i in ids if i not in set(test)]
    labeled = sorted(rest[i] for i in rng.choice(len(rest), n_labeled, replace=False))
    return test, labeled, [i for i in rest if i not in set(labeled)]


def msd_case_ids(task_folder: str | os.PathLike) -> list[str]:
    """Sorted ids of the training cases listed in an MSD task's dataset.json."""
    meta = json.loads((Path(task_folder) / "dataset.json").read_text())
    return sorted(_case_id(t["image"]) for t in meta["training"])


def copy_msd_cases(task_folder: str | os.PathLike, target: str | os.PathLike, ids: Sequence[str]) -> None:
    """Copy the training cases ``ids`` of an MSD task (images, labels) into ``target``, an MSD task folder
    whose dataset.json is the source's with only these cases listed (e.g. a fixed subset to convert)."""
    source, target = Path(task_folder), Path(target)
    meta = json.loads((source / "dataset.json").read_text())
    for sub in ("imagesTr", "labelsTr"):
        (target / sub).mkdir(parents=True, exist_ok=True)
        for i in ids:
            path = source / sub / f"{i}.nii.gz"
            if not path.is_file():
                raise ConversionError(f"{path}: case {i} missing from {source}")
            shutil.copy(path, target / sub / path.name)
    meta = {**meta, "numTraining": len(ids), "numTest": 0, "test": [],
            "training": [{"image": f"./imagesTr/{i}.nii.gz", "label": f"./labelsTr/{i}.nii.gz"} for i in ids]}
    (target / "dataset.json").write_text(json.dumps(meta, indent=2))


def _case_id(path: str) -> str:
    name = os.path.basename(path)
    for ending in (".nii.gz", ".nii"):
        if name.endswith(ending):
            return name[: -len(ending)]
    raise ConversionError(f"unexpected file name {path} (expected .nii.gz)")


def _count(n: int | None, fraction: float | None, total: int, flag: str) -> int:
    if fraction is not None:
        if not 0 <= fraction <= 1:
            raise ConversionError(f"--{flag}_fraction must be in [0, 1], got {fraction}")
        return int(round(fraction * total))
    return n or 0


def convert_msd(task_folder: str | os.PathLike, dataset_id: int, name: str | None = None,
                labeled: int | None = None, labeled_fraction: float | None = None, test: int | None = None,
                test_fraction: float | None = None, seed: int = 12345, max_unlabeled: int | None = None,
                include_msd_test_as_unlabeled: bool = False, num_processes: int = 2, overwrite: bool = False,
                output_root: str | os.PathLike | None = None) -> Path:
    """Convert an MSD task folder into ``<output_root or $nnUNet_raw>/DatasetXXX_<name>``; returns it."""
    arguments = arguments_record(locals())
    root = Path(task_folder).absolute()
    json_path = root / "dataset.json"
    if not json_path.is_file():
        raise ConversionError(f"{json_path} not found: not an MSD task folder")
    try:
        msd = json.loads(json_path.read_text())
        channel_names = {str(k): v for k, v in msd["modality"].items()}
        labels = {("background" if int(k) == 0 else v): int(k) for k, v in msd["labels"].items()}
        training = {_case_id(t["image"]): t for t in msd["training"]}
    except (ValueError, KeyError, TypeError) as e:
        raise ConversionError(f"{json_path} is not a valid MSD dataset.json ({type(e).__name__}: {e})") from None
    check_unique_ids([_case_id(t["image"]) for t in msd["training"]], f"the training list of {json_path}")
    name = name or msd.get("name") or root.name.split("_", 1)[-1]
    if (labeled is None) == (labeled_fraction is None):
        raise ConversionError("give exactly one of --labeled / --labeled_fraction")
    if (labeled is not None and labeled < 1) or (max_unlabeled is not None and max_unlabeled < 0):
        raise ConversionError("--labeled must be >= 1 and --max_unlabeled >= 0")
    n_test = _count(test, test_fraction, len(training), "test")
    if not 0 <= n_test < len(training):
        raise ConversionError(f"--test {n_test} must be in [0, {len(training)}) ({json_path} lists "
                              f"{len(training)} training cases)")
    available = len(training) - n_test
    n_labeled = max(1, _count(labeled, labeled_fraction, available, "labeled"))
    if n_labeled > available:
        raise ConversionError(f"--labeled {n_labeled} is larger than the {available} training cases available "
                              f"({json_path} lists {len(training)}, {n_test} go to the test set)")
    test_ids, labeled_ids, unlabeled_ids = draw_split(list(training), n_test, n_labeled, seed)

    def path(p: str) -> str:
        return str((root / p).resolve())

    cases = ([Case(i, "labeled", path(training[i]["image"]), path(training[i]["label"])) for i in labeled_ids]
             + [Case(i, "test", path(training[i]["image"]), path(training[i]["label"])) for i in test_ids]
             + [Case(i, "unlabeled", path(training[i]["image"])) for i in unlabeled_ids])
    if include_msd_test_as_unlabeled:
        test_images = [path(p) for p in msd.get("test", [])] or sorted(
            str(p) for p in (root / "imagesTs").glob("*.nii.gz") if not p.name.startswith("."))
        if not test_images:
            raise ConversionError(f"--include_msd_test_as_unlabeled: {json_path} lists no test images and "
                                  f"{root / 'imagesTs'} has none")
        cases += [Case(_case_id(p), "unlabeled", p) for p in test_images]
    if max_unlabeled is not None:  # first N unlabeled: sorted training remainder, then MSD test images
        cases = [c for c in cases if c.subset != "unlabeled"] + [
            c for c in cases if c.subset == "unlabeled"][:max_unlabeled]
    missing = [p for c in cases for p in (c.source, c.label_source) if p and not os.path.isfile(p)]
    if missing:
        raise ConversionError(f"missing file(s) listed in {json_path}: {', '.join(missing)}")
    split_info = {"source_dataset": f"MSD {msd.get('name', root.name)}", "source_path": str(root),
                  "converter": "nnssl_convert_msd", "arguments": arguments, "seed": seed}
    return write_dataset(resolve_target(dataset_id, name, output_root), cases, load_msd_case, channel_names,
                         labels, split_info, num_processes=num_processes, overwrite=overwrite, name=name,
                         description=msd.get("description", ""), reference=msd.get("reference", ""),
                         licence=msd.get("licence", msd.get("license", "")))


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="nnssl_convert_msd", formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Convert a Medical Segmentation Decathlon task (original layout) to the nnssl raw format. "
                    "The MSD training cases (sorted by id) are split with a seeded numpy Generator: first the "
                    "test cases (imagesTs/labelsTs, labels kept), then the labeled cases (imagesTr/labelsTr) "
                    "from the rest; the remainder goes to imagesUnlabeled. 4D images are split into channels "
                    "_0000, _0001, ...; labels are cast to integers. The split is recorded in nnssl_split.json.",
        epilog="Example: nnssl_convert_msd -i /data/Task04_Hippocampus -d 502 --labeled 5 --test 40 --seed 12345")
    p.add_argument("-i", "--input", required=True, metavar="TASK_FOLDER",
                   help="MSD task folder with dataset.json, imagesTr/, labelsTr/ (and optionally imagesTs/)")
    add_common_args(p, default_name=None)
    lab = p.add_mutually_exclusive_group(required=True)
    lab.add_argument("--labeled", type=int, help="number of labeled cases")
    lab.add_argument("--labeled_fraction", type=float,
                     help="labeled fraction of the non-test cases (rounded, at least 1)")
    tst = p.add_mutually_exclusive_group()
    tst.add_argument("--test", type=int, help="number of held-out test cases (default: 0)")
    tst.add_argument("--test_fraction", type=float, help="held-out fraction of the training cases (rounded)")
    p.add_argument("--seed", type=int, default=12345, help="seed of the split (default: 12345)")
    p.add_argument("--max_unlabeled", type=int, default=None, help="keep only the first N unlabeled ids")
    p.add_argument("--include_msd_test_as_unlabeled", action="store_true",
                   help="add the MSD test images (no labels) to imagesUnlabeled")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Console script ``nnssl_convert_msd``; returns the exit code."""
    a = build_parser().parse_args(argv)
    return run_cli(lambda: convert_msd(a.input, a.dataset_id, a.name, a.labeled, a.labeled_fraction, a.test,
                                       a.test_fraction, a.seed, a.max_unlabeled, a.include_msd_test_as_unlabeled,
                                       a.num_processes, a.overwrite, a.output_root))


if __name__ == "__main__":
    raise SystemExit(main())

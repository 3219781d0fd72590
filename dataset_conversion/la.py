"""Convert the Left Atrium set in the UA-MT h5 layout to the nnssl raw format (``nnssl_convert_la``).

Input ``LA_ROOT``::

    2018LA_Seg_Training Set/<ID>/mri_norm2.h5   datasets 'image' (float32, normalised), 'label' (uint8 0/1)
    train.list                                  training ids, one per line
    test.list                                   optional, test ids (used when present)

Orientation: the h5 arrays have axes (x, y, z). SimpleITK's ``GetImageFromArray`` expects (z, y, x), so the
arrays are transposed with ``arr.transpose(2, 1, 0)``: the ITK/NIfTI x axis is the h5 x axis. The spacing is
not stored in the h5 files; it is 0.625 mm isotropic and is written into the NIfTI headers (origin 0,
identity direction).

Split (as in the SSL papers): the first ``--labeled`` ids of train.list are labeled, the rest unlabeled.
test.list cases go to imagesTs/labelsTs. When no test list exists, ``--test N`` moves the LAST N ids of
train.list to the test set instead (not the papers' protocol).
"""
from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Optional, Sequence

import h5py
import numpy as np
import SimpleITK as sitk

from nnssl.dataset_conversion.common import (Case, ConversionError, add_common_args, arguments_record,
                                             read_h5_array, read_id_list, resolve_target, run_cli,
                                             write_dataset)

CASE_FOLDER = "2018LA_Seg_Training Set"
H5_NAME = "mri_norm2.h5"
SPACING = (0.625, 0.625, 0.625)
CHANNEL_NAMES = {"0": "MRI"}  # images are already normalised; nnU-Net's z-score on top is harmless
LABELS = {"background": 0, "left_atrium": 1}


def _to_sitk(arr: np.ndarray) -> sitk.Image:
    """(x, y, z) numpy array -> SimpleITK image with LA's 0.625 mm spacing (ITK x axis = array axis 0)."""
    img = sitk.GetImageFromArray(np.ascontiguousarray(arr.transpose(2, 1, 0)))
    img.SetSpacing(SPACING)
    return img


def load_la_case(case: Case) -> tuple[list[sitk.Image], Optional[sitk.Image]]:
    """Loader for :func:`write_dataset`: image (and label if the case has one) from ``mri_norm2.h5``."""
    path = case.source
    if not os.path.isfile(path):
        raise ConversionError(f"missing h5 file {path} (case {case.case_id})")
    try:
        f = h5py.File(path, "r")
    except OSError as e:
        raise ConversionError(f"cannot read h5 file {path}: {e}") from None
    with f:
        image = read_h5_array(f, "image", path).astype(np.float32, copy=False)
        label = read_h5_array(f, "label", path) if case.label_source else None
    return [_to_sitk(image)], (_to_sitk(label) if label is not None else None)


def convert_la(la_root: str | os.PathLike, dataset_id: int, name: str = "LA", labeled: int = 8,
               test_list: str | os.PathLike | None = None, max_unlabeled: int | None = None, test: int = 0,
               num_processes: int = 2, overwrite: bool = False,
               output_root: str | os.PathLike | None = None) -> Path:
    """Convert LA_ROOT (UA-MT layout) into ``<output_root or $nnUNet_raw>/DatasetXXX_<name>``; returns it."""
    arguments = arguments_record(locals())
    root = Path(la_root).absolute()
    train_ids = read_id_list(root / "train.list")
    if test_list is None and (root / "test.list").is_file():
        test_list = root / "test.list"
    if test and test_list is not None:
        raise ConversionError(f"--test {test} cannot be combined with the test list {test_list}")
    if test < 0 or labeled < 1 or (max_unlabeled is not None and max_unlabeled < 0):
        raise ConversionError("--labeled must be >= 1; --test and --max_unlabeled must be >= 0")
    if test >= len(train_ids):
        raise ConversionError(f"--test {test} leaves no training ids in {root / 'train.list'} "
                              f"({len(train_ids)} ids)")
    if test_list is not None:
        test_ids = read_id_list(test_list)
        overlap = sorted(set(test_ids) & set(train_ids))
        if overlap:
            raise ConversionError(f"ids in both {root / 'train.list'} and {test_list}: {', '.join(overlap)}")
    else:
        test_ids, train_ids = train_ids[len(train_ids) - test:], train_ids[:len(train_ids) - test]
    if labeled > len(train_ids):
        moved = f" after moving {test} to the test set" if test else ""
        raise ConversionError(f"--labeled {labeled} is larger than the {len(train_ids)} training ids available "
                              f"in {root / 'train.list'}{moved}")
    unlabeled_ids = train_ids[labeled:]
    if max_unlabeled is not None:
        unlabeled_ids = unlabeled_ids[:max_unlabeled]

    def h5(i: str) -> str:
        return str(root / CASE_FOLDER / i / H5_NAME)

    cases = ([Case(i, "labeled", h5(i), h5(i)) for i in train_ids[:labeled]]
             + [Case(i, "unlabeled", h5(i)) for i in unlabeled_ids]
             + [Case(i, "test", h5(i), h5(i)) for i in test_ids])
    missing = [c.source for c in cases if not os.path.isfile(c.source)]
    if missing:
        raise ConversionError(f"missing h5 file(s): {', '.join(missing)}")
    split_info = {"source_dataset": "LA (2018 Atrial Segmentation Challenge, UA-MT h5 layout)",
                  "source_path": str(root), "converter": "nnssl_convert_la", "arguments": arguments,
                  "seed": None, "test_source": str(test_list) if test_list else f"last {test} of train.list"}
    return write_dataset(resolve_target(dataset_id, name, output_root), cases, load_la_case, CHANNEL_NAMES,
                         LABELS, split_info, num_processes=num_processes, overwrite=overwrite,
                         name=name, description="Left atrium MRI (UA-MT h5 layout), spacing 0.625 mm")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="nnssl_convert_la", formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Convert the Left Atrium data (UA-MT h5 layout) to the nnssl raw format: labeled cases "
                    "in imagesTr/labelsTr, unlabeled in imagesUnlabeled, test in imagesTs/labelsTs, plus "
                    "dataset.json and nnssl_split.json.",
        epilog="Example: nnssl_convert_la -i /data/LA -d 501 --labeled 8   (the papers' 10% setting)\n"
               "h5 arrays (x, y, z) are written with ITK x = h5 x, spacing 0.625 mm isotropic.")
    p.add_argument("-i", "--input", required=True, metavar="LA_ROOT",
                   help="folder with '2018LA_Seg_Training Set/<ID>/mri_norm2.h5' and train.list")
    add_common_args(p, default_name="LA")
    p.add_argument("--labeled", type=int, default=8,
                   help="the first N ids of train.list are labeled, the rest unlabeled (default: 8, i.e. 10%%)")
    p.add_argument("--test_list", default=None,
                   help="test id list (default: LA_ROOT/test.list if present); its cases go to imagesTs/labelsTs")
    p.add_argument("--test", type=int, default=0,
                   help="without a test list: move the LAST N ids of train.list to imagesTs/labelsTs "
                        "(not the papers' protocol)")
    p.add_argument("--max_unlabeled", type=int, default=None,
                   help="keep only the first N unlabeled ids (quick runs)")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Console script ``nnssl_convert_la``; returns the exit code."""
    a = build_parser().parse_args(argv)
    return run_cli(lambda: convert_la(a.input, a.dataset_id, a.name, a.labeled, a.test_list, a.max_unlabeled,
                                      a.test, a.num_processes, a.overwrite, a.output_root))


if __name__ == "__main__":
    raise SystemExit(main())

"""Convert BraTS 2019 (training data) to the nnssl raw format (``nnssl_convert_brats``).

Input ``BRATS_ROOT``::

    HGG/<ID>/<ID>_t1.nii.gz  <ID>_t1ce.nii.gz  <ID>_t2.nii.gz  <ID>_flair.nii.gz  <ID>_seg.nii.gz
    LGG/<ID>/...                                                               (335 cases in BraTS 2019)

Channels follow nnU-Net's own BraTS conversion: ``_0000`` = t1, ``_0001`` = t1ce, ``_0002`` = t2,
``_0003`` = flair (dataset.json channel names "T1", "T1ce", "T2", "Flair"; nnU-Net z-scores each).
Geometry (spacing, origin, direction) of every modality is kept; all modalities and the segmentation must
have the same size and spacing.

Labels: BraTS values must be in {0, 1 (necrosis/non-enhancing core), 2 (edema), 4 (enhancing)}; any other
value is an error naming the file. Two label modes:

- ``--labels whole_tumor`` (default): seg > 0 -> 1, binary whole tumour (the SSL4MIS/semi-supervised papers'
  protocol); dataset.json labels {background 0, whole_tumor 1}.
- ``--labels regions``: nnU-Net's region-based BraTS setup: values 0/2/1/4 are stored as 0/1/2/3 (edema 1,
  necrosis/non-enhancing 2, enhancing 3) and dataset.json declares the overlapping regions whole_tumor
  [1, 2, 3], tumor_core [2, 3], enhancing_tumor [3] with ``regions_class_order`` [1, 2, 3]. nnU-Net's
  nnUNetTrainer trains on it with sigmoid outputs; the nnssl SSL trainers need softmax classes and refuse it.

Split: the sorted case ids (HGG and LGG together) are shuffled with ``numpy.random.default_rng(seed)
.permutation``; the first ``--num_train`` (250) are training, the next ``--num_val`` (25) validation, the
next ``--num_test`` (default: all remaining, 60 for BraTS 2019) test. Alternatively ``--split_lists
TRAIN VAL TEST`` gives one id per line each (SSL4MIS style). The first ``--labeled`` (default 25 = 10%; 50 is
20%) training ids (in the shuffled order, or list order) are labeled, the rest unlabeled. Validation and
test cases are BOTH written to imagesTs/labelsTs (so the dataset.json numTest and nnssl_split.json ``test``
contain both); nnssl_split.json additionally lists them separately as ``val`` and ``test_only``.
"""
from __future__ import annotations

import argparse
import functools
import os
from pathlib import Path
from typing import Optional, Sequence

import numpy as np
import SimpleITK as sitk

from nnssl.dataset_conversion.common import (Case, ConversionError, add_common_args, arguments_record,
                                             read_id_list, resolve_target, run_cli, write_dataset)

MODALITIES = ("t1", "t1ce", "t2", "flair")  # channel order 0000..0003, as in nnU-Net's BraTS conversion
CHANNEL_NAMES = {"0": "T1", "1": "T1ce", "2": "T2", "3": "Flair"}
GRADES = ("HGG", "LGG")
BRATS_VALUES = {0, 1, 2, 4}
LABEL_MODES = ("whole_tumor", "regions")
LABELS = {"whole_tumor": {"background": 0, "whole_tumor": 1},
          "regions": {"background": 0, "whole_tumor": (1, 2, 3), "tumor_core": (2, 3), "enhancing_tumor": (3,)}}
REGIONS_CLASS_ORDER = (1, 2, 3)
#: BraTS value -> stored value per label mode (the regions mapping is nnU-Net's Dataset137 convention)
VALUE_MAPS = {"whole_tumor": {0: 0, 1: 1, 2: 1, 4: 1}, "regions": {0: 0, 2: 1, 1: 2, 4: 3}}
DESCRIPTIONS = {"whole_tumor": "BraTS 2019, binary whole tumour (seg > 0); channels t1, t1ce, t2, flair",
                "regions": "BraTS 2019, regions whole tumour / tumour core / enhancing tumour; channels t1, t1ce, "
                           "t2, flair"}


def modality_files(case_dir: str) -> list[str]:
    name = os.path.basename(case_dir)
    return [os.path.join(case_dir, f"{name}_{m}.nii.gz") for m in MODALITIES]


def seg_file(case_dir: str) -> str:
    return os.path.join(case_dir, f"{os.path.basename(case_dir)}_seg.nii.gz")


def _read(path: str) -> sitk.Image:
    if not os.path.isfile(path):
        raise ConversionError(f"missing file {path}")
    try:
        img = sitk.ReadImage(path)
    except RuntimeError as e:
        raise ConversionError(f"cannot read {path}: {str(e).strip().splitlines()[-1]}") from None
    if img.GetDimension() != 3:
        raise ConversionError(f"{path} is {img.GetDimension()}D, expected 3D")
    return img


def _check_same_grid(ref: sitk.Image, ref_path: str, img: sitk.Image, path: str, what: str) -> None:
    if img.GetSize() != ref.GetSize():
        raise ConversionError(f"{what} shape mismatch: {path} {img.GetSize()} vs {ref_path} {ref.GetSize()}")
    if not np.allclose(img.GetSpacing(), ref.GetSpacing(), rtol=1e-4):
        raise ConversionError(f"{what} spacing mismatch: {path} {img.GetSpacing()} vs {ref_path} "
                              f"{ref.GetSpacing()}")


def map_labels(seg: sitk.Image, path: str, mode: str = "whole_tumor") -> sitk.Image:
    """BraTS segmentation -> stored labels of ``mode`` (see VALUE_MAPS); ConversionError on values outside
    {0, 1, 2, 4}."""
    arr = sitk.GetArrayFromImage(seg)
    values = set(np.unique(arr).tolist())
    unexpected = sorted(v for v in values if v not in BRATS_VALUES)
    if unexpected:
        raise ConversionError(f"label file {path} contains unexpected value(s) {unexpected} (BraTS labels are "
                              f"0, 1, 2, 4)")
    lut = np.zeros(max(BRATS_VALUES) + 1, dtype=np.uint8)
    for src, dst in VALUE_MAPS[mode].items():
        lut[src] = dst
    out = sitk.GetImageFromArray(lut[arr.astype(np.int64)])
    out.CopyInformation(seg)
    return out


def load_brats_case(case: Case, mode: str = "whole_tumor") -> tuple[list[sitk.Image], Optional[sitk.Image]]:
    """Loader for :func:`write_dataset`: the four modalities (t1, t1ce, t2, flair) and, if the case has a
    label, its labels in ``mode`` (whole-tumour mask or region values)."""
    paths = modality_files(case.source)
    images = [_read(p) for p in paths]
    for p, img in zip(paths[1:], images[1:]):
        _check_same_grid(images[0], paths[0], img, p, "modality")
    label = None
    if case.label_source:
        seg = _read(case.label_source)
        _check_same_grid(images[0], paths[0], seg, case.label_source, "image/label")
        label = map_labels(seg, case.label_source, mode)
        label.CopyInformation(images[0])  # same grid (checked); avoids float rounding differences in headers
    return images, label


def find_cases(root: Path) -> dict[str, str]:
    """Case id -> case folder over HGG/ and LGG/; ConversionError on duplicate ids or no cases."""
    found: dict[str, list[str]] = {}
    grades = [g for g in GRADES if (root / g).is_dir()]
    if not grades:
        raise ConversionError(f"{root} has neither HGG/ nor LGG/: not a BraTS 2019 training folder")
    for g in grades:
        for d in sorted((root / g).iterdir()):
            if d.is_dir() and not d.name.startswith("."):
                found.setdefault(d.name, []).append(str(d))
    dups = {i: ps for i, ps in found.items() if len(ps) > 1}
    if dups:
        raise ConversionError("duplicate case id(s) across HGG/LGG: "
                              + "; ".join(f"{i} ({', '.join(ps)})" for i, ps in sorted(dups.items())))
    if not found:
        raise ConversionError(f"no case folders in {', '.join(str(root / g) for g in grades)}")
    return {i: ps[0] for i, ps in sorted(found.items())}


def draw_split(case_ids: Sequence[str], num_train: int, num_val: int, num_test: Optional[int],
               seed: int) -> tuple[list[str], list[str], list[str]]:
    """(train, val, test) from a ``default_rng(seed).permutation`` of the sorted ids (train in shuffled order)."""
    ids = sorted(case_ids)
    if num_test is None:
        num_test = len(ids) - num_train - num_val
    if min(num_train, num_val, num_test) < 0 or num_train + num_val + num_test > len(ids):
        raise ConversionError(f"split {num_train} train / {num_val} val / {num_test} test does not fit the "
                              f"{len(ids)} cases found")
    order = [ids[k] for k in np.random.default_rng(seed).permutation(len(ids))]
    return (order[:num_train], order[num_train:num_train + num_val],
            order[num_train + num_val:num_train + num_val + num_test])


def convert_brats(brats_root: str | os.PathLike, dataset_id: int, name: str = "BraTS2019",
                  labels: str = "whole_tumor", labeled: int = 25, num_train: int = 250, num_val: int = 25,
                  num_test: Optional[int] = None, seed: int = 1234,
                  split_lists: Optional[Sequence[str | os.PathLike]] = None, num_processes: int = 2,
                  overwrite: bool = False, output_root: str | os.PathLike | None = None) -> Path:
    """Convert BRATS_ROOT (HGG/, LGG/) into ``<output_root or $nnUNet_raw>/DatasetXXX_<name>``; returns it."""
    arguments = arguments_record(locals())
    if split_lists is not None:
        arguments["split_lists"] = [str(p) for p in split_lists]
    if labels not in LABEL_MODES:
        raise ConversionError(f"--labels {labels} is not supported (one of {', '.join(LABEL_MODES)})")
    root = Path(brats_root).absolute()
    if not root.is_dir():
        raise ConversionError(f"input folder {root} does not exist")
    cases_found = find_cases(root)
    if split_lists is not None:
        if len(split_lists) != 3:
            raise ConversionError("--split_lists needs three files: TRAIN VAL TEST")
        train, val, test = (read_id_list(p) for p in split_lists)
        for (a, pa), (b, pb) in [((train, split_lists[0]), (val, split_lists[1])),
                                 ((train, split_lists[0]), (test, split_lists[2])),
                                 ((val, split_lists[1]), (test, split_lists[2]))]:
            both = sorted(set(a) & set(b))
            if both:
                raise ConversionError(f"ids in both {pa} and {pb}: {', '.join(both)}")
        unknown = [i for i in train + val + test if i not in cases_found]
        if unknown:
            raise ConversionError(f"id(s) from the split lists not found in {root}/HGG or LGG: {', '.join(unknown)}")
        seed_used = None
    else:
        train, val, test = draw_split(list(cases_found), num_train, num_val, num_test, seed)
        seed_used = seed
    if not 1 <= labeled <= len(train):
        raise ConversionError(f"--labeled {labeled} must be in [1, {len(train)}] (the number of training cases)")
    labeled_ids, unlabeled_ids = train[:labeled], train[labeled:]
    cases = ([Case(i, "labeled", cases_found[i], seg_file(cases_found[i])) for i in labeled_ids]
             + [Case(i, "unlabeled", cases_found[i]) for i in unlabeled_ids]
             + [Case(i, "test", cases_found[i], seg_file(cases_found[i])) for i in val + test])
    missing = [p for c in cases for p in modality_files(c.source) + ([c.label_source] if c.label_source else [])
               if not os.path.isfile(p)]
    if missing:
        raise ConversionError(f"missing modality/label file(s): {', '.join(missing)}")
    split_info = {"source_dataset": "BraTS 2019 training data (HGG + LGG)", "source_path": str(root),
                  "converter": "nnssl_convert_brats", "arguments": arguments, "seed": seed_used,
                  "label_mode": labels, "channels": dict(zip(CHANNEL_NAMES, MODALITIES)),
                  "val": sorted(val), "test_only": sorted(test),
                  "note": "'test' (imagesTs/labelsTs) = 'val' + 'test_only'"}
    extra = {"regions_class_order": list(REGIONS_CLASS_ORDER)} if labels == "regions" else {}
    return write_dataset(resolve_target(dataset_id, name, output_root), cases,
                         functools.partial(load_brats_case, mode=labels), CHANNEL_NAMES, LABELS[labels], split_info,
                         num_processes=num_processes, overwrite=overwrite, name=name,
                         description=DESCRIPTIONS[labels],
                         reference="Menze et al. 2015; Bakas et al. 2017, 2018 (BraTS)", **extra)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="nnssl_convert_brats", formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Convert BraTS 2019 (HGG/ and LGG/ case folders with _t1, _t1ce, _t2, _flair, _seg .nii.gz) "
                    "to the nnssl raw format. Channels: 0000 t1, 0001 t1ce, 0002 t2, 0003 flair. Labels: binary "
                    "whole tumour (seg > 0), or nnU-Net's BraTS regions with --labels regions. Split: seeded "
                    "shuffle of the sorted ids into train/val/test, or "
                    "--split_lists; the first --labeled training ids are labeled, the rest unlabeled; val and "
                    "test both go to imagesTs/labelsTs and are listed separately in nnssl_split.json.",
        epilog="Examples:\n"
               "  nnssl_convert_brats -i /data/MICCAI_BraTS_2019_Data_Training -d 505 --labeled 25 --seed 1234\n"
               "  nnssl_convert_brats -i /data/BraTS2019 -d 506 --labeled 50 --split_lists train.txt val.txt "
               "test.txt")
    p.add_argument("-i", "--input", required=True, metavar="BRATS_ROOT", help="folder with HGG/ and LGG/")
    add_common_args(p, default_name="BraTS2019")
    p.add_argument("--labels", choices=LABEL_MODES, default="whole_tumor",
                   help="whole_tumor: seg > 0 -> 1 (default, the SSL papers' protocol); regions: nnU-Net region "
                        "labels whole_tumor/tumor_core/enhancing_tumor (nnUNetTrainer only; the SSL trainers "
                        "need whole_tumor)")
    p.add_argument("--labeled", type=int, default=25,
                   help="the first N training ids are labeled, the rest unlabeled (default: 25 = 10%%; 50 = 20%%)")
    p.add_argument("--num_train", type=int, default=250, help="training cases of the seeded split (default: 250)")
    p.add_argument("--num_val", type=int, default=25, help="validation cases of the seeded split (default: 25)")
    p.add_argument("--num_test", type=int, default=None,
                   help="test cases of the seeded split (default: all remaining, 60 for BraTS 2019)")
    p.add_argument("--seed", type=int, default=1234,
                   help="seed of numpy.random.default_rng(seed).permutation over the sorted ids (default: 1234)")
    p.add_argument("--split_lists", nargs=3, default=None, metavar=("TRAIN", "VAL", "TEST"),
                   help="id list files (one id per line) instead of the seeded split")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Console script ``nnssl_convert_brats``; returns the exit code."""
    a = build_parser().parse_args(argv)
    return run_cli(lambda: convert_brats(a.input, a.dataset_id, a.name, a.labels, a.labeled, a.num_train,
                                         a.num_val, a.num_test, a.seed, a.split_lists, a.num_processes,
                                         a.overwrite, a.output_root))


if __name__ == "__main__":
    raise SystemExit(main())

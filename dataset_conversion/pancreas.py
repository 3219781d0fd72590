"""Convert NIH Pancreas-CT to the nnssl raw format (``nnssl_convert_pancreas``).

Two input layouts are accepted:

1. The public TCIA layout (default)::

       INPUT/PANCREAS_0001/<study>/<series>/*.dcm     one CT series per patient, nested folders searched
       ...                                             recursively with SimpleITK/GDCM (GetGDCMSeriesIDs)
       LABELS/label0001.nii.gz ...                      ``--labels LABELS`` (pancreas = 1)

   Intensities stay in Hounsfield units (the DICOM rescale slope/intercept are applied by GDCM). No clipping or
   normalisation is done here: the channel is named ``"CT"``, so nnU-Net's CTNormalization clips to the
   foreground percentiles and z-scores with the dataset-wide statistics itself. The image geometry (spacing,
   origin, direction) comes from the DICOM series. Image and label must have the same size and spacing; if
   the label's origin/direction differ from the DICOM series it is resampled onto the image grid (nearest
   neighbour, physical space), and an error is raised if that loses the label's foreground.

2. The widely shared preprocessed h5 layout (``--h5``)::

       INPUT/<name containing the number>.h5  or  INPUT/<id>/<anything>.h5   datasets 'image' and 'label'

   e.g. ``image0001_norm.h5`` or ``PANCREAS_0001/mri_norm2.h5``. As for LA, the arrays have axes (x, y, z)
   and are transposed for SimpleITK (ITK x = h5 axis 0). The files carry no geometry: ``--spacing`` (default
   1.0 1.0 1.0 mm; origin 0, identity direction) is written into the headers. These images are already
   clipped/normalised by whoever made them, so the channel is named ``"CT_preprocessed"`` (nnU-Net then uses
   its z-score normalisation instead of CT clipping in Hounsfield units).

Case ids are ``pancreas_XXXX`` with the 4-digit patient number (the last number in a folder/file name).

Split: ``--train_ids`` (default 1-62) and ``--test_ids`` (default 63-82) are patient-number ranges such as
``1-62`` or ``1,3,5-9``. Numbers in a range that the input does not contain are skipped with a note (the
public collection has no PANCREAS_0025 and PANCREAS_0070). The first ``--labeled`` (default 6, i.e. 10%; 12
is 20%) training ids in number order are labeled (imagesTr/labelsTr), the other training ids unlabeled
(imagesUnlabeled); test ids go to imagesTs/labelsTs. Labels: background 0, pancreas 1.
"""
from __future__ import annotations

import argparse
import os
import re
from pathlib import Path
from typing import Optional, Sequence

import h5py
import numpy as np
import SimpleITK as sitk

from nnssl.dataset_conversion.common import (Case, ConversionError, add_common_args, arguments_record,
                                             read_h5_array, read_image, resolve_target, run_cli, write_dataset)

CHANNEL_NAMES_DICOM = {"0": "CT"}
CHANNEL_NAMES_H5 = {"0": "CT_preprocessed"}
LABELS = {"background": 0, "pancreas": 1}
DEFAULT_TRAIN, DEFAULT_TEST = "1-62", "63-82"


def case_id(number: int) -> str:
    return f"pancreas_{number:04d}"


def parse_id_ranges(text: str, option: str) -> list[int]:
    """``"1-62"`` / ``"1,3,5-9"`` -> sorted unique patient numbers; ConversionError on bad syntax."""
    numbers: set[int] = set()
    for part in (p.strip() for p in text.split(",")):
        m = re.fullmatch(r"(\d+)(?:-(\d+))?", part)
        if not m or (m.group(2) and int(m.group(2)) < int(m.group(1))):
            raise ConversionError(f"{option}: cannot parse '{part}' (expected e.g. 1-62 or 1,3,5-9)")
        numbers.update(range(int(m.group(1)), int(m.group(2) or m.group(1)) + 1))
    return sorted(numbers)


def _number(name: str) -> Optional[int]:
    found = re.findall(r"\d+", name)
    return int(found[-1]) if found else None


def _index(entries: list[tuple[Optional[int], str]], where: str) -> dict[int, str]:
    """number -> path; ConversionError on two entries with the same patient number."""
    by_number: dict[int, list[str]] = {}
    for n, p in entries:
        if n is not None:
            by_number.setdefault(n, []).append(p)
    dups = {n: ps for n, ps in by_number.items() if len(ps) > 1}
    if dups:
        detail = "; ".join(f"{case_id(n)}: {', '.join(sorted(ps))}" for n, ps in sorted(dups.items()))
        raise ConversionError(f"duplicate case id(s) in {where}: {detail}")
    return {n: ps[0] for n, ps in by_number.items()}


def find_dicom_patients(root: Path) -> dict[int, str]:
    """Patient number -> patient folder (``PANCREAS_XXXX``) of the TCIA layout."""
    folders = [p for p in sorted(root.iterdir()) if p.is_dir() and not p.name.startswith(".")]
    return _index([(_number(p.name), str(p)) for p in folders], str(root))


def find_h5_files(root: Path) -> dict[int, str]:
    """Patient number -> h5 file: ``root/*.h5`` (number from the file name) and ``root/<id>/*.h5`` (number
    from the folder name, one h5 file per folder)."""
    entries = [(_number(p.stem), str(p)) for p in sorted(root.glob("*.h5")) if not p.name.startswith(".")]
    for d in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")):
        files = sorted(d.glob("*.h5"))
        if len(files) > 1:
            raise ConversionError(f"{d} holds {len(files)} h5 files ({', '.join(f.name for f in files)}); "
                                  f"expected one per case")
        if files:
            entries.append((_number(d.name), str(files[0])))
    return _index(entries, str(root))


def find_labels(labels_dir: Path) -> dict[int, str]:
    """Patient number -> ``labelXXXX.nii.gz``."""
    if not labels_dir.is_dir():
        raise ConversionError(f"label folder {labels_dir} does not exist")
    files = [p for p in sorted(labels_dir.iterdir()) if p.name.endswith((".nii.gz", ".nii"))
             and not p.name.startswith(".")]
    return _index([(_number(p.name.split(".")[0]), str(p)) for p in files], str(labels_dir))


def read_dicom_series(patient_dir: str) -> sitk.Image:
    """The single DICOM series below ``patient_dir`` (searched recursively), slices ordered by GDCM."""
    series: list[tuple[str, str]] = []  # (folder, series uid)
    for folder, _, files in sorted(os.walk(patient_dir)):
        if files:
            series += [(folder, uid) for uid in sitk.ImageSeriesReader.GetGDCMSeriesIDs(folder)]
    if not series:
        raise ConversionError(f"no DICOM series found below {patient_dir}")
    if len(series) > 1:
        raise ConversionError(f"{len(series)} DICOM series found below {patient_dir} (expected one): "
                              + "; ".join(f"{os.path.relpath(f, patient_dir)} [{uid}]" for f, uid in series))
    folder, uid = series[0]
    reader = sitk.ImageSeriesReader()
    reader.SetFileNames(sitk.ImageSeriesReader.GetGDCMSeriesFileNames(folder, uid))
    try:
        img = reader.Execute()
    except RuntimeError as e:
        raise ConversionError(f"cannot read the DICOM series in {folder}: "
                              f"{str(e).strip().splitlines()[-1]}") from None
    if img.GetDimension() != 3:
        raise ConversionError(f"DICOM series in {folder} is {img.GetDimension()}D, expected 3D")
    return img


def align_label(image: sitk.Image, label: sitk.Image, image_source: str, label_source: str) -> sitk.Image:
    """Check size/spacing; put the label on the image grid (resampled if origin/direction differ)."""
    if label.GetSize() != image.GetSize():
        raise ConversionError(f"image/label shape mismatch: image {image_source} {image.GetSize()} vs label "
                              f"{label_source} {label.GetSize()}")
    if not np.allclose(label.GetSpacing(), image.GetSpacing(), rtol=1e-3):
        raise ConversionError(f"image/label spacing mismatch: image {image_source} {image.GetSpacing()} vs "
                              f"label {label_source} {label.GetSpacing()}")
    if (np.allclose(label.GetOrigin(), image.GetOrigin(), atol=1e-2)
            and np.allclose(label.GetDirection(), image.GetDirection(), atol=1e-4)):
        label.CopyInformation(image)  # identical up to rounding
        return label
    resampled = sitk.Resample(label, image, sitk.Transform(), sitk.sitkNearestNeighbor, 0, label.GetPixelID())
    before = int(np.count_nonzero(sitk.GetArrayViewFromImage(label)))
    after = int(np.count_nonzero(sitk.GetArrayViewFromImage(resampled)))
    if before and after < 0.9 * before:
        raise ConversionError(f"label {label_source} does not cover the same physical region as image "
                              f"{image_source} (origin {label.GetOrigin()} vs {image.GetOrigin()}, direction "
                              f"{label.GetDirection()} vs {image.GetDirection()})")
    return resampled


def load_dicom_case(case: Case) -> tuple[list[sitk.Image], Optional[sitk.Image]]:
    """Loader for :func:`write_dataset`: CT series in HU and (if the case has one) its label."""
    image = read_dicom_series(case.source)
    label = None
    if case.label_source:
        label = align_label(image, read_image(case.label_source), case.source, case.label_source)
    return [image], label


def load_h5_case(case: Case, spacing: Sequence[float]) -> tuple[list[sitk.Image], Optional[sitk.Image]]:
    """Loader for the h5 layout (bind ``spacing`` with functools.partial)."""
    try:
        f = h5py.File(case.source, "r")
    except OSError as e:
        raise ConversionError(f"cannot read h5 file {case.source}: {e}") from None
    with f:
        image = read_h5_array(f, "image", case.source).astype(np.float32, copy=False)
        label = read_h5_array(f, "label", case.source) if case.label_source else None
    if label is not None and label.shape != image.shape:
        raise ConversionError(f"image/label shape mismatch in {case.source}: 'image' {image.shape} vs "
                              f"'label' {label.shape}")

    def to_sitk(arr: np.ndarray) -> sitk.Image:
        img = sitk.GetImageFromArray(np.ascontiguousarray(arr.transpose(2, 1, 0)))
        img.SetSpacing([float(s) for s in spacing])
        return img

    return [to_sitk(image)], (to_sitk(label) if label is not None else None)


class _H5Loader:
    """Picklable loader with the spacing bound (the writer may use a spawn pool)."""

    def __init__(self, spacing: Sequence[float]):
        self.spacing = tuple(float(s) for s in spacing)

    def __call__(self, case: Case):
        return load_h5_case(case, self.spacing)


def convert_pancreas(input_dir: str | os.PathLike, dataset_id: int, name: str = "Pancreas",
                     labels_dir: str | os.PathLike | None = None, h5: bool = False,
                     spacing: Sequence[float] = (1.0, 1.0, 1.0), labeled: int = 6,
                     train_ids: str = DEFAULT_TRAIN, test_ids: str = DEFAULT_TEST, num_processes: int = 2,
                     overwrite: bool = False, output_root: str | os.PathLike | None = None) -> Path:
    """Convert Pancreas-CT (TCIA DICOM + label NIfTIs, or the h5 layout) into
    ``<output_root or $nnUNet_raw>/DatasetXXX_<name>``; returns it."""
    arguments = arguments_record(locals())
    root = Path(input_dir).absolute()
    if not root.is_dir():
        raise ConversionError(f"input folder {root} does not exist")
    if labeled < 1:
        raise ConversionError("--labeled must be >= 1")
    train_numbers = parse_id_ranges(train_ids, "--train_ids")
    test_numbers = parse_id_ranges(test_ids, "--test_ids") if test_ids.strip() else []
    overlap = sorted(set(train_numbers) & set(test_numbers))
    if overlap:
        raise ConversionError(f"ids in both --train_ids and --test_ids: {', '.join(map(case_id, overlap))}")
    if h5:
        if labels_dir is not None:
            raise ConversionError("--labels is for the DICOM layout; h5 files hold their own 'label' dataset")
        if len(spacing) != 3 or min(spacing) <= 0:
            raise ConversionError(f"--spacing needs three positive values, got {list(spacing)}")
        sources = find_h5_files(root)
        label_files = sources
    else:
        if labels_dir is None:
            raise ConversionError("the DICOM layout needs --labels DIR (folder of labelXXXX.nii.gz)")
        sources = find_dicom_patients(root)
        label_files = find_labels(Path(labels_dir).absolute())
    absent = [n for n in train_numbers + test_numbers if n not in sources]
    if absent:
        print(f"note: {len(absent)} id(s) of the split are not in {root} and are skipped: "
              f"{', '.join(map(case_id, absent[:20]))}{' ...' if len(absent) > 20 else ''}", flush=True)
    train = [n for n in train_numbers if n in sources]
    test = [n for n in test_numbers if n in sources]
    if labeled > len(train):
        raise ConversionError(f"--labeled {labeled} is larger than the {len(train)} training cases found in "
                              f"{root} for --train_ids {train_ids}")
    needs_label = train[:labeled] + test
    missing = [n for n in needs_label if n not in label_files]
    if missing:
        where = Path(labels_dir).absolute() if labels_dir is not None else root
        raise ConversionError(f"missing label file(s) in {where} for: "
                              + ", ".join(f"{case_id(n)} (label{n:04d}.nii.gz)" for n in missing))
    cases = ([Case(case_id(n), "labeled", sources[n], label_files[n]) for n in train[:labeled]]
             + [Case(case_id(n), "unlabeled", sources[n]) for n in train[labeled:]]
             + [Case(case_id(n), "test", sources[n], label_files[n]) for n in test])
    split_info = {"source_dataset": "NIH Pancreas-CT (TCIA)" + (", preprocessed h5 layout" if h5 else ""),
                  "source_path": str(root), "converter": "nnssl_convert_pancreas", "arguments": arguments,
                  "seed": None, "skipped_absent_ids": [case_id(n) for n in absent]}
    loader = _H5Loader(spacing) if h5 else load_dicom_case
    description = ("NIH Pancreas-CT, preprocessed h5 layout, spacing %s mm (assumed)" % list(spacing) if h5
                   else "NIH Pancreas-CT from the TCIA DICOM series, intensities in HU")
    return write_dataset(resolve_target(dataset_id, name, output_root), cases, loader,
                         CHANNEL_NAMES_H5 if h5 else CHANNEL_NAMES_DICOM, LABELS, split_info,
                         num_processes=num_processes, overwrite=overwrite, name=name, description=description,
                         reference="Roth et al., DeepOrgan, MICCAI 2015; TCIA Pancreas-CT")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="nnssl_convert_pancreas", formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Convert NIH Pancreas-CT to the nnssl raw format. Input: the TCIA layout (folder of "
                    "PANCREAS_XXXX patient folders with nested DICOM series, plus --labels DIR with "
                    "labelXXXX.nii.gz) or, with --h5, the preprocessed h5 layout ('image'/'label' datasets). "
                    "DICOM intensities stay in Hounsfield units (channel 'CT': nnU-Net's CT normalisation "
                    "clips and normalises). The first --labeled training ids are labeled (imagesTr/labelsTr), "
                    "the other training ids unlabeled (imagesUnlabeled), test ids go to imagesTs/labelsTs.",
        epilog="Examples:\n"
               "  nnssl_convert_pancreas -i /data/Pancreas-CT -d 503 --labels /data/TCIA_pancreas_labels "
               "--labeled 6\n"
               "  nnssl_convert_pancreas -i /data/Pancreas_h5 --h5 --spacing 1 1 1 -d 504 --labeled 12\n"
               "Default split: 1-62 train, 63-82 test (absent numbers, e.g. 25 and 70, are skipped).")
    p.add_argument("-i", "--input", required=True, metavar="DIR",
                   help="folder of PANCREAS_XXXX DICOM patient folders (or of h5 files with --h5)")
    p.add_argument("--labels", default=None, metavar="DIR",
                   help="folder of labelXXXX.nii.gz (DICOM layout; pancreas = 1)")
    p.add_argument("--h5", action="store_true",
                   help="input is the preprocessed h5 layout: <name>.h5 or <id>/<name>.h5 with 'image' and "
                        "'label' datasets of axes (x, y, z)")
    p.add_argument("--spacing", type=float, nargs=3, default=[1.0, 1.0, 1.0], metavar=("SX", "SY", "SZ"),
                   help="voxel spacing (mm) written for the h5 layout, which stores none (default: 1 1 1)")
    add_common_args(p, default_name="Pancreas")
    p.add_argument("--labeled", type=int, default=6,
                   help="the first N training ids are labeled, the rest unlabeled (default: 6 = 10%%; 12 = 20%%)")
    p.add_argument("--train_ids", default=DEFAULT_TRAIN,
                   help=f"patient numbers of the training set, e.g. 1-62 or 1,3,5-9 (default: {DEFAULT_TRAIN})")
    p.add_argument("--test_ids", default=DEFAULT_TEST,
                   help=f"patient numbers of the test set, '' for none (default: {DEFAULT_TEST})")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Console script ``nnssl_convert_pancreas``; returns the exit code."""
    a = build_parser().parse_args(argv)
    return run_cli(lambda: convert_pancreas(a.input, a.dataset_id, a.name, a.labels, a.h5, a.spacing, a.labeled,
                                            a.train_ids, a.test_ids, a.num_processes, a.overwrite,
                                            a.output_root))


if __name__ == "__main__":
    raise SystemExit(main())

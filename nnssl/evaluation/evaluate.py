"""Evaluate a folder of predicted label maps against reference label maps (``nnssl_evaluate``).

Per case and foreground class: Dice, Jaccard, HD95 and ASD in voxels (the SSL papers' medpy
convention, no spacing) and in mm (spacing of the reference image), and the voxel counts TP, FP, FN,
n_pred, n_ref (as in nnU-Net's summary.json; in the JSON only); see ``metrics.py``.
Aggregates: per class mean ± std over cases (population std, NaN ignored), the number of
undefined distances, and a "mean" row = per-case mean over classes, then mean ± std over cases
(a case with an undefined distance in any class is left out of that distance's mean row).
"""
from __future__ import annotations

import argparse
import json
import math
import multiprocessing
import os
import sys
import warnings
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
import SimpleITK as sitk

from nnssl.evaluation.metrics import case_metrics

METRICS = ("dice", "jaccard", "hd95_vox", "asd_vox", "hd95_mm", "asd_mm")
COLUMNS = ("Dice (%)", "Jaccard (%)", "HD95 (voxel)", "ASD (voxel)", "HD95 (mm)", "ASD (mm)")
DEFAULT_OUTPUT = "nnssl_summary.json"


def read_labelmap(path: str | Path) -> tuple[np.ndarray, tuple[float, ...]]:
    """Label map as an integer array in numpy axis order (z, y, x) and its spacing in that order."""
    img = sitk.ReadImage(str(path))
    arr = sitk.GetArrayFromImage(img)
    if not np.issubdtype(arr.dtype, np.integer):
        arr = np.rint(arr)  # some labels are stored as float
    return arr.astype(np.int32, copy=False), tuple(float(s) for s in img.GetSpacing()[::-1])


def labels_from_dataset(dataset: str | int) -> dict[str, int]:
    """Foreground labels {name: value} of an nnU-Net dataset (ID or DatasetXXX_Name).

    Reads dataset.json from $nnUNet_raw/<name>/ or $nnUNet_preprocessed/<name>/; skips value 0
    (background) and the "ignore" label. MSD-style {"1": "name"} maps are accepted too.
    """
    from nnunetv2.utilities.dataset_name_id_conversion import maybe_convert_to_dataset_name
    try:
        name = maybe_convert_to_dataset_name(str(dataset))
    except RuntimeError as e:
        raise FileNotFoundError(f"dataset {dataset!r} not found: {e}") from None
    roots = [os.environ.get(k) for k in ("nnUNet_raw", "nnUNet_preprocessed")]
    files = [Path(r, name, "dataset.json") for r in roots if r]
    found = [f for f in files if f.is_file()]
    if not found:
        where = ", ".join(map(str, files)) or "nothing ($nnUNet_raw, $nnUNet_preprocessed unset)"
        raise FileNotFoundError(f"no dataset.json for {name}; looked at: {where}")
    raw = json.loads(found[0].read_text())["labels"]
    if raw and all(k.isdigit() and isinstance(v, str) for k, v in raw.items()):
        raw = {v: int(k) for k, v in raw.items()}  # MSD style {"1": "Anterior"}
    out = {}
    for k, v in raw.items():
        if k == "ignore":
            continue
        if not isinstance(v, int):
            raise ValueError(f"label {k!r}={v!r} in {found[0]} is a region; pass labels with -l")
        if v != 0:
            out[k] = v
    return out


def _evaluate_case(task: tuple[str, str, list[int] | None]) -> dict:
    """Worker: metrics of one case; labels None = all nonzero values of reference ∪ prediction."""
    ref_file, pred_file, labels = task
    ref, spacing = read_labelmap(ref_file)
    pred, _ = read_labelmap(pred_file)
    if ref.shape != pred.shape:
        raise ValueError(f"shape mismatch: reference {ref_file} has shape {ref.shape}, "
                         f"prediction {pred_file} has shape {pred.shape}")
    ref_labels = [int(v) for v in np.unique(ref) if v != 0]
    if labels is None:
        labels = sorted(set(ref_labels) | {int(v) for v in np.unique(pred) if v != 0})
    return {"case": Path(ref_file).name, "reference_file": ref_file, "prediction_file": pred_file,
            "spacing": list(spacing), "ref_labels": ref_labels,
            "metrics": case_metrics(pred, ref, labels, spacing)}


def _both_empty() -> dict[str, float | bool | int]:
    """Metrics of a class absent from both prediction and reference: ``case_metrics``' own empty-mask rule."""
    empty = np.zeros(1, np.int32)
    return case_metrics(empty, empty, [1], None)[1]


def _stats(values: np.ndarray) -> dict[str, float | int]:
    """mean and population std ignoring NaN, n defined, n_undefined (NaN count)."""
    ok = values[~np.isnan(values)]
    return {"mean": float(ok.mean()) if ok.size else math.nan,
            "std": float(ok.std()) if ok.size else math.nan,
            "n": int(ok.size), "n_undefined": int(values.size - ok.size)}


def aggregate(per_case: list[dict], labels: Sequence[int]) -> dict[str, dict]:
    """{str(label) | "mean": {metric: stats}} over cases; see the module docstring."""
    table = {m: np.array([[c["metrics"][lab][m] for lab in labels] for c in per_case], float)
             .reshape(len(per_case), len(labels)) for m in METRICS}  # (cases, classes)
    out: dict[str, dict] = {str(lab): {m: _stats(table[m][:, i]) for m in METRICS}
                            for i, lab in enumerate(labels)}
    out["mean"] = {m: _stats(table[m].mean(axis=1)) for m in METRICS}
    return out


def format_table(summary: dict) -> str:
    """Markdown table in the papers' layout plus a line on undefined distances."""
    names = {v: k for k, v in summary["label_names"].items()}
    lines = ["| Class | " + " | ".join(COLUMNS) + " |", "|---" * (len(COLUMNS) + 1) + "|"]
    for key, stats in summary["aggregate"].items():
        row = key if key == "mean" else (f"{names[int(key)]} ({key})" if int(key) in names else key)
        cells = []
        for m in METRICS:
            scale = 100.0 if m in ("dice", "jaccard") else 1.0
            cells.append(f"{stats[m]['mean'] * scale:.2f} ± {stats[m]['std'] * scale:.2f}")
        lines.append(f"| {row} | " + " | ".join(cells) + " |")
    und = summary["cases_with_undefined_distances"]
    per_class = ", ".join(f"class {k}: {v['hd95_vox']['n_undefined']}"
                          for k, v in summary["aggregate"].items() if k != "mean")
    lines.append(f"\nUndefined HD95/ASD (exactly one of prediction/reference empty): {len(und)} of "
                 f"{summary['num_cases']} cases ({per_class}); left out of the distance means."
                 + (f" Cases: {', '.join(und)}" if und else ""))
    return "\n".join(lines)


def _json_safe(obj):
    """NaN -> None (JSON null), recursively; dict keys to str."""
    if isinstance(obj, dict):
        return {str(k): _json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_json_safe(v) for v in obj]
    if isinstance(obj, float) and math.isnan(obj):
        return None
    return obj


def match_cases(ref_dir: Path, pred_dir: Path, file_ending: str) -> list[tuple[Path, Path]]:
    """(reference, prediction) pairs matched by file name; missing predictions are an error."""
    for d, what in ((ref_dir, "reference"), (pred_dir, "prediction")):
        if not d.is_dir():
            raise FileNotFoundError(f"{what} folder not found: {d}")
    refs = sorted(p.name for p in ref_dir.iterdir() if p.name.endswith(file_ending))
    preds = {p.name for p in pred_dir.iterdir() if p.name.endswith(file_ending)}
    if not refs:
        raise FileNotFoundError(f"no reference files ending in {file_ending!r} in {ref_dir}")
    missing = [n for n in refs if n not in preds]
    if missing:
        raise FileNotFoundError(f"{len(missing)} prediction(s) missing in {pred_dir}: "
                                + ", ".join(missing))
    extra = sorted(preds - set(refs))
    if extra:
        warnings.warn(f"ignoring {len(extra)} prediction(s) without reference: {', '.join(extra)}")
    return [(ref_dir / n, pred_dir / n) for n in refs]


def evaluate_folders(ref_dir: str | Path, pred_dir: str | Path,
                     labels: Sequence[int] | Mapping[str, int] | None = None,
                     file_ending: str = ".nii.gz", num_processes: int = 2,
                     output_file: str | Path | None = None, overwrite: bool = False,
                     verbose: bool = True) -> dict:
    """Evaluate every reference file of ``ref_dir`` against the same-named file in ``pred_dir``.

    labels: foreground values (or {name: value}); None = union of nonzero reference values.
    Writes the summary (per case + aggregates; NaN as null) to ``output_file`` (default
    ``<pred_dir>/nnssl_summary.json``; an existing file raises FileExistsError unless
    ``overwrite``), prints the markdown table if ``verbose`` and returns the summary (NaN kept).
    """
    ref_dir, pred_dir = Path(ref_dir), Path(pred_dir)
    pairs = match_cases(ref_dir, pred_dir, file_ending)
    output = Path(output_file) if output_file is not None else pred_dir / DEFAULT_OUTPUT
    if output.exists() and not overwrite:
        raise FileExistsError(f"output file exists: {output} (use --overwrite to replace it)")
    names = dict(labels) if isinstance(labels, Mapping) else {}
    wanted = sorted(int(v) for v in (names.values() if names else labels)) if labels else None
    tasks = [(str(r), str(p), wanted) for r, p in pairs]
    if num_processes <= 1 or len(tasks) == 1:
        per_case = [_evaluate_case(t) for t in tasks]
    else:
        with multiprocessing.get_context("spawn").Pool(min(num_processes, len(tasks))) as pool:
            chunk = max(1, len(tasks) // (4 * num_processes))
            per_case = pool.map(_evaluate_case, tasks, chunksize=chunk)
    if wanted is None:  # union of reference labels; classes absent from a case are both-empty
        wanted = sorted({lab for c in per_case for lab in c["ref_labels"]})
        for c in per_case:
            c["metrics"] = {lab: c["metrics"].get(lab) or _both_empty() for lab in wanted}
    if not wanted:
        raise ValueError(f"no foreground labels found in the references in {ref_dir}")
    for c in per_case:
        del c["ref_labels"]
    undefined = [c["case"] for c in per_case
                 if any(c["metrics"][lab]["distance_undefined"] for lab in wanted)]
    summary = {"reference_folder": str(ref_dir), "prediction_folder": str(pred_dir),
               "labels": wanted, "label_names": names, "num_cases": len(per_case),
               "cases_with_undefined_distances": undefined,
               "aggregate": aggregate(per_case, wanted), "per_case": per_case}
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(_json_safe(summary), indent=2, allow_nan=False))
    if verbose:
        print(format_table(summary))
        print(f"\nSummary written to {output}")
    return summary


def main(argv: Sequence[str] | None = None) -> None:
    """Command line entry point ``nnssl_evaluate``."""
    p = argparse.ArgumentParser(
        prog="nnssl_evaluate",
        description="Evaluate predicted segmentations against references with the SSL papers' "
                    "metrics: Dice, Jaccard, HD95 and ASD (medpy convention; ASD is "
                    "one-directional pred->ref) in voxels and in mm (spacing of the reference "
                    "image). Cases are matched by file name. Prints a markdown table (mean ± std "
                    "per class and the mean over foreground classes) and writes a JSON summary.",

        epilog="Empty masks: both empty -> Dice 1, HD95 0; exactly one empty -> Dice 0 and "
               "HD95/ASD undefined (null in the JSON, excluded from means, counted).")
    p.add_argument("-ref", required=True, help="folder with reference label maps")
    p.add_argument("-pred", required=True,
                   help="folder with predicted label maps (same file names)")
    g = p.add_mutually_exclusive_group()
    g.add_argument("-d", metavar="DATASET", help="nnU-Net dataset ID or name; labels are read from "
                   "its dataset.json in $nnUNet_raw or $nnUNet_preprocessed")
    g.add_argument("-l", type=int, nargs="+", metavar="L",
                   help="foreground label values to evaluate (default: -d, else all nonzero "
                        "values found in the references)")
    p.add_argument("-o", metavar="OUT.json", help=f"output JSON (default: PRED/{DEFAULT_OUTPUT})")
    p.add_argument("-np", type=int, default=2,
                   help="number of worker processes (1 = in-process; default 2)")
    p.add_argument("--file_ending", default=".nii.gz",
                   help="file ending of the label maps (default .nii.gz)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing output JSON")
    a = p.parse_args(argv)
    try:
        labels = labels_from_dataset(a.d) if a.d else a.l
        evaluate_folders(a.ref, a.pred, labels, a.file_ending, a.np, a.o, a.overwrite)
    except (FileNotFoundError, FileExistsError, ValueError) as e:
        p.exit(2, f"nnssl_evaluate: error: {e}\n")


if __name__ == "__main__":
    main(sys.argv[1:])

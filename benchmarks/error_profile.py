"""Where a segmentation's errors lie: too much or too little foreground, stray blobs or one body.

Two views, as markdown rows for docs/benchmarks.md:

* ``voxels NAME=SUMMARY.json ...``: from ``nnssl_evaluate`` summaries (their per-case voxel
  counts), per run: mean Dice, the median volume ratio ``|P| / |R|``, and the false-positive and
  false-negative shares ``FP / |R|`` and ``FN / |R|`` (mean and median over cases). Cases with an
  empty reference have no ratio and are left out of those columns (their count is printed).
* ``components PRED_DIR REF_DIR``: from label maps, per folder: mean Dice before and after keeping
  only the largest connected component of the prediction, the median number of components, the
  mean share of predicted foreground outside the largest component, and the median volume ratio.

Usage: python benchmarks/error_profile.py voxels supervised=docs/results/la_cpu/supervised_r1.json
       python benchmarks/error_profile.py components PREDICTIONS LABELS_TS
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Dict, List, Optional, Sequence

import numpy as np
from scipy import ndimage

from nnssl.evaluation.evaluate import match_cases, read_labelmap
from nnssl.evaluation.metrics import dice

VOXEL_HEADER = ("| run | Dice (%) | volume ratio (median) | FP / ref (mean, median) "
                "| FN / ref (mean, median) |\n|---|---|---|---|---|")
COMPONENT_HEADER = ("| predictions | Dice (%) | Dice, largest component (%) | components (median) "
                    "| foreground outside it (mean) | volume ratio (median) |\n|---|---|---|---|---|---|")


def voxel_profile(summary: Dict, label: Optional[int] = None) -> Dict[str, float]:
    """Error shares of one ``nnssl_evaluate`` summary for ``label`` (default: its first label).

    Returns ``dice`` (mean over all cases), ``volume_ratio`` (median of |P|/|R|), ``fp_mean``,
    ``fp_median`` (of FP/|R|), ``fn_mean``, ``fn_median`` (of FN/|R|), and ``n_cases`` /
    ``n_empty_ref`` (cases, and those left out of the ratios for an empty reference).
    """
    key = str(summary["labels"][0] if label is None else label)
    rows = []
    for case in summary["per_case"]:
        if key not in case["metrics"]:
            raise KeyError(f"case {case['case']} has no metrics for label {key}")
        m = case["metrics"][key]
        if "n_pred" not in m:
            raise ValueError(f"case {case['case']}: the summary has no voxel counts (n_pred, FP, FN); "
                             "evaluate the predictions again with nnssl_evaluate")
        rows.append((m["dice"], m["n_pred"], m["n_ref"], m["FP"], m["FN"]))
    a = np.asarray(rows, float)
    defined = a[a[:, 2] > 0]
    shares = dict.fromkeys(("volume_ratio", "fp_mean", "fp_median", "fn_mean", "fn_median"), float("nan"))
    if len(defined):
        volume, fp, fn = (defined[:, col] / defined[:, 2] for col in (1, 3, 4))
        shares = {"volume_ratio": float(np.median(volume)), "fp_mean": float(fp.mean()),
                  "fp_median": float(np.median(fp)), "fn_mean": float(fn.mean()), "fn_median": float(np.median(fn))}
    return {"dice": float(a[:, 0].mean()), **shares, "n_cases": len(a), "n_empty_ref": len(a) - len(defined)}


def component_profile(pred: np.ndarray, ref: np.ndarray) -> Dict[str, float]:
    """Connected-component view of one binary prediction against its reference.

    Returns ``dice``, ``dice_largest`` (Dice of the prediction's largest connected component,
    face connectivity), ``n_components``, ``outside_largest`` (1 - |largest| / |P|, 0 for an
    empty prediction) and ``volume_ratio`` (|P| / |R|, nan for an empty reference).
    """
    pred, ref = np.asarray(pred, bool), np.asarray(ref, bool)
    labels, n = ndimage.label(pred)
    largest = pred
    if n > 1:
        sizes = np.bincount(labels.ravel())[1:]
        largest = labels == (int(np.argmax(sizes)) + 1)
    n_pred, n_ref = int(pred.sum()), int(ref.sum())
    return {"dice": dice(pred, ref), "dice_largest": dice(largest, ref), "n_components": n,
            "outside_largest": 1.0 - largest.sum() / n_pred if n_pred else 0.0,
            "volume_ratio": n_pred / n_ref if n_ref else float("nan")}


def folder_component_rows(pred_dir: Path, ref_dir: Path, label: Optional[int] = None,
                          file_ending: str = ".nii.gz") -> List[Dict[str, float]]:
    """``component_profile`` of every reference file's prediction (same file name, paired as
    ``nnssl_evaluate`` pairs them: a missing prediction is an error); ``label`` selects one label value,
    None takes every foreground label as one mask."""
    select = (lambda x: x > 0) if label is None else (lambda x: x == label)
    rows = []
    for ref_file, pred_file in match_cases(ref_dir, pred_dir, file_ending):  # nnssl_evaluate's pairing
        pred, _ = read_labelmap(pred_file)
        ref, _ = read_labelmap(ref_file)
        if pred.shape != ref.shape:
            raise ValueError(f"{pred_file}: shape {pred.shape} differs from the reference's {ref.shape}")
        rows.append(component_profile(select(pred), select(ref)))
    return rows


def voxel_row(name: str, p: Dict[str, float]) -> str:
    """One markdown row of ``VOXEL_HEADER``."""
    return (f"| {name} | {p['dice'] * 100:.2f} | {p['volume_ratio']:.2f} | {p['fp_mean']:.2f}, "
            f"{p['fp_median']:.2f} | {p['fn_mean']:.2f}, {p['fn_median']:.2f} |")


def component_row(name: str, rows: Sequence[Dict[str, float]]) -> str:
    """One markdown row of ``COMPONENT_HEADER`` over the cases' ``component_profile``s."""
    col = lambda k: np.array([r[k] for r in rows], float)  # noqa: E731
    return (f"| {name} | {col('dice').mean() * 100:.2f} | {col('dice_largest').mean() * 100:.2f} "
            f"| {np.median(col('n_components')):.0f} | {col('outside_largest').mean() * 100:.1f}% "
            f"| {np.nanmedian(col('volume_ratio')):.2f} |")


def main(argv: Optional[Sequence[str]] = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="view", required=True)
    vox = sub.add_parser("voxels", help="error shares from nnssl_evaluate summaries")
    vox.add_argument("runs", nargs="+", metavar="NAME=SUMMARY.json")
    vox.add_argument("--label", type=int, help="label value (default: each summary's first label)")
    comp = sub.add_parser("components", help="connected components of predicted label maps")
    comp.add_argument("pred_dir", type=Path)
    comp.add_argument("ref_dir", type=Path)
    comp.add_argument("--label", type=int, help="label value (default: all foreground as one mask)")
    comp.add_argument("--file_ending", default=".nii.gz")
    args = parser.parse_args(argv)
    if args.view == "voxels":
        print(VOXEL_HEADER)
        for item in args.runs:
            name, sep, path = item.partition("=")
            if not sep or not name or not path:
                parser.error(f"{item!r}: expected NAME=SUMMARY.json")
            if not Path(path).is_file():
                parser.error(f"{path}: no such summary file")
            try:
                profile = voxel_profile(json.loads(Path(path).read_text()), args.label)
            except (ValueError, KeyError) as e:  # json.JSONDecodeError is a ValueError
                parser.error(f"{path}: {e.args[0] if e.args else e}")
            print(voxel_row(name, profile))
            if profile["n_empty_ref"]:
                print(f"({name}: {profile['n_empty_ref']} of {profile['n_cases']} cases have an empty "
                      "reference and are left out of the ratios)")
    else:
        for d in (args.pred_dir, args.ref_dir):
            if not d.is_dir():
                parser.error(f"{d}: no such folder")
        print(COMPONENT_HEADER)
        print(component_row(str(args.pred_dir), folder_component_rows(args.pred_dir, args.ref_dir,
                                                                      args.label, args.file_ending)))


if __name__ == "__main__":
    main()

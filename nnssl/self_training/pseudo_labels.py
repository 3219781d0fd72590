"""Pseudo-labels from nnU-Net's predictions: case confidence, case selection, voxels below a threshold ignored.

nnU-Net's predictor (``nnUNetv2_predict --save_probabilities``) writes ``CASE{file_ending}`` (the
segmentation) and ``CASE.npz`` (key ``probabilities``, shape (C, *image), in the image array order of the
segmentation as nnU-Net's reader returns it). Per voxel the confidence is the probability of the
predicted class (softmax: max over classes; region/sigmoid outputs: mean over regions of max(p, 1 - p)),
and a case's confidence is the mean of that over all voxels.
"""
from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Dict, List, Optional

import numpy as np

CONFIDENCE_FILE = "confidence.json"


def voxel_confidence(probabilities: np.ndarray, regions: bool = False) -> np.ndarray:
    """Confidence of the predicted label per voxel, shape ``probabilities.shape[1:]``."""
    p = np.asarray(probabilities, dtype=np.float32)
    if regions:
        return np.maximum(p, 1.0 - p).mean(axis=0)
    return p.max(axis=0)


def case_confidence(probabilities: np.ndarray, regions: bool = False) -> float:
    """Mean over voxels of :func:`voxel_confidence`."""
    return float(voxel_confidence(probabilities, regions).mean())


def ignore_uncertain_voxels(seg: np.ndarray, probabilities: np.ndarray, threshold: float, ignore_label: int,
                            regions: bool = False) -> np.ndarray:
    """Copy of ``seg`` with voxels whose confidence is below ``threshold`` set to ``ignore_label``."""
    conf = voxel_confidence(probabilities, regions)
    if conf.shape != seg.shape:
        raise ValueError(f"segmentation shape {seg.shape} does not match probabilities {probabilities.shape}")
    out = np.array(seg, copy=True)
    out[conf < threshold] = ignore_label
    return out


def select_cases(confidences: Dict[str, float], case_threshold: Optional[float]) -> List[str]:
    """Sorted case ids whose confidence is above ``case_threshold`` (all if None)."""
    return sorted(c for c, v in confidences.items() if case_threshold is None or v > case_threshold)


def check_threshold(name: str, value: Optional[float]) -> None:
    """ValueError unless ``value`` is None or a probability in [0, 1]."""
    if value is not None and not 0.0 <= value <= 1.0:
        raise ValueError(f"{name} must be a probability in [0, 1], got {value}")


def make_pseudo_labels(prediction_dir: str | os.PathLike, out_dir: str | os.PathLike, dataset_json: dict,
                       case_threshold: Optional[float] = None, voxel_threshold: Optional[float] = None,
                       ignore_label: Optional[int] = None) -> dict:
    """Write the selected cases' pseudo-labels to ``out_dir`` and ``confidence.json``; return that record.

    ``prediction_dir`` is the output folder of ``nnUNetv2_predict --save_probabilities``. Selected cases are
    copied unchanged without ``voxel_threshold``; with it, uncertain voxels become ``ignore_label`` (written by
    nnU-Net's reader/writer with the prediction's geometry).
    """
    from nnunetv2.imageio.reader_writer_registry import determine_reader_writer_from_dataset_json

    prediction_dir, out_dir = Path(prediction_dir), Path(out_dir)
    ending = dataset_json["file_ending"]
    regions = any(not isinstance(v, int) for v in dataset_json["labels"].values())
    cases = sorted(p.name[: -len(ending)] for p in prediction_dir.glob(f"*{ending}"))
    if not cases:
        raise FileNotFoundError(f"no predictions (*{ending}) in {prediction_dir}")
    if voxel_threshold is not None and ignore_label is None:
        raise ValueError("a voxel threshold needs an ignore label")
    confidences: Dict[str, float] = {}
    for case in cases:
        npz = prediction_dir / f"{case}.npz"
        if not npz.is_file():
            raise FileNotFoundError(f"{npz} missing: the prediction was not run with --save_probabilities")
        with np.load(npz) as f:
            confidences[case] = case_confidence(f["probabilities"], regions)
    selected = select_cases(confidences, case_threshold)
    out_dir.mkdir(parents=True, exist_ok=True)
    ignored: Dict[str, float] = {}
    for case in selected:
        src, dst = prediction_dir / f"{case}{ending}", out_dir / f"{case}{ending}"
        if voxel_threshold is None:
            shutil.copyfile(src, dst)
            continue
        rw = determine_reader_writer_from_dataset_json(dataset_json, str(src), allow_nonmatching_filename=True,
                                                       verbose=False)()
        seg, props = rw.read_seg(str(src))
        with np.load(prediction_dir / f"{case}.npz") as f:
            new = ignore_uncertain_voxels(seg[0], f["probabilities"], voxel_threshold, ignore_label, regions)
        ignored[case] = float((new == ignore_label).mean())
        rw.write_seg(new.astype(np.uint8 if ignore_label < 256 else np.int16), str(dst), props)
    record = {"case_threshold": case_threshold, "voxel_threshold": voxel_threshold, "ignore_label": ignore_label,
              "confidence": confidences, "selected": selected,
              "rejected": sorted(set(cases) - set(selected)), "ignored_voxel_fraction": ignored}
    (out_dir / CONFIDENCE_FILE).write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    return record

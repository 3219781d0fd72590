"""Shared pieces of the benchmark tests: the harness scripts on sys.path, a tiny settings dict, fake summaries."""
from __future__ import annotations

import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "benchmarks"))


TINY_SETTINGS = {
    "name": "hippo_tiny",
    "source": {"kind": "msd", "folder": "Hippocampus"},
    "split": {"pool": 5, "labeled": 2, "test": 2, "seed": 3},
    "dataset_ids": {"ssl": 571, "full": 572, "self_train": 580},
    "configuration": "3d_fullres",
    "plans": {"patch_size": [32, 32, 32], "n_stages": 3, "features_base": 4, "features_max": 16, "batch_size": 2},
    "hparams": {"num_epochs": 2, "num_iterations_per_epoch": 2, "num_val_iterations_per_epoch": 1, "save_every": 1},
    "fold": "all",
    "repetitions": 1,
    "quality_predictor": {"iterations": 3, "batch_size": 2, "holdout_fraction": 0.5},
    "methods": {
        "supervised": {"trainer": "nnSSLSupervisedTrainer"},
        "full": {"trainer": "nnSSLSupervisedTrainer", "dataset": "full"},
        "cps_qg": {"trainer": "nnSSLCPSTrainer_QG", "quality_predictor": True},
    },
}


def _summary(values: dict) -> dict:
    """A minimal nnssl_evaluate summary: {case: {label: dice}} (jaccard etc. derived)."""
    per_case = []
    for case, labels in values.items():
        metrics = {str(lab): {"dice": d, "jaccard": d / (2 - d), "hd95_mm": 1.0 * lab, "asd_mm": None}
                   for lab, d in labels.items()}
        per_case.append({"case": case, "metrics": metrics})
    return {"labels": sorted({lab for v in values.values() for lab in v}), "per_case": per_case}

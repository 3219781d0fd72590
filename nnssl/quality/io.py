"""Saving and finding trained quality predictors (beside nnU-Net's results)."""
from __future__ import annotations

import json
import os
from typing import Any, Dict

import torch
from nnunetv2.paths import nnUNet_results

from nnssl.quality.network import QualityPredictor

PREDICTOR_FILE = "predictor.pth"


def predictor_folder(dataset_name: str, plans_name: str, configuration: str,
                     results_root: str | os.PathLike | None = None) -> str:
    """``<results_root or $nnUNet_results>/DatasetXXX_Name/nnSSLQualityPredictor__<plans>__<configuration>``
    (nnU-Net's naming)."""
    root = str(results_root if results_root is not None else nnUNet_results)
    return os.path.join(root, dataset_name, f"nnSSLQualityPredictor__{plans_name}__{configuration}")


def default_predictor_path(dataset_name: str, plans_name: str, configuration: str,
                           results_root: str | os.PathLike | None = None) -> str:
    """``predictor.pth`` in :func:`predictor_folder`."""
    return os.path.join(predictor_folder(dataset_name, plans_name, configuration, results_root), PREDICTOR_FILE)


def save_predictor(path: str, predictor: QualityPredictor, metadata: Dict[str, Any]) -> None:
    """Write the weights, the constructor config and ``metadata`` (also as JSON beside it), atomically."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    tmp = path + ".tmp"
    torch.save({"state_dict": predictor.state_dict(), "config": predictor.config(), "metadata": metadata}, tmp)
    os.replace(tmp, path)
    with open(os.path.splitext(path)[0] + ".json", "w", encoding="utf-8") as f:
        json.dump({"config": predictor.config(), "metadata": metadata}, f, indent=2, default=str)


def load_predictor(path: str, map_location: str | torch.device = "cpu") -> QualityPredictor:
    """Rebuild a predictor saved by ``save_predictor``; clear errors for a missing or foreign file."""
    if not os.path.isfile(path):
        raise FileNotFoundError(f"quality predictor {path} not found: train one with nnssl_train_quality_predictor "
                                f"or use qg_predictor='online'")
    ckpt = torch.load(path, map_location=map_location, weights_only=False)
    if not isinstance(ckpt, dict) or "config" not in ckpt or "state_dict" not in ckpt:
        raise ValueError(f"{path} is not a quality predictor written by nnssl_train_quality_predictor")
    predictor = QualityPredictor(**ckpt["config"])
    predictor.load_state_dict(ckpt["state_dict"])
    return predictor

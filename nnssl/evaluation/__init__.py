"""Evaluation with the SSL papers' metrics (Dice, Jaccard, HD95, ASD; medpy convention)."""
from nnssl.evaluation.metrics import (
    asd, case_metrics, dice, hd95, jaccard, surface_distances, symmetric_surface_distances, voxel_counts,
)

__all__ = ["asd", "case_metrics", "dice", "hd95", "jaccard", "surface_distances",
           "symmetric_surface_distances", "voxel_counts", "evaluate_folders"]


def __getattr__(name: str):
    """Lazy ``evaluate_folders`` (keeps ``import nnssl.evaluation`` free of SimpleITK)."""
    if name == "evaluate_folders":
        from nnssl.evaluation.evaluate import evaluate_folders
        return evaluate_folders
    raise AttributeError(name)

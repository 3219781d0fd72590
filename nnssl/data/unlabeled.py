"""Preprocessed unlabeled images: where they live and how they are sampled."""
from __future__ import annotations

import os
from typing import Sequence

from nnunetv2.training.dataloading.data_loader import nnUNetDataLoader
from nnunetv2.training.dataloading.nnunet_dataset import infer_dataset_class
from nnunetv2.utilities.label_handling.label_handling import LabelManager

UNLABELED_SUFFIX = "_unlabeled"


def unlabeled_folder(preprocessed_dataset_folder: str) -> str:
    """Sibling of nnU-Net's labeled folder: ``<base>/<data_identifier>_unlabeled``.

    A sibling (not a subfolder) keeps unlabeled cases out of nnU-Net's splits and dataset class
    inference, which both list the labeled folder.
    """
    return os.path.normpath(preprocessed_dataset_folder) + UNLABELED_SUFFIX


def make_unlabeled_loader(folder: str, batch_size: int, initial_patch_size: Sequence[int],
                          final_patch_size: Sequence[int], label_manager: LabelManager,
                          transforms=None) -> nnUNetDataLoader:
    """nnU-Net's data loader over the unlabeled cases: random patches, same augmentation.

    The stored "segmentation" of an unlabeled case is only the nonzero mask (0 inside, -1
    outside), so no foreground oversampling is possible or wanted.
    """
    if not os.path.isdir(folder) or not any(f.endswith((".b2nd", ".npz")) for f in os.listdir(folder)):
        raise FileNotFoundError(
            f"No preprocessed unlabeled cases in {folder}. Run nnssl_plan_and_preprocess for this dataset "
            f"and plans (it preprocesses imagesUnlabeled/ into that folder).")
    dataset = infer_dataset_class(folder)(folder)
    return nnUNetDataLoader(dataset, batch_size, initial_patch_size, final_patch_size, label_manager,
                            oversample_foreground_percent=0.0, transforms=transforms)

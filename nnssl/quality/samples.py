"""Training pairs for the quality predictor: (image patch, soft mask, true Dice, source) from labeled cases."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict, List, Sequence, Tuple

import numpy as np
import torch
from nnunetv2.training.dataloading.nnunet_dataset import infer_dataset_class

from nnssl.deep_supervision import full_resolution
from nnssl.quality.corruptions import random_corruption
from nnssl.quality.dice import mean_foreground_dice


@dataclass
class Sample:
    """One training/evaluation pair; ``source`` is 'synthetic:<first op>' or 'realistic:<snapshot>'."""
    image: np.ndarray  # (C_in, *patch) float32
    mask: np.ndarray  # (C, *patch) float32, sums to 1 over C
    label: np.ndarray  # (*patch) int
    dice: float
    source: str
    info: Dict[str, Any] = field(default_factory=dict)


class LabeledPatches:
    """Random patches of preprocessed labeled cases (nnU-Net's folder), read lazily from blosc2/npz files."""

    def __init__(self, folder: str, identifiers: Sequence[str], patch_size: Sequence[int]):
        dataset = infer_dataset_class(folder)(folder, list(identifiers))
        self.cases = [dataset.load_case(i)[:2] for i in identifiers]
        self.patch_size = [int(p) for p in patch_size]

    def sample(self, rng: np.random.Generator, foreground_probability: float = 0.7) -> Tuple[np.ndarray, np.ndarray]:
        """(image (C, *patch) float32, label (*patch) int16); centred on foreground with the given probability.

        Regions outside the case are padded with 0 (image) and 0 (label); nnU-Net's -1 outside the
        nonzero crop is mapped to background.
        """
        data, seg = self.cases[rng.integers(len(self.cases))]
        shape = data.shape[1:]
        centre = None
        if rng.random() < foreground_probability:
            fg = np.argwhere(np.asarray(seg[0]) > 0)
            if len(fg):
                centre = fg[rng.integers(len(fg))]
        if centre is None:
            centre = [rng.integers(s) for s in shape]
        lo = [int(c) - p // 2 for c, p in zip(centre, self.patch_size)]
        src = tuple(slice(max(0, a), min(s, a + p)) for a, s, p in zip(lo, shape, self.patch_size))
        dst = tuple(slice(s.start - a, s.stop - a) for s, a in zip(src, lo))
        image = np.zeros((data.shape[0], *self.patch_size), np.float32)
        label = np.zeros(self.patch_size, np.int16)
        image[(slice(None),) + dst] = np.asarray(data[(slice(None),) + src])
        label[dst] = np.maximum(np.asarray(seg[(0,) + src]), 0)
        return image, label


def true_dice(mask: np.ndarray, label: np.ndarray) -> float:
    """Mean foreground soft Dice of a (C, *sp) mask to an integer label map (both empty -> 1)."""
    return float(mean_foreground_dice(torch.from_numpy(mask[None]), torch.from_numpy(label[None].astype(np.int64))))


def synthetic_sample(image: np.ndarray, label: np.ndarray, rng: np.random.Generator, num_classes: int) -> Sample:
    mask, info = random_corruption(label, rng, num_classes)
    ops = info.get("ops") or [("identity", 0.0)]
    return Sample(image, mask.astype(np.float32), label, true_dice(mask, label), f"synthetic:{ops[0][0]}", info)


@torch.no_grad()
def realistic_samples(net: torch.nn.Module, images: np.ndarray, labels: np.ndarray, tag: str,
                      device: torch.device) -> List[Sample]:
    """Soft outputs of a (partially trained) segmentation network on a batch of labeled patches."""
    net.eval()
    out = full_resolution(net(torch.from_numpy(images).to(device)))
    probs = torch.softmax(out.float(), 1).cpu().numpy()
    return [Sample(img, p, lab, true_dice(p, lab), f"realistic:{tag}", {"source": "realistic", "snapshot": tag})
            for img, p, lab in zip(images, probs, labels)]

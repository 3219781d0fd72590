"""Registry of the synthetic mask corruptions and the sampler that builds quality-training masks.

Training pairs for the quality predictor (METHODS.md C) are (x, m, Dice(m, y)) with m a corrupted,
softened copy of the label y. ``random_corruption`` draws one such m and records how it was made.
The individual operations live in ``corruptions_morph`` / ``_geometric`` / ``_label``.
"""
from __future__ import annotations

from typing import Dict, List, Mapping, Optional, Tuple

import numpy as np

from nnssl.quality.corruptions_base import Corruption, check_label
from nnssl.quality.corruptions_geometric import affine_warp, elastic_warp
from nnssl.quality.corruptions_label import class_swap, empty_mask, full_mask, one_hot, soften
from nnssl.quality.corruptions_morph import boundary_noise, dilation, erosion, holes, spurious_blobs

CORRUPTIONS: Dict[str, Corruption] = {
    "erosion": erosion,
    "dilation": dilation,
    "affine": affine_warp,
    "elastic": elastic_warp,
    "holes": holes,
    "spurious_blobs": spurious_blobs,
    "boundary_noise": boundary_noise,
    "class_swap": class_swap,
    "empty": empty_mask,
    "full": full_mask,
}
"""name -> f(label, strength, rng, num_classes) -> label' (``soften`` is separate: it returns soft masks)."""

TERMINAL = ("empty", "full")
"""Ops applied alone (never combined): their rate is an absolute probability per sample."""

DEFAULT_RATES: Dict[str, float] = {**{k: 1.0 for k in CORRUPTIONS if k not in TERMINAL},
                                   "empty": 0.02, "full": 0.02}


def _resolve_rates(rates: Optional[Mapping[str, float]], num_classes: int) -> Dict[str, float]:
    merged = dict(DEFAULT_RATES)
    for k, v in (rates or {}).items():
        if k not in CORRUPTIONS:
            raise ValueError(f"unknown corruption {k!r}; known: {sorted(CORRUPTIONS)}")
        if float(v) < 0:
            raise ValueError(f"rate of {k!r} must be >= 0, got {v}")
        merged[k] = float(v)
    if num_classes <= 2:
        merged["class_swap"] = 0.0  # identity for binary tasks: never spend a draw on it
    if sum(merged[k] for k in TERMINAL) > 1.0:
        raise ValueError(f"rates of {TERMINAL} are probabilities and must sum to <= 1")
    return merged


def _pick(weights: Dict[str, float], rng: np.random.Generator) -> str:
    names = [k for k, w in weights.items() if w > 0]
    if not names:
        raise ValueError("no corruption with a positive rate to choose from")
    p = np.array([weights[k] for k in names])
    return names[int(rng.choice(len(names), p=p / p.sum()))]


def random_corruption(label: np.ndarray, rng: np.random.Generator, num_classes: int,
                      rates: Optional[Mapping[str, float]] = None, *, p_second: float = 0.5,
                      p_hard: float = 0.3) -> Tuple[np.ndarray, dict]:
    """One synthetic training mask m for the quality predictor, made from the label map y.

    1. With probability rates["empty"] (default 0.02) / rates["full"] (0.02) the mask is empty /
       full and nothing else is applied.
    2. Otherwise one op is drawn with probability proportional to its rate (default 1 each, names of
       ``CORRUPTIONS``; ``class_swap`` is skipped when C <= 2), and with probability ``p_second`` a
       second, different one is applied on top. Each strength ~ U(0, 1).
    3. Always ``soften`` last: strength 0 (one-hot) with probability ``p_hard``, else U(0, 1).

    Args:
        label: (*spatial) integer map in 0 .. C-1 (2D or 3D).
        rng: the only source of randomness (same seed -> same mask and info).
        num_classes: C, background included.
        rates: overrides of ``DEFAULT_RATES`` (missing keys keep their defaults).
    Returns:
        soft mask float32 (C, *spatial) summing to 1 over C, and info
        {"source": "synthetic", "ops": [(name, strength), ..., ("soften", strength)]}.
    """
    check_label(label, num_classes)
    weights = _resolve_rates(rates, num_classes)
    ops: List[Tuple[str, float]] = []
    u, cum = rng.random(), 0.0
    for name in TERMINAL:
        cum += weights[name]
        if u < cum:
            ops.append((name, 1.0))
            break
    else:
        regular = {k: w for k, w in weights.items() if k not in TERMINAL}
        first = _pick(regular, rng)
        ops.append((first, float(rng.uniform(0.0, 1.0))))
        regular[first] = 0.0
        if rng.random() < p_second and any(w > 0 for w in regular.values()):
            ops.append((_pick(regular, rng), float(rng.uniform(0.0, 1.0))))
    out = label
    for name, strength in ops:
        out = CORRUPTIONS[name](out, strength, rng, num_classes)
    s_soft = 0.0 if rng.random() < p_hard else float(rng.uniform(0.0, 1.0))
    ops.append(("soften", s_soft))
    return soften(out, s_soft, rng, num_classes), {"source": "synthetic", "ops": ops}


__all__ = ["CORRUPTIONS", "DEFAULT_RATES", "TERMINAL", "random_corruption", "soften", "one_hot",
           "affine_warp", "boundary_noise", "class_swap", "dilation", "elastic_warp", "empty_mask",
           "erosion", "full_mask", "holes", "spurious_blobs"]

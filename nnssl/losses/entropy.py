"""Per-voxel entropy of class probabilities and per-batch percentile thresholds."""
from __future__ import annotations

from typing import Optional

import torch

# torch.quantile refuses inputs above 2**24 elements in several torch releases; above this size
# the percentile is computed with two torch.kthvalue calls instead (same linear interpolation).
QUANTILE_MAX_NUMEL = 2 ** 24


def upcast(x: torch.Tensor) -> torch.Tensor:
    """float64 stays float64; every other dtype (half, bfloat16, ints) becomes float32."""
    return x if x.dtype in (torch.float32, torch.float64) else x.float()


def entropy(probs: torch.Tensor, dim: int = 1, eps: float = 1e-8) -> torch.Tensor:
    """Shannon entropy of class PROBABILITIES (never logits), in nats.

    H(p)_v = -sum_c p_{c,v} log p_{c,v}, with 0 log 0 = 0 (log is taken of max(p, eps), so one-hot
    vectors give exactly 0 and the gradient stays finite).

    Args:
        probs: (B, C, *spatial) probabilities summing to 1 along ``dim``.
        dim: class dimension.
        eps: lower clamp inside the log.
    Returns:
        (B, *spatial) tensor (``probs`` without ``dim``), float32 or float64; differentiable.
    """
    p = upcast(probs)
    return -(p * torch.log(p.clamp_min(eps))).sum(dim=dim)


def _percentile_kthvalue(v: torch.Tensor, q: float) -> torch.Tensor:
    """numpy.percentile(v, q) ('linear') for a flat tensor of any size, via torch.kthvalue."""
    n = v.numel()
    pos = q / 100.0 * (n - 1)
    lo = int(pos // 1)
    hi = min(lo + 1, n - 1)
    frac = pos - lo
    v_lo = torch.kthvalue(v, lo + 1).values  # kthvalue is 1-based
    if frac == 0.0 or hi == lo:
        return v_lo
    v_hi = torch.kthvalue(v, hi + 1).values
    return v_lo + (v_hi - v_lo) * frac


def batch_percentile(values: torch.Tensor, q: float,
                     mask: Optional[torch.Tensor] = None) -> torch.Tensor:
    """q-th percentile of all voxels of the batch (or of the masked ones), detached.

    Same definition as ``numpy.percentile(x, q)`` (method 'linear'): with x sorted ascending and
    n elements, pos = q/100 * (n - 1), result = x[floor(pos)] + (pos - floor(pos)) *
    (x[floor(pos)+1] - x[floor(pos)]). One threshold for the whole batch, not one per sample.

    Args:
        values: any shape, e.g. (B, *spatial) entropies.
        q: percentile in [0, 100].
        mask: bool tensor of ``values``' shape; only true elements count. None = all.
    Returns:
        0-dim tensor on ``values``' device (float32, or float64 for float64 input), no graph.
    Raises:
        ValueError: q outside [0, 100], mask shape mismatch, or no element selected.
    """
    if not 0.0 <= float(q) <= 100.0:
        raise ValueError(f"percentile q must be in [0, 100], got {q}")
    with torch.no_grad():
        v = values.detach()
        if v.dtype != torch.float64:
            v = v.float()
        if mask is not None:
            if mask.shape != values.shape:
                raise ValueError(f"mask shape {tuple(mask.shape)} != values shape {tuple(values.shape)}")
            v = v[mask.bool()]
        v = v.reshape(-1)
        if v.numel() == 0:
            raise ValueError("batch_percentile: no element selected")
        if v.numel() <= QUANTILE_MAX_NUMEL:
            return torch.quantile(v, float(q) / 100.0, interpolation="linear")
        return _percentile_kthvalue(v, float(q))

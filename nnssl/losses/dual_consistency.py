"""Method A (dual network): consistency regularisation (Eq 4-6) and entropy-filtered
supervision (Eq 9-11). See METHODS.md (shared/ beside the repository) section A, items 2 and 4.

Cross pseudo supervision (Eq 7-8) is ``nnssl.losses.pseudo_label.cross_pseudo_supervision``.
"""
from __future__ import annotations

from typing import Tuple

import torch

from nnssl.losses.entropy import batch_percentile, entropy, upcast
from nnssl.losses.pseudo_label import masked_cross_entropy


def _check_same_shape(a: torch.Tensor, b: torch.Tensor, what: str) -> None:
    if a.shape != b.shape:
        raise ValueError(f"{what}: shape mismatch {tuple(a.shape)} vs {tuple(b.shape)}")
    if a.dim() < 3:
        raise ValueError(f"{what}: expected (B, C, *spatial), got {tuple(a.shape)}")


def confident_foreground(probs: torch.Tensor, tau: float = 0.6) -> torch.Tensor:
    """Voxels confidently predicted as a foreground class.

    F_v = [argmax_c p_{c,v} != 0] and [max_c p_{c,v} >= tau]   (class 0 = background)

    Args:
        probs: (B, C, *spatial) probabilities.
        tau: confidence threshold.
    Returns:
        (B, *spatial) bool, no graph.
    """
    with torch.no_grad():
        conf, label = probs.detach().max(dim=1)
        return (label != 0) & (conf >= tau)


#: the values of ``disagreement_mask(mode=...)``
DISAGREEMENT_MODES = ("xor", "or")


def disagreement_mask(p_a: torch.Tensor, p_b: torch.Tensor, tau: float = 0.6,
                      mode: str = "xor") -> torch.Tensor:
    """Consistency-regularisation mask M (Eq 4-5).

    mode "xor" (default, the disagreement the paper describes; the public code): M = F_A XOR F_B
    mode "or"  (the paper's text):                                                M = F_A OR F_B
    with F_k = confident_foreground(p_k, tau).

    Args:
        p_a, p_b: (B, C, *spatial) probabilities of subnets A and B.
    Returns:
        (B, *spatial) bool, no graph.
    """
    _check_same_shape(p_a, p_b, "disagreement_mask")
    f_a, f_b = confident_foreground(p_a, tau), confident_foreground(p_b, tau)
    if mode == "xor":
        return f_a ^ f_b
    if mode == "or":
        return f_a | f_b
    raise ValueError(f"mode must be one of {list(DISAGREEMENT_MODES)}, got {mode!r}")


def consistency_regularisation(p_a: torch.Tensor, p_b: torch.Tensor,
                               mask: torch.Tensor) -> torch.Tensor:
    """Masked squared distance between two probability maps (Eq 6).

    L_cr = sum_v M_v ||p_{A,v} - p_{B,v}||^2 / (sum_v M_v + 1e-8),  ||.||^2 summed over classes,
    v over batch and space. An empty mask gives 0 (still connected to the graph).

    Gradient flows into BOTH p_a and p_b; detach one argument at the call site for a one-sided
    target. For the public code's cr_target='label' variant, pass one-hot(y) as ``p_b``.

    Args:
        p_a, p_b: (B, C, *spatial) probabilities.
        mask: (B, *spatial) bool (or 0/1 float) mask M.
    Returns:
        Scalar tensor.
    """
    _check_same_shape(p_a, p_b, "consistency_regularisation")
    if mask.shape != p_a.shape[:1] + p_a.shape[2:]:
        raise ValueError(f"mask shape {tuple(mask.shape)} does not match (B, *spatial) of {tuple(p_a.shape)}")
    sq = ((upcast(p_a) - upcast(p_b)) ** 2).sum(dim=1)  # (B, *spatial)
    m = mask.detach().to(sq.dtype)
    return (m * sq).sum() / (m.sum() + 1e-8)


def entropy_filtered_supervision(logits_a: torch.Tensor, logits_b: torch.Tensor,
                                 eta: float = 70.0) -> Tuple[torch.Tensor, torch.Tensor]:
    """Entropy-filtered supervision by the averaged prediction (Eq 9-11).

    p_k = softmax(z_k); H_k = H(p_k) (on probabilities); tau_k = percentile_eta of H_k over all
    voxels of the batch. Voxel v is IGNORED iff H_{A,v} >= tau_A AND H_{B,v} >= tau_B (only where
    both subnets are uncertain); K = the kept voxels.
    t = argmax_c (p_A + p_B)/2 (detached).
    L_efs = mean_{v in K} CE(z_{A,v}, t_v) + mean_{v in K} CE(z_{B,v}, t_v)

    Gradients flow into both logits through the two CE terms (masks, thresholds and t carry no
    graph). No kept voxel -> loss 0 (with graph).

    Args:
        logits_a, logits_b: (B, C, *spatial) logits of subnets A and B.
        eta: percentile in [0, 100].
    Returns:
        (loss scalar, kept_fraction = |K| / #voxels, 0-dim detached).
    """
    _check_same_shape(logits_a, logits_b, "entropy_filtered_supervision")
    with torch.no_grad():
        p_a = torch.softmax(upcast(logits_a.detach()), dim=1)
        p_b = torch.softmax(upcast(logits_b.detach()), dim=1)
        h_a, h_b = entropy(p_a), entropy(p_b)
        ignore = (h_a >= batch_percentile(h_a, eta)) & (h_b >= batch_percentile(h_b, eta))
        keep = ~ignore
        target = ((p_a + p_b) / 2).argmax(dim=1)
        kept_fraction = keep.float().mean()
    loss = masked_cross_entropy(logits_a, target, keep) + masked_cross_entropy(logits_b, target, keep)
    return loss, kept_fraction

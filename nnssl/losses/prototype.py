"""Method A (dual network): prototype-guided contrastive learning (Eq 16-20).
See METHODS.md (shared/ beside the repository) section A, item 6.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import List, Optional, Tuple

import torch
import torch.nn.functional as F

from nnssl.losses.entropy import batch_percentile, entropy, upcast


def pseudo_labels(p_a: torch.Tensor, p_b: torch.Tensor) -> torch.Tensor:
    """yhat = argmax_c (p_A + p_B)/2 of (B, C, *spatial) probabilities: (B, *spatial) int64, no graph."""
    with torch.no_grad():
        return (p_a.detach() + p_b.detach()).argmax(dim=1)


def reliable_mask(p_a: torch.Tensor, p_b: torch.Tensor, eta: float = 70.0,
                  per_class: bool = False, labels: Optional[torch.Tensor] = None) -> torch.Tensor:
    """Voxels where both subnets agree and are both certain (Eq 16).

    R_v = [argmax p_{A,v} = argmax p_{B,v}] and H(p_{A,v}) < tau_A and H(p_{B,v}) < tau_B,
    tau_k = percentile_eta of H(p_k) over all voxels of the batch (the paper).
    per_class=True (an option, not the paper): tau_k depends on the voxel's pseudo-label
    yhat_v = argmax (p_A + p_B)/2: tau_{k,c} = percentile_eta of H(p_k) over the voxels with yhat = c.
    With one batch threshold, a class that is rare and less certain than the background (a small
    organ) can have no reliable voxel at all, hence no prototype; per class, about eta% of the voxels
    of each predicted class are under its threshold.

    Args:
        p_a, p_b: (B, C, *spatial) probabilities.
        eta: percentile in [0, 100].
        per_class: one threshold per pseudo-label class instead of one per batch.
        labels: (B, *spatial) yhat if the caller has it already (per_class only; default computed here).
    Returns:
        (B, *spatial) bool, no graph.
    """
    if p_a.shape != p_b.shape:
        raise ValueError(f"shape mismatch: {tuple(p_a.shape)} vs {tuple(p_b.shape)}")
    with torch.no_grad():
        p_a, p_b = upcast(p_a.detach()), upcast(p_b.detach())
        h_a, h_b = entropy(p_a), entropy(p_b)
        agree = p_a.argmax(dim=1) == p_b.argmax(dim=1)
        if not per_class:
            return agree & (h_a < batch_percentile(h_a, eta)) & (h_b < batch_percentile(h_b, eta))
        yhat = pseudo_labels(p_a, p_b) if labels is None else labels
        certain = torch.zeros_like(agree)
        for c in torch.unique(yhat).tolist():
            in_c = yhat == c
            certain |= in_c & (h_a < batch_percentile(h_a, eta, in_c)) & (h_b < batch_percentile(h_b, eta, in_c))
        return agree & certain


def normalise_features(features: torch.Tensor, eps: float = 1e-12) -> torch.Tensor:
    """f_v / max(||f_v||_2, eps), the norm taken over the feature dim 1 of (B, F, *spatial)."""
    return F.normalize(features, p=2.0, dim=1, eps=eps)


def class_prototypes(features: torch.Tensor, labels: torch.Tensor, mask: torch.Tensor,
                     num_classes: int) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Per-class mean feature over the masked voxels (Eq 17).

    mu_c = sum_v [M_v and y_v = c] f_v / n_c,   n_c = sum_v [M_v and y_v = c].
    Features are used as given (normalise with ``normalise_features`` first if wanted).
    Absent classes (n_c = 0) get mu_c = 0 and present_c = False (no NaN).
    Differentiable w.r.t. ``features`` (mu is not detached).

    Args:
        features: (B, F, *spatial).
        labels: (B, *spatial) integer labels in [0, num_classes).
        mask: (B, *spatial) bool.
        num_classes: C.
    Returns:
        (prototypes (C, F) float, present (C,) bool, counts (C,) int64).
    """
    n_feat = features.shape[1]
    if labels.shape != features.shape[:1] + features.shape[2:] or mask.shape != labels.shape:
        raise ValueError(f"labels {tuple(labels.shape)} / mask {tuple(mask.shape)} do not match "
                         f"(B, *spatial) of features {tuple(features.shape)}")
    f = upcast(features).movedim(1, -1).reshape(-1, n_feat)
    sel = mask.reshape(-1).bool()
    return _prototypes_from_rows(f[sel], labels.reshape(-1)[sel].long(), num_classes)


def _prototypes_from_rows(rows: torch.Tensor, labels: torch.Tensor,
                          num_classes: int) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """mu_c = mean of the rows (N, F) labelled c; absent classes 0 (see class_prototypes)."""
    if labels.numel() and (int(labels.min()) < 0 or int(labels.max()) >= num_classes):
        raise ValueError(f"labels outside [0, {num_classes})")
    counts = torch.bincount(labels, minlength=num_classes)
    sums = rows.new_zeros(num_classes, rows.shape[1]).index_add(0, labels, rows)
    protos = sums / counts.clamp_min(1).to(rows.dtype).unsqueeze(1)
    return protos, counts > 0, counts


def subsample_per_class(labels: torch.Tensor, mask: torch.Tensor, num_classes: int, n_max: int,
                        generator: Optional[torch.Generator] = None) -> List[torch.Tensor]:
    """Flat voxel indices of the masked voxels, at most n_max per class, drawn without replacement.

    Args:
        labels, mask: (B, *spatial) integer labels and bool mask.
        generator: torch.Generator for reproducible draws (its device is used for randperm).
    Returns:
        list of C int64 tensors; entry c holds flat indices into (B*prod(spatial)) with labels c.
    """
    lab, m = labels.reshape(-1), mask.reshape(-1).bool()
    out = []
    for c in range(num_classes):
        idx = torch.nonzero(m & (lab == c), as_tuple=False).squeeze(1)
        if idx.numel() > n_max:
            dev = generator.device if generator is not None else idx.device
            perm = torch.randperm(idx.numel(), generator=generator, device=dev)[:n_max]
            idx = idx[perm.to(idx.device)]
        out.append(idx)
    return out


@dataclass
class PrototypeSelection:
    """Which voxels the prototype loss uses (shared by both subnets of a step: it depends on p_A, p_B only).

    Flat indices index (B * prod(spatial)) in C order of (B, *spatial).
    """
    reliable: torch.Tensor  # (N_r,) flat indices of reliable voxels
    reliable_labels: torch.Tensor  # (N_r,) their pseudo-labels yhat
    uncertain: List[torch.Tensor]  # per class c: flat indices of (subsampled) uncertain voxels with yhat = c
    num_classes: int


def select_prototype_voxels(p_a: torch.Tensor, p_b: torch.Tensor, eta: float = 70.0, n_max: int = 4096,
                            generator: Optional[torch.Generator] = None,
                            per_class: bool = False) -> PrototypeSelection:
    """yhat = argmax (p_A + p_B)/2, R = reliable_mask(p_A, p_B, eta, per_class), U = not R subsampled to
    n_max per class."""
    if p_a.shape != p_b.shape:
        raise ValueError(f"shape mismatch: {tuple(p_a.shape)} vs {tuple(p_b.shape)}")
    with torch.no_grad():
        pa, pb = upcast(p_a.detach()), upcast(p_b.detach())
        yhat = pseudo_labels(pa, pb)
        reliable = reliable_mask(pa, pb, eta, per_class, yhat)
        idx = torch.nonzero(reliable.reshape(-1), as_tuple=False).squeeze(1)
        uncertain = subsample_per_class(yhat, ~reliable, pa.shape[1], n_max, generator)
    return PrototypeSelection(idx, yhat.reshape(-1)[idx], uncertain, pa.shape[1])


def gather_voxels(features: torch.Tensor, flat_idx: torch.Tensor) -> torch.Tensor:
    """Rows (N, F) of features (B, F, *spatial) at flat (B, *spatial) indices, without a full-size copy."""
    flat = features.flatten(2)  # (B, F, S) view
    return flat[flat_idx // flat.shape[2], :, flat_idx % flat.shape[2]]


def prototype_loss_from_selection(features: torch.Tensor, sel: PrototypeSelection, gamma: float = 1.0,
                                  normalise: bool = True) -> Tuple[torch.Tensor, torch.Tensor]:
    """L_pgl of ``prototype_loss`` for a precomputed selection; only the selected voxels are touched."""
    def rows(idx: torch.Tensor) -> torch.Tensor:
        r = upcast(gather_voxels(features, idx))
        return normalise_features(r) if normalise else r

    protos, present, counts = _prototypes_from_rows(rows(sel.reliable), sel.reliable_labels, sel.num_classes)
    loss = upcast(features).sum() * 0.0
    if not bool(present.any()):
        return loss, counts
    present_list = present.tolist()
    for c, idx in enumerate(sel.uncertain):
        if present_list[c] and idx.numel() > 0:
            loss = loss + torch.linalg.vector_norm(rows(idx) - protos[c], dim=1).mean()
    pres_idx = torch.nonzero(present, as_tuple=False).squeeze(1)
    if pres_idx.numel() >= 2:
        # mean over ordered pairs c != c' equals the mean over unordered pairs i < j (symmetric)
        i, j = torch.triu_indices(pres_idx.numel(), pres_idx.numel(), offset=1, device=protos.device)
        mu = protos[pres_idx]
        loss = loss + gamma * torch.linalg.vector_norm(mu[i] - mu[j], dim=1).mean()
    return loss, counts


def prototype_loss(features: torch.Tensor, p_a: torch.Tensor, p_b: torch.Tensor, eta: float = 70.0,
                   n_max: int = 4096, gamma: float = 1.0, generator: Optional[torch.Generator] = None,
                   *, normalise: bool = True) -> Tuple[torch.Tensor, torch.Tensor]:
    """Prototype-guided contrastive loss of one subnet's features (Eq 16-20).

    yhat = argmax (p_A + p_B)/2 and R = reliable_mask(p_A, p_B, eta) (both detached: p_A, p_B only
    select voxels); f = normalise_features(features) (if ``normalise``);
    mu_c, present_c = class_prototypes(f, yhat, R, C); U = not R, at most n_max voxels per class
    (by yhat, drawn with ``generator``); P = present classes, U_c = {v in U (subsampled): yhat_v = c}.
    L_pgl = sum_{c in P, U_c nonempty} mean_{v in U_c} ||f_v - mu_c||_2
            + gamma * mean_{c != c' in P, ordered pairs} ||mu_c - mu_c'||_2   (0 if |P| < 2)

    Gradients flow into ``features``: through f_v of the sampled uncertain voxels and through mu_c
    (prototypes are NOT detached) into the reliable voxels. Nothing usable (no prototype) gives
    0 with a graph (f.sum() * 0). = prototype_loss_from_selection(features,
    select_prototype_voxels(p_a, p_b, eta, n_max, generator), gamma): a trainer computes the
    selection once per step for both subnets.

    Args:
        features: (B, F, *spatial) decoder features of the subnet being trained (raw; normalised
            here unless normalise=False).
        p_a, p_b: (B, C, *spatial) probabilities of subnets A and B (any C >= 2).
        eta: percentile for the reliability thresholds.
        n_max: cap on uncertain voxels per class.
        gamma: weight of the prototype-distance term (+1 as published).
    Returns:
        (loss scalar, reliable voxel count per class (C,) int64).
    """
    if features.shape[:1] + features.shape[2:] != p_a.shape[:1] + p_a.shape[2:]:
        raise ValueError(f"features {tuple(features.shape)}, p_a {tuple(p_a.shape)}, p_b {tuple(p_b.shape)} "
                         f"do not share (B, *spatial)")
    sel = select_prototype_voxels(p_a, p_b, eta, n_max, generator)
    return prototype_loss_from_selection(features, sel, gamma, normalise)

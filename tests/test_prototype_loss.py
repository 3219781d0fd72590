"""Method A prototype-guided contrastive loss against hand values and independent loop computations."""
import numpy as np
import pytest
import torch

from nnssl.losses.dual import (bidirectional_uncertainty_loss, class_prototypes, consistency_regularisation,
                               disagreement_mask, entropy_filtered_supervision, normalise_features, prototype_loss,
                               reliable_mask, subsample_per_class)
from test_dual_losses import py_entropy, voxels


# ---------------------------------------------------------------- prototypes
C3 = 3


def structured_probs(spec):
    """spec: list of (kind, c). 'r' = reliable (both .9 on c), 'u' = uncertain with yhat = c (A says c,
    B says c+1, averaged argmax c). Returns p_a, p_b of shape (1, 3, V)."""
    pa, pb = [], []
    for kind, c in spec:
        if kind == "r":
            v = [0.05] * C3
            v[c] = 0.9
            pa.append(v)
            pb.append(list(v))
        else:
            va, vb = [0.1] * C3, [0.1] * C3
            va[c], va[(c + 1) % C3] = 0.6, 0.3
            vb[c], vb[(c + 1) % C3] = 0.35, 0.55
            pa.append(va)
            pb.append(vb)
    return torch.tensor(pa).T.unsqueeze(0), torch.tensor(pb).T.unsqueeze(0)


def test_reliable_mask_hand_and_loop():
    p_a, p_b = structured_probs([("r", 0), ("u", 1), ("r", 2), ("u", 2), ("r", 1)])
    # eta = 100: tau = max H; reliable voxels have lower entropy and agree; uncertain ones disagree
    assert reliable_mask(p_a, p_b, 100.0).tolist() == [[True, False, True, False, True]]
    g = torch.Generator().manual_seed(6)
    pa = torch.softmax(torch.randn(2, 3, 4, 5, generator=g), 1)
    pb = torch.softmax(torch.randn(2, 3, 4, 5, generator=g), 1)
    ha, hb = [py_entropy(p) for p in voxels(pa)], [py_entropy(p) for p in voxels(pb)]
    ta, tb = np.percentile(ha, 70), np.percentile(hb, 70)
    ref = [int(np.argmax(u)) == int(np.argmax(w)) and x < ta and y < tb
           for u, w, x, y in zip(voxels(pa), voxels(pb), ha, hb)]
    assert reliable_mask(pa, pb, 70.0).reshape(-1).tolist() == ref


def test_reliable_mask_per_class_keeps_a_rare_uncertain_class():
    # 4 confident background voxels, 2 less certain foreground voxels (class 1); both subnets agree
    conf = [0.97, 0.96, 0.95, 0.94, 0.7, 0.6]
    p = torch.tensor([[c, 1 - c] for c in conf[:4]] + [[1 - c, c] for c in conf[4:]]).T.unsqueeze(0)  # (1, 2, 6)
    # one batch threshold at eta = 50 (halfway between the 3rd and 4th smallest entropy): background only
    assert reliable_mask(p, p, 50.0).tolist() == [[True, True, True, False, False, False]]
    # per class: background tau = percentile_50 of its 4 entropies (2 voxels under it); foreground
    # tau = percentile_50 of its 2 entropies, between them: the more certain foreground voxel (0.7)
    assert reliable_mask(p, p, 50.0, per_class=True).tolist() == [[True, True, False, False, True, False]]
    # against a loop with numpy percentiles on random probabilities (disagreeing voxels never reliable)
    g = torch.Generator().manual_seed(3)
    pa = torch.softmax(torch.randn(2, 3, 4, 5, generator=g), 1)
    pb = torch.softmax(torch.randn(2, 3, 4, 5, generator=g), 1)
    yhat = [int(np.argmax(np.add(u, w))) for u, w in zip(voxels(pa), voxels(pb))]
    ha, hb = [py_entropy(q) for q in voxels(pa)], [py_entropy(q) for q in voxels(pb)]
    tau = {c: (np.percentile([h for h, y in zip(ha, yhat) if y == c], 70),
               np.percentile([h for h, y in zip(hb, yhat) if y == c], 70)) for c in set(yhat)}
    ref = [int(np.argmax(u)) == int(np.argmax(w)) and x < tau[y][0] and z < tau[y][1]
           for u, w, x, z, y in zip(voxels(pa), voxels(pb), ha, hb, yhat)]
    assert reliable_mask(pa, pb, 70.0, per_class=True).reshape(-1).tolist() == ref
    assert any(ref) and not all(ref)


def test_class_prototypes_ignore_unmasked_and_empty_classes():
    feats = torch.tensor([[[1.0, 3.0, 100.0, 0.0], [0.0, 2.0, -100.0, 5.0]]], requires_grad=True)  # (1, 2, 4)
    labels = torch.tensor([[1, 1, 1, 2]])
    mask = torch.tensor([[True, True, False, True]])  # v2 (far away) is not reliable
    mu, present, counts = class_prototypes(feats, labels, mask, 4)
    assert mu.tolist() == [[0.0, 0.0], [2.0, 1.0], [0.0, 5.0], [0.0, 0.0]]
    assert present.tolist() == [False, True, True, False] and counts.tolist() == [0, 2, 1, 0]
    mu.sum().backward()
    assert feats.grad[..., 2].abs().sum() == 0 and feats.grad[..., 0].abs().sum() > 0
    mu0, present0, _ = class_prototypes(feats, labels, torch.zeros_like(mask), 4)
    assert not present0.any() and torch.isfinite(mu0).all() and mu0.abs().sum() == 0
    f = normalise_features(torch.tensor([[[3.0], [4.0]]]))
    assert f.reshape(-1).tolist() == pytest.approx([0.6, 0.8])


def pgl_reference(feats, spec, gamma):
    """Independent loop: prototypes from reliable voxels only, pull of every uncertain voxel."""
    f = voxels(feats)
    protos = {}
    for c in range(C3):
        rel = [f[v] for v, (k, cc) in enumerate(spec) if k == "r" and cc == c]
        if rel:
            protos[c] = np.mean(np.array(rel), axis=0)
    loss = 0.0
    for c, mu in protos.items():
        unc = [np.linalg.norm(np.array(f[v]) - mu) for v, (k, cc) in enumerate(spec) if k == "u" and cc == c]
        if unc:
            loss += float(np.mean(unc))
    pairs = [np.linalg.norm(protos[c] - protos[d]) for c in protos for d in protos if c != d]
    sep = float(np.mean(pairs)) if pairs else 0.0
    return loss + gamma * sep, sep


SPEC = [("r", 0), ("r", 0), ("u", 0), ("r", 1), ("u", 1), ("u", 1), ("r", 2), ("u", 2), ("u", 0)]


def test_prototype_loss_against_loop_far_unreliable_voxel_does_not_move_mu():
    p_a, p_b = structured_probs(SPEC)
    g = torch.Generator().manual_seed(7)
    feats = torch.randn(1, 4, len(SPEC), generator=g, dtype=torch.float64)
    feats[0, :, 2] = 1e3  # far away, unreliable, class 0
    loss, counts = prototype_loss(feats, p_a, p_b, eta=100.0, normalise=False)
    ref, _ = pgl_reference(feats, SPEC, 1.0)
    assert counts.tolist() == [2, 1, 1]
    assert loss.item() == pytest.approx(ref, rel=1e-9)
    # default normalise=True equals the loop on L2-normalised features
    loss_n, _ = prototype_loss(feats, p_a, p_b, eta=100.0)
    assert loss_n.item() == pytest.approx(pgl_reference(normalise_features(feats), SPEC, 1.0)[0], rel=1e-9)


def test_prototype_loss_empty_class_and_nothing_usable():
    spec = [("r", 0), ("u", 0), ("r", 1), ("u", 2), ("u", 2)]  # class 2: uncertain only, no prototype
    p_a, p_b = structured_probs(spec)
    feats = torch.randn(1, 3, len(spec), dtype=torch.float64, requires_grad=True)
    loss, counts = prototype_loss(feats, p_a, p_b, eta=100.0)
    assert counts.tolist() == [1, 1, 0]
    assert torch.isfinite(loss) and loss.item() == pytest.approx(
        pgl_reference(normalise_features(feats), spec, 1.0)[0], rel=1e-9)
    loss.backward()
    assert torch.isfinite(feats.grad).all()
    assert feats.grad[..., 3:].abs().sum() == 0  # class-2 voxels: no prototype to pull to
    # no reliable voxel at all (eta = 0 -> tau = min H, nothing is strictly below): zero with a graph
    feats.grad = None
    zero, counts0 = prototype_loss(feats, p_a, p_b, eta=0.0)
    assert zero.item() == 0.0 and counts0.sum() == 0 and zero.requires_grad
    zero.backward()
    assert feats.grad.abs().sum() == 0


def test_prototype_gamma_sign():
    p_a, p_b = structured_probs(SPEC)
    feats = torch.randn(1, 4, len(SPEC), dtype=torch.float64)
    lp, _ = prototype_loss(feats, p_a, p_b, eta=100.0, gamma=1.0)
    lm, _ = prototype_loss(feats, p_a, p_b, eta=100.0, gamma=-1.0)
    _, sep = pgl_reference(normalise_features(feats), SPEC, 1.0)
    assert sep > 0
    assert (lp - lm).item() == pytest.approx(2 * sep, rel=1e-9)


def test_subsampling_cap_respected():
    spec = [("r", c) for c in range(C3)] + [("u", 0)] * 7 + [("u", 1)] * 2 + [("u", 2)] * 5
    p_a, p_b = structured_probs(spec)
    labels = ((p_a + p_b) / 2).argmax(1)
    unc = ~reliable_mask(p_a, p_b, 100.0)
    idx = subsample_per_class(labels, unc, C3, 3, torch.Generator().manual_seed(0))
    assert [len(i) for i in idx] == [3, 2, 3]
    for c, i in enumerate(idx):
        assert unc.reshape(-1)[i].all() and (labels.reshape(-1)[i] == c).all() and len(set(i.tolist())) == len(i)
    again = subsample_per_class(labels, unc, C3, 3, torch.Generator().manual_seed(0))
    assert all(torch.equal(x, y) for x, y in zip(idx, again))
    # inside the loss: only n_max uncertain voxels per class receive a direct gradient
    feats = torch.randn(1, 4, len(spec), dtype=torch.float64, requires_grad=True)
    loss, _ = prototype_loss(feats, p_a, p_b, eta=100.0, n_max=3, generator=torch.Generator().manual_seed(1))
    loss.backward()
    has_grad = feats.grad.abs().sum(1)[0] > 0
    assert has_grad[:3].all()  # reliable voxels, through the prototypes
    assert has_grad[3:10].sum() == 3 and has_grad[10:12].sum() == 2 and has_grad[12:].sum() == 3
    # with n_max = 1 each class's pull term is the distance of one of its uncertain voxels
    f = normalise_features(feats.detach())[0].T
    mu = [f[c] for c in range(C3)]
    sep = np.mean([torch.linalg.vector_norm(mu[a] - mu[b]).item() for a in range(3) for b in range(3) if a != b])
    l1, _ = prototype_loss(feats, p_a, p_b, eta=100.0, n_max=1, gamma=0.0)
    options = [[torch.linalg.vector_norm(f[v] - mu[c]).item() for v in range(3, len(spec)) if spec[v][1] == c]
               for c in range(C3)]
    assert any(abs(l1.item() - (a + b + c)) < 1e-9 for a in options[0] for b in options[1] for c in options[2])
    assert sep > 0


def test_shapes_3d_multiclass_smoke():
    g = torch.Generator().manual_seed(8)
    za = torch.randn(2, 4, 2, 3, 4, generator=g)
    zb = torch.randn(2, 4, 2, 3, 4, generator=g)
    feats = torch.randn(2, 5, 2, 3, 4, generator=g)
    pa, pb = za.softmax(1), zb.softmax(1)
    assert disagreement_mask(pa, pb).shape == (2, 2, 3, 4)
    assert torch.isfinite(consistency_regularisation(pa, pb, disagreement_mask(pa, pb, 0.3, "or")))
    assert torch.isfinite(entropy_filtered_supervision(za, zb)[0])
    assert all(torch.isfinite(x) for x in bidirectional_uncertainty_loss(za, zb))
    loss, counts = prototype_loss(feats, pa, pb, n_max=5, generator=torch.Generator().manual_seed(0))
    assert torch.isfinite(loss) and counts.shape == (4,)

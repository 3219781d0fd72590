"""Method A (dual network) loss terms against hand values and independent loop computations."""
import math

import numpy as np
import pytest
import torch
import torch.nn as nn

import nnssl.losses.entropy as entropy_mod
from nnssl.losses.dual import (
    batch_percentile,
    bidirectional_uncertainty_loss,
    confident_foreground,
    consistency_regularisation,
    cross_pseudo_supervision,
    disagreement_mask,
    entropy,
    entropy_filtered_supervision,
    prototype_loss,
    uncertainty_rectified_loss,
)


# ---------------------------------------------------------------- independent reference helpers
def py_softmax(z):
    m = max(z)
    e = [math.exp(v - m) for v in z]
    return [v / sum(e) for v in e]


def py_entropy(p):
    return -sum(v * math.log(v) for v in p if v > 0)


def voxels(t):
    """(B, C, *sp) tensor -> list of per-voxel class vectors (python floats), in (B, *sp) order."""
    c = t.shape[1]
    return t.detach().double().movedim(1, -1).reshape(-1, c).tolist()


def sigmoid(a):
    return 1.0 / (1.0 + math.exp(-a))


# ---------------------------------------------------------------- entropy / percentile
def test_entropy_hand_values_on_probabilities():
    p = torch.tensor([[0.5, 1.0, 1 / 3], [0.5, 0.0, 1 / 3], [0.0, 0.0, 1 / 3]]).unsqueeze(0)  # (1, 3, 3)
    h = entropy(p)
    assert h.shape == (1, 3)
    assert h[0, 0].item() == pytest.approx(math.log(2), abs=1e-6)
    assert h[0, 1].item() == 0.0  # one-hot -> exactly 0, no NaN
    assert h[0, 2].item() == pytest.approx(math.log(3), abs=1e-6)
    # dim argument: classes last
    assert torch.allclose(entropy(p.movedim(1, -1), dim=-1), h)
    # finite gradient at a one-hot vector
    q = torch.tensor([[1.0], [0.0]], requires_grad=True)
    entropy(q.unsqueeze(0)).sum().backward()
    assert torch.isfinite(q.grad).all()


@pytest.mark.parametrize("q", [0.0, 12.5, 30.0, 50.0, 70.0, 99.9, 100.0])
def test_batch_percentile_matches_numpy(q):
    g = torch.Generator().manual_seed(0)
    v = torch.rand(3, 5, 7, generator=g, dtype=torch.float64)
    assert batch_percentile(v, q).item() == pytest.approx(np.percentile(v.numpy(), q), abs=1e-12)
    mask = torch.rand(3, 5, 7, generator=g) > 0.6
    ref = np.percentile(v.numpy()[mask.numpy()], q)
    assert batch_percentile(v, q, mask).item() == pytest.approx(ref, abs=1e-12)


def test_batch_percentile_large_input_path(monkeypatch):
    g = torch.Generator().manual_seed(1)
    v = torch.rand(4, 9, 11, generator=g, dtype=torch.float64)
    monkeypatch.setattr(entropy_mod, "QUANTILE_MAX_NUMEL", 10)  # force the kthvalue path
    for q in (0.0, 33.3, 70.0, 100.0):
        assert batch_percentile(v, q).item() == pytest.approx(np.percentile(v.numpy(), q), abs=1e-12)
    monkeypatch.undo()
    # a real input above 2**24 elements (torch.quantile's limit in some releases)
    big = torch.rand(2 ** 24 + 3, generator=g)
    assert batch_percentile(big, 70.0).item() == pytest.approx(np.percentile(big.numpy(), 70.0), abs=1e-6)


def test_batch_percentile_detached_and_errors():
    v = torch.rand(2, 3, requires_grad=True)
    assert not batch_percentile(v, 50.0).requires_grad
    with pytest.raises(ValueError):
        batch_percentile(v, 101.0)
    with pytest.raises(ValueError):
        batch_percentile(v, 50.0, torch.zeros(2, 3, dtype=torch.bool))


# ---------------------------------------------------------------- consistency regularisation
def test_confident_foreground_and_xor_vs_or_hand_table():
    # 3 classes, 5 voxels (B=1, C=3, V=5); tau = 0.6
    pa = [(.2, .7, .1), (.05, .05, .9), (.3, .5, .2), (.8, .1, .1), (.4, .3, .3)]
    pb = [(.1, .1, .8), (.9, .05, .05), (.2, .6, .2), (.3, .45, .25), (.7, .2, .1)]
    p_a = torch.tensor(pa).T.unsqueeze(0)
    p_b = torch.tensor(pb).T.unsqueeze(0)
    fa = [True, True, False, False, False]  # v2: fg but max .5 < tau; v3/v4: background
    fb = [True, False, True, False, False]  # v1: confident background; v2: max .6 >= tau; v3: .45 < tau
    assert confident_foreground(p_a, 0.6).tolist() == [fa]
    assert confident_foreground(p_b, 0.6).tolist() == [fb]
    assert disagreement_mask(p_a, p_b, 0.6).tolist() == [[False, True, True, False, False]]
    assert disagreement_mask(p_a, p_b, 0.6, mode="or").tolist() == [[True, True, True, False, False]]
    with pytest.raises(ValueError):
        disagreement_mask(p_a, p_b, 0.6, mode="and")


def test_consistency_regularisation_hand_value_and_gradients():
    p_a = torch.tensor([[[.9, .3, .2], [.1, .7, .8]]], requires_grad=True)  # (1, 2, 3)
    p_b = torch.tensor([[[.4, .5, .6], [.6, .5, .4]]], requires_grad=True)
    mask = torch.tensor([[True, False, True]])
    loss = consistency_regularisation(p_a, p_b, mask)
    # v0: .5^2 + .5^2 = .5 ; v2: .4^2 + .4^2 = .32 ; v1 masked out
    assert loss.item() == pytest.approx((0.5 + 0.32) / (2 + 1e-8), abs=1e-6)
    loss.backward()
    assert p_a.grad[..., 0].abs().sum() > 0 and p_b.grad[..., 0].abs().sum() > 0
    assert p_a.grad[..., 1].abs().sum() == 0  # masked voxel gets nothing
    empty = consistency_regularisation(p_a, p_b, torch.zeros(1, 3, dtype=torch.bool))
    assert empty.item() == 0.0


# ---------------------------------------------------------------- entropy-filtered supervision
def test_efs_mask_semantics_and_hand_value():
    # two classes, logits (a, 0): p_0 = sigmoid(a). eta = 50 -> tau = mean of the 2nd/3rd sorted H
    a = [0.1, 0.2, 3.0, -2.5]  # A uncertain at v0, v1
    b = [2.0, -0.3, 4.0, 0.0]  # B uncertain at v1, v3
    za = torch.tensor([[a, [0.0] * 4]], requires_grad=True)  # (1, 2, 4)
    zb = torch.tensor([[b, [0.0] * 4]], requires_grad=True)
    loss, kept = entropy_filtered_supervision(za, zb, eta=50.0)
    # ignored only at v1 (both uncertain); v0 (only A uncertain) and v3 (only B uncertain) kept
    assert kept.item() == pytest.approx(0.75)
    assert not kept.requires_grad
    # targets: v0 -> 0 ((.525+.881)/2 > .5), v2 -> 0, v3 -> 1 ((.076+.5)/2 < .5)
    ce_a = (-math.log(sigmoid(0.1)) - math.log(sigmoid(3.0)) - math.log(1 - sigmoid(-2.5))) / 3
    ce_b = (-math.log(sigmoid(2.0)) - math.log(sigmoid(4.0)) + math.log(2.0)) / 3
    assert loss.item() == pytest.approx(ce_a + ce_b, rel=1e-5)
    loss.backward()
    assert za.grad[..., 1].abs().sum() == 0 and zb.grad[..., 1].abs().sum() == 0  # ignored voxel
    assert za.grad[..., 0].abs().sum() > 0 and zb.grad[..., 3].abs().sum() > 0


def test_efs_three_classes_against_loop():
    g = torch.Generator().manual_seed(3)
    za = torch.randn(2, 3, 2, 3, generator=g, dtype=torch.float64) * 2
    zb = torch.randn(2, 3, 2, 3, generator=g, dtype=torch.float64) * 2
    eta = 70.0
    loss, kept = entropy_filtered_supervision(za, zb, eta)
    pa = [py_softmax(z) for z in voxels(za)]
    pb = [py_softmax(z) for z in voxels(zb)]
    ha, hb = [py_entropy(p) for p in pa], [py_entropy(p) for p in pb]
    ta, tb = np.percentile(ha, eta), np.percentile(hb, eta)
    keep = [not (x >= ta and y >= tb) for x, y in zip(ha, hb)]
    target = [int(np.argmax([(x + y) / 2 for x, y in zip(u, w)])) for u, w in zip(pa, pb)]
    n = sum(keep)
    ref = sum(-math.log(pa[v][target[v]]) - math.log(pb[v][target[v]]) for v in range(len(pa)) if keep[v]) / n
    assert 0 < n < len(pa)
    assert kept.item() == pytest.approx(n / len(pa))
    assert loss.item() == pytest.approx(ref, rel=1e-5)


# ---------------------------------------------------------------- uncertainty-rectified loss
def test_ue_kl_direction_and_temperature_hand_value():
    # one voxel, two classes. student p = (1/2, 1/2); teacher z = (ln3 / 2, 0) -> q_T=0.5 = (3/4, 1/4)
    zs = torch.zeros(1, 2, 1, requires_grad=True)
    zt = torch.tensor([[[math.log(3.0) / 2], [0.0]]], requires_grad=True)
    d = 0.75 * math.log(0.75 / 0.5) + 0.25 * math.log(0.25 / 0.5)  # KL(q||p) = 0.130812
    d_rev = 0.5 * math.log(0.5 / 0.75) + 0.5 * math.log(0.5 / 0.25)  # KL(p||q) = 0.143841
    assert abs(d - d_rev) > 0.01
    loss = uncertainty_rectified_loss(zs, zt, temperature=0.5)
    assert loss.item() == pytest.approx(math.exp(-d) * math.log(2) + d, rel=1e-6)
    assert loss.item() != pytest.approx(math.exp(-d_rev) * math.log(2) + d_rev, rel=1e-4)
    loss.backward()
    assert zs.grad.abs().sum() > 0 and zt.grad is None
    # T = 1 gives the less sharp q = (sqrt3, 1)/(sqrt3 + 1): max .634 < .75
    q0 = math.sqrt(3) / (math.sqrt(3) + 1)
    d1 = q0 * math.log(q0 / 0.5) + (1 - q0) * math.log((1 - q0) / 0.5)
    loss1 = uncertainty_rectified_loss(zs, zt, temperature=1.0)
    assert loss1.item() == pytest.approx(math.exp(-d1) * math.log(2) + d1, rel=1e-6)
    assert d1 < d


def test_ue_exp_weighting_three_classes_hand_value():
    # v0: p = (1/3,1/3,1/3), q = (.5,.25,.25), yhat 0 ; v1: p = (.5,.25,.25), q = (1/6,4/6,1/6), yhat 1
    zs = torch.tensor([[[0.0, math.log(2)], [0.0, 0.0], [0.0, 0.0]]])  # (1, 3, 2)
    zt = torch.tensor([[[math.log(2) / 2, 0.0], [0.0, math.log(2)], [0.0, 0.0]]])
    d0 = 0.5 * math.log(0.5 * 3) + 2 * 0.25 * math.log(0.25 * 3)
    d1 = (1 / 6) * math.log((1 / 6) / 0.5) + (4 / 6) * math.log((4 / 6) / 0.25) + (1 / 6) * math.log((1 / 6) / 0.25)
    ref = (math.exp(-d0) * math.log(3) + math.exp(-d1) * math.log(4)) / 2 + (d0 + d1) / 2
    assert uncertainty_rectified_loss(zs, zt, 0.5).item() == pytest.approx(ref, rel=1e-6)


def test_ue_against_loop_and_gradient_through_weight():
    g = torch.Generator().manual_seed(4)
    zs = torch.randn(2, 3, 2, 2, generator=g, dtype=torch.float64, requires_grad=True)
    zt = torch.randn(2, 3, 2, 2, generator=g, dtype=torch.float64)
    T = 0.5
    terms, ds = [], []
    for s, t in zip(voxels(zs), voxels(zt)):
        p, q = py_softmax(s), py_softmax([v / T for v in t])
        d = sum(qc * (math.log(qc) - math.log(pc)) for qc, pc in zip(q, p))
        terms.append(math.exp(-d) * -math.log(p[int(np.argmax(q))]))
        ds.append(d)
    ref = sum(terms) / len(terms) + sum(ds) / len(ds)
    assert uncertainty_rectified_loss(zs, zt, T).item() == pytest.approx(ref, rel=1e-10)
    # the full analytic gradient (through CE, D and exp(-D)) matches finite differences
    assert torch.autograd.gradcheck(lambda z: uncertainty_rectified_loss(z, zt, T), (zs,))
    # ... and differs from the gradient with a detached weight exp(-D)
    g_full, = torch.autograd.grad(uncertainty_rectified_loss(zs, zt, T), zs)
    log_q = torch.log_softmax(zt / T, 1)
    log_p = torch.log_softmax(zs, 1)
    kl = (log_q.exp() * (log_q - log_p)).sum(1)
    ce = nn.functional.nll_loss(log_p, log_q.argmax(1), reduction="none")
    g_det, = torch.autograd.grad((torch.exp(-kl).detach() * ce).mean() + kl.mean(), zs)
    assert not torch.allclose(g_full, g_det)


def test_bidirectional_uncertainty_directions():
    g = torch.Generator().manual_seed(5)
    za = torch.randn(1, 3, 4, generator=g, requires_grad=True)
    zb = torch.randn(1, 3, 4, generator=g, requires_grad=True)
    la, lb = bidirectional_uncertainty_loss(za, zb, 0.5)
    assert la.item() == pytest.approx(uncertainty_rectified_loss(za, zb, 0.5).item())
    assert lb.item() == pytest.approx(uncertainty_rectified_loss(zb, za, 0.5).item())
    ga = torch.autograd.grad(la, (za, zb), allow_unused=True)
    gb = torch.autograd.grad(lb, (za, zb), allow_unused=True)
    assert ga[0].abs().sum() > 0 and ga[1] is None  # A taught by B: nothing into B
    assert gb[1].abs().sum() > 0 and gb[0] is None
    la1, lb1 = bidirectional_uncertainty_loss(za, zb, 0.5, both_directions=False)
    assert la1.item() == pytest.approx(la.item()) and lb1.item() == 0.0


# ---------------------------------------------------------------- gradient flow into both subnets
class NetA(nn.Module):
    def __init__(self):
        super().__init__()
        self.enc = nn.Conv2d(1, 8, 3, padding=1)
        self.head = nn.Conv2d(8, 3, 1)

    def forward(self, x):
        f = torch.relu(self.enc(x))
        return self.head(f), f


class NetB(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(1, 8, 3, padding=1)
        self.res = nn.Conv2d(8, 8, 3, padding=1)
        self.head = nn.Conv2d(8, 3, 1)

    def forward(self, x):
        h = torch.relu(self.stem(x))
        f = torch.relu(h + self.res(h))
        return self.head(f), f


def _grad_norms(loss, net_a, net_b):
    pa, pb = list(net_a.parameters()), list(net_b.parameters())
    grads = torch.autograd.grad(loss, pa + pb, allow_unused=True, retain_graph=True)
    norm = lambda gs: sum(0.0 if g is None else g.abs().sum().item() for g in gs)  # noqa: E731
    return norm(grads[:len(pa)]), norm(grads[len(pa):])


def test_every_unsupervised_term_trains_both_subnets():
    torch.manual_seed(0)
    net_a, net_b = NetA(), NetB()
    x = torch.randn(2, 1, 8, 8)
    za, fa = net_a(x)
    zb, fb = net_b(x)
    pa, pb = za.softmax(1), zb.softmax(1)
    mask = disagreement_mask(pa, pb, tau=0.0, mode="or")
    assert mask.any()
    pgl_a, counts = prototype_loss(fa, pa, pb, n_max=16, generator=torch.Generator().manual_seed(0))
    pgl_b, _ = prototype_loss(fb, pa, pb, n_max=16, generator=torch.Generator().manual_seed(0))
    assert counts.sum() > 0
    ue_a, ue_b = bidirectional_uncertainty_loss(za, zb, 0.5)
    terms = {
        "cr": consistency_regularisation(pa, pb, mask),
        "cps": cross_pseudo_supervision(za, zb, 0.0),
        "efs": entropy_filtered_supervision(za, zb, 70.0)[0],
        "ue": ue_a + ue_b,
        "pgl": pgl_a + pgl_b,
    }
    for name, loss in terms.items():
        ga, gb = _grad_norms(loss, net_a, net_b)
        assert ga > 0 and gb > 0, name
    # one-sided pieces: UE^A and PGL^A train A only, UE^B and PGL^B train B only
    for loss, side in ((ue_a, "a"), (pgl_a, "a"), (ue_b, "b"), (pgl_b, "b")):
        ga, gb = _grad_norms(loss, net_a, net_b)
        assert (ga > 0 and gb == 0) if side == "a" else (gb > 0 and ga == 0)


@pytest.mark.parametrize("target, cr_a, cr_b", [("peer", 0.61, 0.61), ("label", 1.45, 0.18)])
def test_method_a_consistency_targets_hand_values(target, cr_a, cr_b):
    """nnSSLDualTrainer._consistency on two voxels where exactly one subnet is confident foreground (tau 0.6):
    p_a = (0.2, 0.8), (0.9, 0.1); p_b = (0.7, 0.3), (0.3, 0.7); y = 0, 1. 'peer': each network towards the other,
    (0.25 + 0.25 + 0.36 + 0.36) / 2 = 0.61 for both; 'label' (the default): towards one-hot(y),
    net_a (0.64 + 0.64 + 0.81 + 0.81) / 2 = 1.45, net_b (0.09 + 0.09 + 0.09 + 0.09) / 2 = 0.18, and no gradient
    from one network's term into the other network."""
    from types import SimpleNamespace
    from nnssl_trainers.dual import nnSSLDualTrainer
    p_a = torch.tensor([[0.2, 0.9], [0.8, 0.1]]).reshape(1, 2, 1, 1, 2)
    p_b = torch.tensor([[0.7, 0.3], [0.3, 0.7]]).reshape(1, 2, 1, 1, 2)
    z_a, z_b = p_a.log().requires_grad_(), p_b.log().requires_grad_()
    y = torch.tensor([0.0, 1.0]).reshape(1, 1, 1, 1, 2)
    fake = SimpleNamespace(hparams={"cr_tau": 0.6, "cr_mode": "xor", "cr_target": target})
    out = nnSSLDualTrainer._consistency(fake, z_a, z_b, [y, y[..., :1]])  # deep-supervision list: full res first
    assert float(out["frac_cr_mask"]) == 1.0
    assert float(out["cr_a"]) == pytest.approx(cr_a, abs=1e-5) and float(out["cr_b"]) == pytest.approx(cr_b, abs=1e-5)
    out["cr_a"].backward()
    assert z_b.grad is None or float(z_b.grad.abs().sum()) == 0.0
    assert float(z_a.grad.abs().sum()) > 0.0

"""In-process training steps of the method trainers on real Hippocampus patches (tiny network)."""
from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from nnunetv2.run.run_training import get_trainer_from_args
from nnunetv2.training.loss.compound_losses import DC_and_CE_loss
from nnunetv2.training.loss.dice import MemoryEfficientSoftDiceLoss

from nnssl.pseudo_labels import interior_mask, margin_voxels
from nnssl_trainers.ramp_schedule import PAPERS_SCHEDULE
from nnssl_trainers.wrapping import unwrap
from realdata import TINY_PLANS

DUAL_TERMS = {"use_cce": ("loss_cps", "loss_efs", "frac_efs_kept"), "use_cr": ("loss_cr", "frac_cr_mask"),
              "use_ue": ("loss_ue_a", "loss_ue_b"), "use_pgl": ("loss_pgl_a", "loss_pgl_b", "reliable_voxels_c0")}


def make_trainer(ws, monkeypatch, name: str, fold: int, **hparams):
    """An initialised trainer with loaders; ramp fixed at 1 from the first step (methods A and B default to the
    foreground gate, which would hold it at 0) so the total loss is comparable across steps."""
    for k, v in ws.env.items():
        if k.startswith("nnUNet") or k == "OMP_NUM_THREADS":
            monkeypatch.setenv(k, v)
    monkeypatch.setenv("nnssl_hparams", json.dumps({"rampup_fraction": 0.0, **PAPERS_SCHEDULE, **hparams}))
    torch.manual_seed(0)
    np.random.seed(0)
    trainer = get_trainer_from_args("501", "3d_fullres", fold, name, TINY_PLANS, False, torch.device("cpu"))
    trainer.on_train_start()
    trainer.on_train_epoch_start()
    return trainer


def nnunet_ce_dice(trainer, weight_ce: float, weight_dice: float) -> DC_and_CE_loss:
    """nnU-Net's CE + Dice as its trainers build it for this trainer's configuration, at the given weights."""
    return DC_and_CE_loss({"batch_dice": trainer.configuration_manager.batch_dice, "smooth": 1e-5, "do_bg": False,
                           "ddp": False}, {}, weight_ce=weight_ce, weight_dice=weight_dice,
                          dice_class=MemoryEfficientSoftDiceLoss)


def fixed_batch_losses(trainer, steps: int) -> list:
    """Train ``steps`` steps on one fixed labeled + unlabeled batch; return the logged dicts."""
    batch = next(trainer.dataloader_train)
    unlabeled = trainer.next_unlabeled()
    trainer.next_unlabeled = lambda: unlabeled
    return [trainer.train_step(batch) for _ in range(steps)]


@pytest.mark.parametrize("name", ["nnSSLDualTrainer", "nnSSLFixedDynamicTrainer"])
def test_steps_reduce_loss_and_every_term_is_finite(hippo_ws, monkeypatch, name):
    trainer = make_trainer(hippo_ws, monkeypatch, name, fold=2)
    logs = fixed_batch_losses(trainer, 8)
    for key in logs[0]:
        assert all(np.isfinite(np.asarray(log[key], dtype=float)).all() for log in logs), key
    totals = [float(log["loss"]) for log in logs]
    assert min(totals[-3:]) < totals[0], totals
    expected = {"nnSSLDualTrainer": {"loss_sup_a", "loss_sup_b", *sum(DUAL_TERMS.values(), ())},
                "nnSSLFixedDynamicTrainer": {"loss_fix_a", "loss_dyn_a", "loss_fix_b", "loss_dyn_b",
                                             "frac_dynamic_differs"}}[name]
    shares = {"frac_fg_labeled", "frac_fg_net_a", "frac_fg_net_b"}  # nnssl.monitoring, logged by the base
    assert expected | shares <= set(logs[0])
    assert all(0.0 <= float(log[k]) <= 1.0 for log in logs for k in shares)


def test_logged_foreground_shares_are_those_of_the_batch(hippo_ws, monkeypatch):
    """frac_fg_labeled is the labeled target's foreground share; frac_fg_<net> the share of the unlabeled
    voxels that network's forward predicted as foreground (recomputed here from its output)."""
    trainer = make_trainer(hippo_ws, monkeypatch, "nnSSLCPSTrainer", fold=2)
    batch = next(trainer.dataloader_train)
    unlabeled = trainer.next_unlabeled()
    trainer.next_unlabeled = lambda: unlabeled
    seen = {}
    for name, net in trainer.subnetworks.items():
        def hook(module, inputs, output, name=name):
            seen[name] = (output[0] if isinstance(output, (list, tuple)) else output)[batch["data"].shape[0]:].detach()
        net.register_forward_hook(hook)
    log = trainer.train_step(batch)
    y = batch["target"][0]
    assert float(log["frac_fg_labeled"]) == pytest.approx(float((y > 0).float().mean()))
    for c in (1, 2):  # Hippocampus: two foreground classes, so the shares per class are logged too
        assert float(log[f"frac_c{c}_labeled"]) == pytest.approx(float((y == c).float().mean()))
    for name, z in seen.items():
        assert float(log[f"frac_fg_{name}"]) == pytest.approx(float((z.argmax(1) > 0).float().mean()))
        for c in (1, 2):
            assert float(log[f"frac_c{c}_{name}"]) == pytest.approx(float((z.argmax(1) == c).float().mean()))


@pytest.mark.parametrize("guard", ["off", "restart"])
def test_collapsed_epochs_write_a_warning_and_the_guard_restarts_the_ramp(hippo_ws, monkeypatch, guard):
    """Three epochs whose unlabeled predictions hold no foreground while the ramp acts: one warning in the log;
    with collapse_guard='restart' the ramp is 0 from then until the foreground gate reopens, then starts over."""
    trainer = make_trainer(hippo_ws, monkeypatch, "nnSSLCPSTrainer", fold=2, rampup_fraction=0.4,
                           collapse_guard=guard)
    trainer.iteration = trainer.total_iterations  # ramp(t) = 1
    outputs = [{"loss": np.array(0.5), "frac_fg_labeled": np.array(0.06), "frac_fg_net_a": np.array(0.0),
                "frac_fg_net_b": np.array(0.03)}] * 2

    def log_text() -> str:  # (a trainer built within the same second writes to the same log file)
        with open(trainer.log_file, encoding="utf-8") as f:
            return f.read()
    start = len(log_text())

    def log_count(text: str) -> int:
        return log_text()[start:].count(text)
    for epoch in range(4):
        trainer.current_epoch = epoch
        trainer.on_train_epoch_end(outputs)
        assert log_count("possible background collapse") == (1 if epoch >= 2 else 0), epoch
        restarted = guard == "restart" and epoch >= 2
        assert trainer.ramp() == (0.0 if restarted else 1.0), epoch
        assert log_count("collapse guard: the unsupervised ramp-up restarts") == int(restarted)
    assert "unlabeled voxels: net_a 0;" in log_text()[start:]  # net_b (0.03 of 0.06) is not collapsed
    if guard == "restart":
        y = next(trainer.dataloader_train)["target"][0]
        trainer._labeled_predictions = {"net_a": y[:, 0].long(), "net_b": y[:, 0].long()}
        trainer._update_ramp_start(y)
        assert trainer.ramp_start_iteration == trainer.iteration and trainer.ramp() == pytest.approx(math.exp(-5))
    with pytest.raises(ValueError, match="collapse_guard must be one of"):
        make_trainer(hippo_ws, monkeypatch, "nnSSLCPSTrainer", fold=2, collapse_guard="stop")


@pytest.mark.parametrize("switch", sorted(DUAL_TERMS))
def test_dual_switch_removes_its_term(hippo_ws, monkeypatch, switch):
    trainer = make_trainer(hippo_ws, monkeypatch, "nnSSLDualTrainer", fold=3, **{switch: False})
    log = fixed_batch_losses(trainer, 1)[0]
    assert np.isfinite(float(log["loss"]))
    assert not set(DUAL_TERMS[switch]) & set(log)
    others = [k for s, keys in DUAL_TERMS.items() if s != switch for k in keys]
    assert set(others) <= set(log)


def test_labeled_only_control_loss_ignores_the_unlabeled_batch(hippo_ws, monkeypatch):
    """nnSSLDualTrainer_LabeledOnly: loss = sum_k L_sup^k + beta * L_cr (towards the label); replacing the
    unlabeled batch changes nothing, and no unlabeled term is logged."""
    trainer = make_trainer(hippo_ws, monkeypatch, "nnSSLDualTrainer_LabeledOnly", fold=3)
    batch = next(trainer.dataloader_train)
    unlabeled = trainer.next_unlabeled()
    with torch.no_grad():
        first = trainer.compute_losses(batch["data"], batch["target"], unlabeled)
        second = trainer.compute_losses(batch["data"], batch["target"], torch.randn_like(unlabeled) * 3)
    expected = first["loss_sup_a"] + first["loss_sup_b"] + trainer.hparams["beta"] * first["loss_cr"]
    assert float(first["loss"]) == pytest.approx(float(expected), rel=1e-6)
    assert float(second["loss"]) == pytest.approx(float(first["loss"]), rel=1e-6)
    unlabeled_terms = {k for s in ("use_cce", "use_ue", "use_pgl") for k in DUAL_TERMS[s]}
    assert not unlabeled_terms & set(first) and "loss_cr" in first


def test_dual_subnets_are_heterogeneous(hippo_ws, monkeypatch):
    trainer = make_trainer(hippo_ws, monkeypatch, "nnSSLDualTrainer", fold=3)
    kinds = {n: type(unwrap(m)).__name__ for n, m in trainer.subnetworks.items()}
    assert kinds == {"net_a": "PlainConvUNet", "net_b": "ResidualEncoderUNet"}


def test_fixed_dynamic_both_directions_update_both_subnets(hippo_ws, monkeypatch):
    """With the supervised loss removed, net_a can only learn from direction (b) (SN2's labels on the original
    images) and net_b only from direction (c) (SN1's labels on the CutMix images): both must get gradients."""
    trainer = make_trainer(hippo_ws, monkeypatch, "nnSSLFixedDynamicTrainer", fold=2)
    trainer.loss = lambda output, target: output[0].sum() * 0.0
    batch = next(trainer.dataloader_train)
    trainer.optimizer.zero_grad(set_to_none=True)
    losses = trainer.compute_losses(batch["data"], batch["target"], trainer.next_unlabeled())
    losses["loss"].backward()
    for name, net in trainer.subnetworks.items():
        grads = [p.grad.abs().sum() for p in net.parameters() if p.grad is not None]
        assert grads and float(sum(grads)) > 0, name
    assert 0.0 <= float(losses["frac_dynamic_differs"]) <= 1.0


def test_fixed_dynamic_margin_ignores_the_patch_border_in_every_pseudo_label_loss(hippo_ws, monkeypatch):
    """pseudo_label_margin: the four pseudo-label targets carry the ignore label (one past the last class) exactly
    outside interior_mask, argmax classes inside, and each loss equals nnU-Net's CE + Dice on the interior crop."""
    trainer = make_trainer(hippo_ws, monkeypatch, "nnSSLFixedDynamicTrainer", fold=2, pseudo_label_margin=0.25)
    ignore = trainer.label_manager.num_segmentation_heads
    inside = interior_mask(trainer.configuration_manager.patch_size, 0.25)
    crop = (slice(None), slice(None)) + tuple(slice(m, p - m) for m, p in zip(
        margin_voxels(trainer.configuration_manager.patch_size, 0.25), trainer.configuration_manager.patch_size))
    seen, loss = [], trainer.pseudo_label_loss
    trainer.pseudo_label_loss = lambda z, y: seen.append((z.detach(), y, loss(z, y))) or seen[-1][2]
    batch = next(trainer.dataloader_train)
    with torch.no_grad():
        trainer.compute_losses(batch["data"], batch["target"], trainer.next_unlabeled())
    assert len(seen) == 4
    plain = nnunet_ce_dice(trainer, 0.5, 0.5)
    for z, y, value in seen:
        assert bool((y[:, 0][:, ~inside] == ignore).all()) and bool((y[:, 0][:, inside] < ignore).all())
        assert float(value) == pytest.approx(float(plain(z[crop], y[crop])), rel=1e-5)
    with pytest.raises(ValueError, match="pseudo_label_margin=0.49.*leaves no interior"):
        make_trainer(hippo_ws, monkeypatch, "nnSSLFixedDynamicTrainer", fold=2, pseudo_label_margin=0.49)


@pytest.mark.parametrize("weight_sup", [1.0, 2.0])
def test_fixed_dynamic_total_loss_weighs_each_term(hippo_ws, monkeypatch, weight_sup):
    """L = w_sup (L_sup^a + L_sup^b) + ramp (w_fix (L_fix^a + L_fix^b) + w_dyn (L_dyn^a + L_dyn^b)), ramp = 1 here;
    each L_sup^k is alpha CE + (1 - alpha) Dice, half nnU-Net's CE + Dice at alpha 0.5."""
    trainer = make_trainer(hippo_ws, monkeypatch, "nnSSLFixedDynamicTrainer", fold=2, weight_sup=weight_sup,
                           weight_fix=0.75, weight_dyn=0.25)
    assert trainer.ramp() == 1.0
    batch = next(trainer.dataloader_train)
    seen, loss = [], trainer.loss
    trainer.loss = lambda output, target: seen.append((output, target)) or loss(output, target)
    with torch.no_grad():
        logs = trainer.compute_losses(batch["data"], batch["target"], trainer.next_unlabeled())
    expected = weight_sup * (logs["loss_sup_a"] + logs["loss_sup_b"]) \
        + 0.75 * (logs["loss_fix_a"] + logs["loss_fix_b"]) + 0.25 * (logs["loss_dyn_a"] + logs["loss_dyn_b"])
    assert float(logs["loss"]) == pytest.approx(float(expected), rel=1e-6)
    nnunet = nnunet_ce_dice(trainer, 1.0, 1.0)
    output, target = seen[0]
    if hasattr(loss, "weight_factors"):  # nnU-Net's DeepSupervisionWrapper
        full = sum(w * nnunet(o, t) for w, o, t in zip(loss.weight_factors, output, target) if w != 0)
    else:
        full = nnunet(output, target)
    assert float(logs["loss_sup_a"]) == pytest.approx(0.5 * float(full), rel=1e-5)


def test_supervised_trainer_uses_labeled_data_only(hippo_ws, monkeypatch):
    """nnSSLSupervisedTrainer: no unlabeled loader, budget from the hparams, loss = nnU-Net's L_sup."""
    trainer = make_trainer(hippo_ws, monkeypatch, "nnSSLSupervisedTrainer", fold=3)
    assert trainer.dataloader_unlabeled is None and trainer.unlabeled_batch_size == 0
    assert (trainer.num_epochs, trainer.num_iterations_per_epoch) == (2, 3)  # TINY_HPARAMS from the plans

    def no_unlabeled():
        raise AssertionError("the supervised trainer asked for unlabeled data")
    trainer.next_unlabeled = no_unlabeled
    batch = next(trainer.dataloader_train)
    with torch.no_grad():
        expected = float(trainer.loss(trainer.network(batch["data"]), batch["target"]))
    logs = [trainer.train_step(batch) for _ in range(6)]
    assert float(logs[0]["loss"]) == pytest.approx(expected, rel=1e-5)
    assert all(float(log["loss_sup"]) == float(log["loss"]) for log in logs)
    assert min(float(log["loss"]) for log in logs[-3:]) < float(logs[0]["loss"])


def test_ssl_trainers_refuse_region_labels(hippo_ws, monkeypatch):
    """Region labels (e.g. nnssl_convert_brats --labels regions): clear error for SSL trainers, fine for the
    supervised one."""
    from nnssl_trainers import nnSSLCPSTrainer, nnSSLSupervisedTrainer
    for k, v in hippo_ws.env.items():
        if k.startswith("nnUNet"):
            monkeypatch.setenv(k, v)
    folder = hippo_ws.pre / "Dataset501_Hippocampus"
    plans = json.loads((folder / f"{TINY_PLANS}.json").read_text())
    dataset_json = json.loads((folder / "dataset.json").read_text())
    dataset_json["labels"] = {"background": 0, "hippocampus": [1, 2], "posterior": [2]}
    dataset_json["regions_class_order"] = [1, 2]
    with pytest.raises(NotImplementedError, match="region labels"):  # nnU-Net 2.8 pops plans['continue_training']
        nnSSLCPSTrainer({**plans, "continue_training": False}, "3d_fullres", 4, dataset_json,
                        torch.device("cpu")).initialize()
    supervised = nnSSLSupervisedTrainer({**plans, "continue_training": False}, "3d_fullres", 4, dataset_json,
                                        torch.device("cpu"))
    supervised.initialize()
    assert supervised.label_manager.has_regions and supervised.label_manager.num_segmentation_heads == 2


def test_dual_per_class_variant_sets_its_reliability_and_trains(hippo_ws, monkeypatch):
    trainer = make_trainer(hippo_ws, monkeypatch, "nnSSLDualTrainerPerClass", fold=3)
    assert trainer.hparams["pgl_reliability"] == "per_class"
    log = fixed_batch_losses(trainer, 1)[0]
    assert np.isfinite(float(log["loss"])) and {"loss_pgl_a", "reliable_voxels_c0"} <= set(log)
    with pytest.raises(ValueError, match="pgl_reliability must be one of"):
        make_trainer(hippo_ws, monkeypatch, "nnSSLDualTrainer", fold=3, pgl_reliability="classwise")
    with pytest.raises(ValueError, match=r"cr_mode must be one of \['xor', 'or'\], got 'and'"):
        make_trainer(hippo_ws, monkeypatch, "nnSSLDualTrainer", fold=3, cr_mode="and")  # at construction


def test_foreground_ramp_start_waits_for_every_network_to_segment_every_class(hippo_ws, monkeypatch):
    """ramp_start='foreground': ramp = 0 until both subnets reach the Dice threshold on every labeled class."""
    trainer = make_trainer(hippo_ws, monkeypatch, "nnSSLCPSTrainer", fold=2, ramp_start="foreground",
                           rampup_fraction=0.4)
    assert trainer.ramp_start_iteration is None and trainer.ramp() == 0.0
    y = next(trainer.dataloader_train)["target"][0]
    perfect, empty = y[:, 0].long(), torch.zeros_like(y[:, 0]).long()
    trainer.iteration = 7
    trainer._labeled_predictions = {"net_a": perfect, "net_b": empty}  # net_b still background only
    trainer._update_ramp_start(y)
    assert trainer.ramp_start_iteration is None and trainer._labeled_predictions == {}
    trainer._labeled_predictions = {"net_a": perfect, "net_b": perfect}
    trainer._update_ramp_start(y)
    assert trainer.ramp_start_iteration == 7 and trainer.ramp() == pytest.approx(math.exp(-5))
    trainer.iteration = 7 + math.ceil(0.4 * trainer.total_iterations)
    assert trainer.ramp() == 1.0
    assert trainer.checkpoint_dict()["nnssl"]["ramp_start_iteration"] == 7
    with pytest.raises(ValueError, match="ramp_start must be one of"):
        make_trainer(hippo_ws, monkeypatch, "nnSSLCPSTrainer", fold=2, ramp_start="later")


def test_foreground_ramp_start_reads_the_networks_of_a_real_step(hippo_ws, monkeypatch):
    trainer = make_trainer(hippo_ws, monkeypatch, "nnSSLCPSTrainer", fold=2, ramp_start="foreground",
                           ramp_start_dice=0.0)  # threshold 0: starts as soon as both networks' Dice is read
    log = fixed_batch_losses(trainer, 1)[0]
    assert np.isfinite(float(log["loss"])) and trainer.ramp_start_iteration == 1

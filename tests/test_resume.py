"""A training stopped after a checkpoint and continued with --c restores every network, the optimizer
and the step counters exactly as recorded (in-process, nnU-Net's own loading path)."""
from __future__ import annotations

import copy
import json

import pytest
import torch
from nnunetv2.run.run_training import get_trainer_from_args, maybe_load_checkpoint

from realdata import TINY_PLANS
from nnssl_trainers.wrapping import unwrap


class _Stop(Exception):
    pass


def _snapshot(trainer) -> dict:
    return {
        "networks": {n: copy.deepcopy(unwrap(m).state_dict()) for n, m in trainer.all_networks().items()},
        "optimizer": copy.deepcopy(trainer.optimizer.state_dict()),
        "iteration": trainer.iteration,
        "epoch": trainer.current_epoch,
        "losses": list(trainer.logger.get_value("train_losses", None)),
    }


def _assert_same_state_dict(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k


def _assert_same_optimizer(a: dict, b: dict) -> None:
    assert a["param_groups"] == b["param_groups"]
    assert a["state"].keys() == b["state"].keys() and len(a["state"]) > 0
    for k in a["state"]:
        _assert_same_state_dict(a["state"][k], b["state"][k])


@pytest.mark.parametrize("trainer_name", ["nnSSLCPSTrainer", "nnSSLMeanTeacherTrainer"])
def test_stop_and_continue_restores_everything(hippo_ws, monkeypatch, trainer_name):
    for k, v in hippo_ws.env.items():
        if k.startswith("nnUNet") or k == "OMP_NUM_THREADS":
            monkeypatch.setenv(k, v)
    monkeypatch.setenv("nnssl_hparams", json.dumps({"num_epochs": 3, "num_iterations_per_epoch": 2,
                                                    "num_val_iterations_per_epoch": 1, "save_every": 1}))
    cpu = torch.device("cpu")
    first = get_trainer_from_args("501", "3d_fullres", 1, trainer_name, TINY_PLANS, False, cpu)
    recorded = {}
    on_epoch_end = first.on_epoch_end

    def stop_after_second_epoch():
        on_epoch_end()  # writes checkpoint_latest.pth after epochs 0 and 1
        if first.current_epoch == 2:
            recorded.update(_snapshot(first))
            raise _Stop

    first.on_epoch_end = stop_after_second_epoch
    with pytest.raises(_Stop):
        first.run_training()
    assert recorded["iteration"] == 4 and len(recorded["losses"]) == 2

    resumed = get_trainer_from_args("501", "3d_fullres", 1, trainer_name, TINY_PLANS, True, cpu)
    maybe_load_checkpoint(resumed, True, False)
    state = _snapshot(resumed)
    assert set(state["networks"]) == set(recorded["networks"]) and len(state["networks"]) == 2
    for name in recorded["networks"]:
        _assert_same_state_dict(state["networks"][name], recorded["networks"][name])
    _assert_same_optimizer(state["optimizer"], recorded["optimizer"])
    assert (state["iteration"], state["epoch"], state["losses"]) == (4, 2, recorded["losses"])

    resumed.run_training()  # the third epoch
    assert resumed.iteration == 6 and resumed.current_epoch == 3
    final = torch.load(f"{resumed.output_folder}/checkpoint_final.pth", map_location="cpu", weights_only=False)
    assert final["nnssl"]["iteration"] == 6 and len(final["logging"]["train_losses"]) == 3
    name = next(iter(recorded["networks"]))
    key = next(iter(recorded["networks"][name]))
    assert not torch.equal(final["nnssl"]["networks"][name][key], recorded["networks"][name][key])

    with pytest.raises(RuntimeError, match="not written by an nnssl trainer"):
        resumed.load_checkpoint({"network_weights": {}})


def test_init_weights_starts_every_network_from_a_checkpoint_all_layers(hippo_ws, monkeypatch, tmp_path):
    """Hyperparameter init_weights: a fresh trainer's networks equal the checkpoint's network_weights, the
    segmentation layers included (nnU-Net's -pretrained_weights would re-initialise them); a checkpoint of
    another architecture or a missing file is refused naming the file."""
    for k, v in hippo_ws.env.items():
        if k.startswith("nnUNet") or k == "OMP_NUM_THREADS":
            monkeypatch.setenv(k, v)
    cpu = torch.device("cpu")

    def trainer(name: str, **hparams):
        monkeypatch.setenv("nnssl_hparams", json.dumps(hparams))
        t = get_trainer_from_args("501", "3d_fullres", 1, name, TINY_PLANS, False, cpu)
        t.initialize()
        return t

    source = trainer("nnSSLSupervisedTrainer")
    ckpt = tmp_path / "teacher.pth"
    torch.save({"network_weights": source.deploy_module().state_dict()}, ckpt)
    expected = unwrap(source.network).state_dict()
    fresh = unwrap(trainer("nnSSLSupervisedTrainer").network).state_dict()
    seg = [k for k in expected if ".seg_layers." in k]
    assert seg and not all(torch.equal(fresh[k], expected[k]) for k in seg)  # two fresh starts differ
    student = trainer("nnSSLMeanTeacherTrainer", init_weights=str(ckpt))  # student and its EMA teacher
    for net in student.all_networks().values():
        _assert_same_state_dict(unwrap(net).state_dict(), expected)
    torch.save({"network_weights": trainer("nnSSLCPSTrainer").deploy_module().state_dict()}, tmp_path / "pair.pth")
    with pytest.raises(RuntimeError, match=r"pair.pth \(init_weights\) does not fit network 'net'"):
        trainer("nnSSLSupervisedTrainer", init_weights=str(tmp_path / "pair.pth"))
    with pytest.raises(FileNotFoundError, match="init_weights: checkpoint .*missing.pth not found"):
        trainer("nnSSLSupervisedTrainer", init_weights=str(tmp_path / "missing.pth"))

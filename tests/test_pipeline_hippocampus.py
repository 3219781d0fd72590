"""End to end on real Hippocampus cases with the real command-line tools, in the order a user runs them:
nnssl_convert_msd -> nnssl_plan_and_preprocess -> nnssl_derive_plans (tiny network) -> nnUNetv2_train /
nnssl_train -> nnUNetv2_predict -> nnssl_evaluate."""
from __future__ import annotations

import json
from pathlib import Path
import pickle
import shutil

import numpy as np
import pytest
import SimpleITK as sitk
import torch

from realdata import HIPPO_DATASET as DATASET, TINY_PLANS as PLANS, Workspace

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def ws(hippo_ws) -> Workspace:
    return hippo_ws


def _trained_folder(ws: Workspace, trainer: str) -> str:
    return str(ws.res / DATASET / f"{trainer}__{PLANS}__3d_fullres" / "fold_0")


def test_preprocessed_layout(ws):
    pre = ws.pre / DATASET
    labeled = sorted(p.stem for p in (pre / "nnSSLPlans_3d_fullres").glob("*.pkl"))
    unlabeled = sorted(p.stem for p in (pre / "nnSSLPlans_3d_fullres_unlabeled").glob("*.pkl"))
    split = json.loads((ws.raw / DATASET / "nnssl_split.json").read_text())
    assert labeled == sorted(split["labeled"]) and unlabeled == sorted(split["unlabeled"])
    assert len(labeled) == 5 and len(unlabeled) == 5 and not set(labeled) & set(unlabeled)
    with open(pre / "nnSSLPlans_3d_fullres_unlabeled" / f"{unlabeled[0]}.pkl", "rb") as f:
        assert pickle.load(f)["class_locations"] == {}
    plans = json.loads((pre / "nnSSLPlans.json").read_text())
    assert plans["nnssl_planner"]["memory_factor"] == 4.0
    tiny = json.loads((pre / f"{PLANS}.json").read_text())["configurations"]["3d_fullres"]
    assert tiny["data_identifier"] == "nnSSLPlans_3d_fullres" and tiny["patch_size"] == [32, 32, 32]
    assert not (pre / "nnSSLPlans_3d_fullres.partial").exists()


def test_rerun_skips_finished_cases_and_redoes_a_crashed_one(ws):
    folder = ws.pre / DATASET / "nnSSLPlans_3d_fullres_unlabeled"
    cases = sorted(p.stem for p in folder.glob("*.pkl"))
    crashed = cases[0]
    (folder / f"{crashed}.pkl").unlink()  # a crash before the properties file was moved in
    (folder / f"{crashed}.b2nd").write_bytes(b"truncated")
    kept = {c: (folder / f"{c}.b2nd").stat().st_mtime_ns for c in cases[1:]}
    out = ws.run("nnssl_plan_and_preprocess", "-d", "501", "-np", "1").stdout
    assert "unlabeled: 5 cases, 4 already preprocessed, 1 to do" in out
    assert {c: (folder / f"{c}.b2nd").stat().st_mtime_ns for c in cases[1:]} == kept
    assert (folder / f"{crashed}.b2nd").stat().st_size > 100 and (folder / f"{crashed}.pkl").is_file()
    assert "using existing plans" in out


def test_bad_unlabeled_image_stops_planning_and_keeps_outputs(ws):
    bad_raw = ws.raw / "Dataset502_Broken"
    shutil.copytree(ws.raw / DATASET, bad_raw)
    victim = sorted((bad_raw / "imagesUnlabeled").iterdir())[0]
    img = sitk.ReadImage(str(victim), sitk.sitkFloat32)
    arr = sitk.GetArrayFromImage(img)
    arr[0, 0, 0] = np.nan
    nan_img = sitk.GetImageFromArray(arr)
    nan_img.CopyInformation(img)
    sitk.WriteImage(nan_img, str(victim))
    sentinel = ws.pre / "Dataset502_Broken" / "nnSSLPlans.json"
    sentinel.parent.mkdir()
    sentinel.write_text("{}")
    proc = ws.run("nnssl_plan_and_preprocess", "-d", "502", check=False)
    assert proc.returncode != 0
    assert victim.name in proc.stderr and ("NaN" in proc.stderr or "non-finite" in proc.stderr)
    assert sentinel.read_text() == "{}" and sorted(p.name for p in sentinel.parent.iterdir()) == ["nnSSLPlans.json"]


#: two-network trainers: a logged term that proves the method ran
TWO_NETWORK_TRAINERS = {"nnSSLCPSTrainer": "loss_cps", "nnSSLDualTrainer": "loss_efs",
                        "nnSSLFixedDynamicTrainer": "loss_dyn_a"}


@pytest.mark.parametrize("trainer", sorted(TWO_NETWORK_TRAINERS))
def test_two_network_trainer_train_predict_evaluate(ws, trainer):
    ws.run("nnUNetv2_train", "501", "3d_fullres", "0", "-tr", trainer, "-p", PLANS, "-device", "cpu")
    folder = _trained_folder(ws, trainer)
    ckpt = torch.load(f"{folder}/checkpoint_final.pth", map_location="cpu", weights_only=False)
    assert set(ckpt["nnssl"]["networks"]) == {"net_a", "net_b"}
    assert ckpt["nnssl"]["iteration"] == 2 * 3 and ckpt["current_epoch"] == 2
    assert "member_weights" in ckpt["network_weights"]
    assert any(k.startswith("members.net_b.") for k in ckpt["network_weights"])
    log = ckpt["logging"]
    term = TWO_NETWORK_TRAINERS[trainer]
    assert len(log[term]) == 2 and np.isfinite(log[term]).all() and len(log["ramp"]) == 2
    for share in ("frac_fg_labeled", "frac_fg_net_a", "frac_fg_net_b"):
        assert len(log[share]) == 2 and all(0.0 <= v <= 1.0 for v in log[share]), share
    train_logs = list(Path(folder).glob("training_log_*.txt"))
    assert len(train_logs) == 1
    ssl_lines = [ln for ln in train_logs[0].read_text().splitlines() if "ssl terms: " in ln]
    assert len(ssl_lines) == 2 and f"{term} " in ssl_lines[-1] and "frac_fg_net_b " in ssl_lines[-1]
    hp = json.loads(open(f"{folder}/nnssl_hparams.json").read())["hparams"]
    assert hp["num_iterations_per_epoch"] == 3
    nets = ckpt["nnssl"]["networks"]
    if trainer == "nnSSLDualTrainer":  # heterogeneous: a plain and a residual encoder
        assert any(k.startswith("encoder.stem") for k in nets["net_b"])
        assert not any(k.startswith("encoder.stem") for k in nets["net_a"])
    else:  # same architecture, initialised differently
        w = "encoder.stages.0.0.convs.0.conv.weight"
        assert not torch.equal(nets["net_a"][w], nets["net_b"][w])
    if trainer == "nnSSLFixedDynamicTrainer":  # benchmarks/border_bias.py reads both members of a real checkpoint
        out = ws.python(str(REPO / "benchmarks" / "border_bias.py"), folder,
                        str(ws.pre / DATASET / "nnSSLPlans_3d_fullres"), "--cases", "2", "--patches", "1").stdout
        for net in ("net_a", "net_b"):
            table = out.split(f"\n{net} (2 cases x 1 patches")[1]
            all_row = next(line for line in table.splitlines() if line.startswith("| all | 1.000 | "))
            assert all(float(c) >= 0 for c in all_row.strip("| ").split(" | ")[1:]), all_row

    pred = ws.root / f"pred_{trainer}"
    ws.run("nnUNetv2_predict", "-i", str(ws.raw / DATASET / "imagesTs"), "-o", str(pred), "-d", "501", "-c",
           "3d_fullres", "-f", "0", "-tr", trainer, "-p", PLANS, "-device", "cpu", "--disable_tta",
           "-npp", "1", "-nps", "1")
    test_ids = json.loads((ws.raw / DATASET / "nnssl_split.json").read_text())["test"]
    assert sorted(p.name for p in pred.glob("*.nii.gz")) == sorted(f"{i}.nii.gz" for i in test_ids)
    out = ws.run("nnssl_evaluate", "-ref", str(ws.raw / DATASET / "labelsTs"), "-pred", str(pred), "-d", "501",
                 "-np", "1").stdout
    assert "Dice" in out and "HD95" in out
    summary = json.loads((pred / "nnssl_summary.json").read_text())
    # independent check of one Dice value from the files
    case = test_ids[0]
    ref = sitk.GetArrayFromImage(sitk.ReadImage(str(ws.raw / DATASET / "labelsTs" / f"{case}.nii.gz")))
    seg = sitk.GetArrayFromImage(sitk.ReadImage(str(pred / f"{case}.nii.gz")))
    assert seg.shape == ref.shape
    r, p = ref == 1, seg == 1
    expected = 2 * (r & p).sum() / (r.sum() + p.sum()) if (r.sum() + p.sum()) else 1.0
    assert summary["num_cases"] == 2 and summary["labels"] == [1, 2]
    assert _find_dice(summary, case, 1) == pytest.approx(expected, abs=1e-6)


def _find_dice(summary: dict, case: str, label: int) -> float:
    """Dice of ``case``/``label`` in nnssl_evaluate's JSON."""
    entry = next(c for c in summary["per_case"] if c["case"] == f"{case}.nii.gz")
    return float(entry["metrics"][str(label)]["dice"])


def test_mean_teacher_with_nnssl_train_needs_no_env_var(ws):
    env = {k: v for k, v in ws.env.items() if k != "nnUNet_extTrainer"}
    ws_env_backup, ws.env = ws.env, env
    try:
        ws.run("nnssl_train", "501", "3d_fullres", "0", "-tr", "nnSSLMeanTeacherTrainer", "-p", PLANS, "-device",
               "cpu")
    finally:
        ws.env = ws_env_backup
    ckpt = torch.load(f"{_trained_folder(ws, 'nnSSLMeanTeacherTrainer')}/checkpoint_final.pth", map_location="cpu",
                      weights_only=False)
    nets = ckpt["nnssl"]["networks"]
    assert set(nets) == {"student", "teacher"}
    # the deployed weights are the student's (default deploy='student'); the teacher is its EMA, not a copy
    w = "encoder.stages.0.0.convs.0.conv.weight"
    assert torch.equal(ckpt["network_weights"][w], nets["student"][w])
    assert not torch.equal(nets["teacher"][w], nets["student"][w])
    assert len(ckpt["logging"]["loss_consistency"]) == 2

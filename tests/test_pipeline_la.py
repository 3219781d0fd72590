"""The same flow on real LA cases from the UA-MT h5 layout (0.625 mm), planned at a coarse 2.5 mm
target spacing so that a CPU runs it in seconds."""
from __future__ import annotations

import json

import numpy as np
import pytest
import SimpleITK as sitk
import torch

from realdata import TINY_HPARAMS, TINY_PLANS, TINY_PLANS_ARGS, Workspace, make_la_subset

DATASET = "Dataset511_LA"


@pytest.fixture(scope="module")
def ws(la_dir, tmp_path_factory) -> Workspace:
    """4 real LA cases: 2 labeled, 1 unlabeled, 1 test; planned at 2.5 mm with a tiny plans file."""
    ws = Workspace(tmp_path_factory.mktemp("la"))
    ids = make_la_subset(la_dir, ws.root / "LA", 4)
    ws.run("nnssl_convert_la", "-i", str(ws.root / "LA"), "-d", "511", "--labeled", "2", "--test", "1")
    raw = ws.raw / DATASET
    split = json.loads((raw / "nnssl_split.json").read_text())
    assert split["labeled"] == ids[:2] and split["unlabeled"] == ids[2:3] and split["test"] == ids[3:]
    assert sitk.ReadImage(str(raw / "imagesTr" / f"{ids[0]}_0000.nii.gz")).GetSpacing() == (0.625,) * 3

    ws.run("nnssl_plan_and_preprocess", "-d", "511", "--target_spacing", "2.5", "2.5", "2.5", "-np", "2")
    plans = json.loads((ws.pre / DATASET / "nnSSLPlans.json").read_text())
    assert plans["configurations"]["3d_fullres"]["spacing"] == [2.5, 2.5, 2.5]
    assert len(list((ws.pre / DATASET / "nnSSLPlans_3d_fullres_unlabeled").glob("*.pkl"))) == 1
    ws.run("nnssl_derive_plans", "-d", "511", "-o", TINY_PLANS, *TINY_PLANS_ARGS, "--hparams",
           json.dumps(dict(TINY_HPARAMS, num_epochs=1)))
    ws.ids = ids
    return ws


# one trainer: what is LA-specific (h5 conversion, 2.5 mm plans, export back to 0.625 mm) does not depend
# on it; every two-network trainer runs the same flow on Hippocampus (test_pipeline_hippocampus.py)
@pytest.mark.parametrize("trainer", ["nnSSLDualTrainer"])
def test_la_train_predict_evaluate(ws, trainer):
    ids, raw = ws.ids, ws.raw / DATASET
    ws.run("nnUNetv2_train", "511", "3d_fullres", "all", "-tr", trainer, "-p", TINY_PLANS, "-device", "cpu")
    folder = ws.res / DATASET / f"{trainer}__{TINY_PLANS}__3d_fullres" / "fold_all"
    ckpt = torch.load(folder / "checkpoint_final.pth", map_location="cpu", weights_only=False)
    assert ckpt["nnssl"]["iteration"] == 3 and np.isfinite(ckpt["logging"]["train_losses"]).all()
    assert (folder / "validation" / "summary.json").is_file()

    pred = ws.root / f"pred_{trainer}"
    ws.run("nnUNetv2_predict", "-i", str(raw / "imagesTs"), "-o", str(pred), "-d", "511", "-c", "3d_fullres", "-f",
           "all", "-tr", trainer, "-p", TINY_PLANS, "-device", "cpu", "--disable_tta", "-npp", "1",
           "-nps", "1")
    seg = sitk.ReadImage(str(pred / f"{ids[3]}.nii.gz"))
    ref = sitk.ReadImage(str(raw / "labelsTs" / f"{ids[3]}.nii.gz"))
    assert seg.GetSize() == ref.GetSize() and seg.GetSpacing() == ref.GetSpacing()  # back at 0.625 mm
    out = ws.run("nnssl_evaluate", "-ref", str(raw / "labelsTs"), "-pred", str(pred), "-d", "511", "-np", "1").stdout
    summary = json.loads((pred / "nnssl_summary.json").read_text())
    metrics = summary["per_case"][0]["metrics"]["1"]
    assert 0.0 <= metrics["dice"] <= 1.0 and summary["num_cases"] == 1
    if not metrics["distance_undefined"]:  # mm distances at 0.625 mm spacing are 0.625 x the voxel ones
        assert abs(metrics["hd95_mm"] - 0.625 * metrics["hd95_vox"]) < 1e-6
    assert "left_atrium" in out

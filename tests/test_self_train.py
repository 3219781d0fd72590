"""nnssl_self_train: pure pieces on tiny arrays, the step orchestration with a stand-in for nnU-Net's CLIs
(in-process, fast), and two real rounds on Hippocampus cases with an interrupted and resumed run."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk

from realdata import HIPPO_DATASET, TINY_PLANS, tree_digest
from nnssl.data.raw import write_dataset_json
from nnssl.self_training import derived, run, state as st
from nnssl.self_training.cli import main as cli_main
from nnssl.self_training.pseudo_labels import (case_confidence, check_threshold, ignore_uncertain_voxels,
                                               select_cases, voxel_confidence)

# ----------------------------------------------------------------------------- pure pieces

PROBS = np.array([[0.2, 0.9], [0.8, 0.1]])  # 2 classes x 2 voxels: voxel confidences 0.8 and 0.9


def test_confidence_softmax_and_regions():
    assert np.allclose(voxel_confidence(PROBS), [0.8, 0.9])
    assert case_confidence(PROBS) == pytest.approx(0.85)
    # regions (sigmoid): mean over regions of max(p, 1 - p): voxel 0 (0.8 + 0.8) / 2, voxel 1 (0.9 + 0.9) / 2
    assert np.allclose(voxel_confidence(PROBS, regions=True), [0.8, 0.9])
    assert case_confidence(np.array([[0.2, 0.6]]), regions=True) == pytest.approx(0.7)


def test_uncertain_voxels_get_the_ignore_label():
    seg = np.array([1, 0])
    assert ignore_uncertain_voxels(seg, PROBS, 0.85, 3).tolist() == [3, 0]
    assert ignore_uncertain_voxels(seg, PROBS, 0.8, 3).tolist() == [1, 0]  # 0.8 is not below 0.8
    assert seg.tolist() == [1, 0]  # input untouched
    with pytest.raises(ValueError, match="does not match"):
        ignore_uncertain_voxels(np.zeros(3), PROBS, 0.5, 3)


def test_case_selection_and_threshold_check():
    conf = {"a": 0.5, "b": 0.7, "c": 0.6}
    assert select_cases(conf, 0.6) == ["b"]  # strictly above
    assert select_cases(conf, None) == ["a", "b", "c"]
    check_threshold("--x", 0.0)
    with pytest.raises(ValueError, match=r"--voxel_threshold must be a probability in \[0, 1\], got 1.5"):
        check_threshold("--voxel_threshold", 1.5)


def test_ignore_label_and_split_derivation():
    assert derived.with_ignore_label({"background": 0, "a": 1, "b": 2}) == (
        {"background": 0, "a": 1, "b": 2, "ignore": 3}, 3)
    assert derived.with_ignore_label({"background": 0, "a": 1, "ignore": 5})[1] == 5
    base = [{"train": ["a", "b"], "val": ["c"]}, {"train": ["a", "c"], "val": ["b"]}]
    assert derived.derive_splits(base, ["u1", "u2"]) == [{"train": ["a", "b", "u1", "u2"], "val": ["c"]},
                                                         {"train": ["a", "c", "u1", "u2"], "val": ["b"]}]


def test_state_resume_logic(tmp_path):
    settings = {"dataset": "Dataset001_X", "configuration": "3d_fullres", "fold": "0", "trainer": "T", "plans": "P",
                "case_threshold": None, "voxel_threshold": 0.5, "finetune": False}
    state = st.new_state(settings)
    todo = st.pending_steps(state, 2, finetune=False)
    assert todo[0] == (0, "train") and len(todo) == 1 + 5 + 5 and todo[-1] == (2, "train")
    assert len(st.pending_steps(state, 1, finetune=True)) == 1 + 6
    st.mark_done(state, 0, "train", model={"dataset": "Dataset001_X"})
    st.mark_done(state, 1, "predict")
    assert st.pending_steps(state, 2, finetune=False)[0] == (1, "pseudo_labels")
    assert st.completed_rounds(state, finetune=False) == [0]
    path = tmp_path / "run" / "state.json"
    st.save_state(state, path)
    assert st.load_state(path) == state and not list(path.parent.glob("*.tmp"))
    st.check_settings(state, {**settings}, path)
    with pytest.raises(ValueError, match=r"voxel_threshold: stored 0.5, now 0.7"):
        st.check_settings(state, {**settings, "voxel_threshold": 0.7}, path)
    # a state written before warm_start/teacher_hparams existed implies their defaults
    legacy = {"settings": {k: v for k, v in state["settings"].items() if k not in st.SETTING_DEFAULTS}}
    st.check_settings(legacy, {**settings, "warm_start": None, "teacher_hparams": None}, path)
    with pytest.raises(ValueError, match=r"warm_start: stored None, now 'all'"):
        st.check_settings(legacy, {**settings, "warm_start": "all"}, path)
    path.write_text("{broken")
    with pytest.raises(ValueError, match="not valid JSON"):
        st.load_state(path)
    assert st.load_state(tmp_path / "missing.json") is None


def test_train_command_continues_or_loads_pretrained_weights(tmp_path):
    model = {"dataset": "Dataset001_X", "configuration": "3d_fullres", "fold": "0", "trainer": "T", "plans": "P"}
    opts = run.Options(dataset="1", configuration="3d_fullres", rounds=1, device="cpu")
    fresh = run.train_command(model, tmp_path, opts, pretrained=Path("/w.pth"))
    assert fresh == ["nnUNetv2_train", "Dataset001_X", "3d_fullres", "0", "-tr", "T", "-p", "P",
                     "-pretrained_weights", "/w.pth", "-device", "cpu"]
    (tmp_path / "checkpoint_latest.pth").write_bytes(b"x")  # a half-finished training
    assert run.train_command(model, tmp_path, opts, pretrained=Path("/w.pth"))[8:] == ["--c", "-device", "cpu"]


def test_dataset_ids(tmp_path):
    raw, res = tmp_path / "raw", tmp_path / "res"
    for p in (raw / "Dataset005_A", raw / "Dataset006_B", res / "Dataset008_C"):
        p.mkdir(parents=True)
    folders = [raw, res]
    assert derived.choose_free_id(5, folders) == 7
    assert derived.choose_free_id(5, folders, taken=[7]) == 9
    assert derived.resolve_dataset("6", folders) == "Dataset006_B"
    with pytest.raises(ValueError, match="no DatasetXXX_ folder"):
        derived.resolve_dataset("7", folders)
    assert derived.derived_name(7, "Dataset005_A", 2) == "Dataset007_ASelfTrainR2"
    with pytest.raises(ValueError, match=r"already used by \['Dataset006_B'\]"):
        derived.check_free_id(6, "Dataset006_ASelfTrainR1", folders)
    derived.check_free_id(6, "Dataset006_B", folders)  # our own folder (resume)


# ----------------------------------------------------------------------------- orchestration, fake nnU-Net

def _write_image(path: Path, arr: np.ndarray) -> None:
    img = sitk.GetImageFromArray(arr)
    img.SetSpacing((1.0, 1.0, 2.0))
    sitk.WriteImage(img, str(path))


def _synthetic_base(paths: run.Paths, n_labeled: int = 3, n_unlabeled: int = 2) -> str:
    """Dataset001_Toy: raw (nnssl format), a plans file and splits in preprocessed."""
    name = "Dataset001_Toy"
    raw = paths.raw / name
    rng = np.random.default_rng(0)
    for sub in ("imagesTr", "labelsTr", "imagesUnlabeled"):
        (raw / sub).mkdir(parents=True)
    labeled = [f"toy_{i:03d}" for i in range(n_labeled)]
    for c in labeled:
        _write_image(raw / "imagesTr" / f"{c}_0000.nii.gz", rng.random((4, 5, 6)).astype(np.float32))
        _write_image(raw / "labelsTr" / f"{c}.nii.gz", rng.integers(0, 3, (4, 5, 6)).astype(np.uint8))
    for i in range(n_unlabeled):
        _write_image(raw / "imagesUnlabeled" / f"toy_{100 + i:03d}_0000.nii.gz",
                     rng.random((4, 5, 6)).astype(np.float32))
    write_dataset_json(raw, {"0": "MRI"}, {"background": 0, "a": 1, "b": 2}, n_labeled, ".nii.gz", n_unlabeled)
    pre = paths.pre / name
    pre.mkdir(parents=True)
    (pre / "P.json").write_text(json.dumps({"plans_name": "P", "configurations": {"3d_fullres": {}}}))
    (pre / "splits_final.json").write_text(json.dumps([{"train": labeled[:2], "val": labeled[2:]}]))
    return name


class FakeNnUNet:
    """Stand-in for run._call: records commands, writes checkpoints and probability predictions."""

    def __init__(self, paths: run.Paths):
        self.paths, self.calls, self.envs = paths, [], []

    def __call__(self, cmd, opts, env_update=None):
        cmd = list(cmd)
        self.calls.append(cmd)
        self.envs.append(env_update or {})
        arg = lambda flag: cmd[cmd.index(flag) + 1]  # noqa: E731
        if cmd[0] == "nnUNetv2_train":
            folder = self.paths.res / cmd[1] / f"{arg('-tr')}__{arg('-p')}__{cmd[2]}" / f"fold_{cmd[3]}"
            folder.mkdir(parents=True, exist_ok=True)
            (folder / "checkpoint_final.pth").write_bytes(b"weights")
        elif cmd[0] == "nnUNetv2_predict":
            out = Path(arg("-o"))
            for img in sorted(Path(arg("-i")).glob("*_0000.nii.gz")):
                case = img.name[: -len("_0000.nii.gz")]
                shape = sitk.GetArrayFromImage(sitk.ReadImage(str(img))).shape
                probs = np.full((3, *shape), 0.1, dtype=np.float32)
                probs[1] = 0.8
                probs[:, 0, 0, 0] = [0.4, 0.3, 0.3]  # one uncertain voxel (confidence 0.4)
                seg = probs.argmax(0).astype(np.uint8)
                ref = sitk.ReadImage(str(img))
                seg_img = sitk.GetImageFromArray(seg)
                seg_img.CopyInformation(ref)
                sitk.WriteImage(seg_img, str(out / f"{case}.nii.gz"))
                np.savez_compressed(out / f"{case}.npz", probabilities=probs)


def test_orchestration_with_finetune_interrupt_and_resume(tmp_path, monkeypatch):
    paths = run.Paths(*(tmp_path / k for k in ("raw", "pre", "res")))
    base = _synthetic_base(paths)
    fake = FakeNnUNet(paths)
    monkeypatch.setattr(run, "_call", fake)
    opts = run.Options(dataset="1", configuration="3d_fullres", rounds=2, trainer="T", plans="P",
                       voxel_threshold=0.5, finetune=True, derived_ids=[11])
    monkeypatch.setenv(run.STOP_ENV, "1:train")
    with pytest.raises(run.Interrupted):
        run.run_self_training(opts, paths)
    first = [c[0] for c in fake.calls]
    assert first == ["nnUNetv2_train", "nnUNetv2_predict", "nnUNetv2_extract_fingerprint",
                     "nnUNetv2_move_plans_between_datasets", "nnUNetv2_preprocess", "nnUNetv2_train"]
    # the fine-tuning of round 1 was killed after its first checkpoint
    ft = paths.res / base / "T__P_SelfTrainR1FineTune__3d_fullres" / "fold_0"
    ft.mkdir(parents=True)
    (ft / "checkpoint_latest.pth").write_bytes(b"half")
    monkeypatch.delenv(run.STOP_ENV)
    fake.calls.clear()
    final = run.run_self_training(opts, paths)
    cmds = [" ".join(c) for c in fake.calls]
    assert cmds[0] == "nnUNetv2_train Dataset001_Toy 3d_fullres 0 -tr T -p P_SelfTrainR1FineTune --c"
    assert "nnUNetv2_predict" in cmds[1] and "-p P_SelfTrainR1FineTune" in cmds[1]  # round 2's teacher
    assert "nnUNetv2_preprocess -d 12 -plans_name P -c 3d_fullres" in cmds[4]  # next free id above 11's
    assert cmds[5] == "nnUNetv2_train Dataset012_ToySelfTrainR2 3d_fullres 0 -tr T -p P"
    student = paths.res / "Dataset012_ToySelfTrainR2" / "T__P__3d_fullres" / "fold_0" / "checkpoint_final.pth"
    assert cmds[6] == ("nnUNetv2_train Dataset001_Toy 3d_fullres 0 -tr T -p P_SelfTrainR2FineTune "
                       f"-pretrained_weights {student}")
    assert len(cmds) == 7
    assert final["dataset"] == base and final["plans"] == "P_SelfTrainR2FineTune"
    run_dir = run.run_folder(paths, base, opts)
    state = json.loads((run_dir / "state.json").read_text())
    assert state["derived_ids"] == {"1": 11, "2": 12} and state["final"]["round"] == 2
    assert st.completed_rounds(state, True) == [0, 1, 2]
    # plans copies differ from the base plans only by name
    copy = json.loads((paths.pre / base / "P_SelfTrainR2FineTune.json").read_text())
    assert copy == {"plans_name": "P_SelfTrainR2FineTune", "configurations": {"3d_fullres": {}}}
    # pseudo-labels: the uncertain voxel is ignored (label 3), the rest is the prediction
    pl = sitk.GetArrayFromImage(sitk.ReadImage(str(run_dir / "round_1" / "pseudo_labels" / "toy_100.nii.gz")))
    assert pl[0, 0, 0] == 3 and (pl.ravel()[1:] == 1).all()
    ds = json.loads((paths.raw / "Dataset011_ToySelfTrainR1" / "dataset.json").read_text())
    assert ds["numTraining"] == 5 and ds["labels"]["ignore"] == 3 and ds["numUnlabeled"] == 0
    assert ds["nnssl_self_training"]["round"] == 1 and ds["nnssl_self_training"]["pseudo_labeled"] == [
        "toy_100", "toy_101"]
    splits = json.loads((paths.pre / "Dataset011_ToySelfTrainR1" / "splits_final.json").read_text())
    assert splits == [{"train": ["toy_000", "toy_001", "toy_100", "toy_101"], "val": ["toy_002"]}]
    # everything done: a rerun runs nothing; changed settings are refused
    fake.calls.clear()
    assert run.run_self_training(opts, paths) == final and fake.calls == []
    with pytest.raises(ValueError, match="other settings"):
        run.run_self_training(run.Options(**{**opts.__dict__, "voxel_threshold": 0.9}), paths)


@pytest.mark.parametrize("warm_start", ["pretrained_weights", "all"])
def test_warm_start_student_and_teacher_budget(tmp_path, monkeypatch, warm_start):
    """--teacher_hparams reach the teacher's training only (merged over $nnssl_hparams); --warm_start makes the
    student start from the teacher's final checkpoint: nnU-Net's -pretrained_weights, or every layer through the
    nnssl hyperparameter init_weights; both are fixed settings of the run."""
    paths = run.Paths(*(tmp_path / k for k in ("raw", "pre", "res")))
    base = _synthetic_base(paths)
    fake = FakeNnUNet(paths)
    monkeypatch.setattr(run, "_call", fake)
    monkeypatch.setenv("nnssl_hparams", json.dumps({"num_epochs": 1, "save_every": 5}))
    opts = run.Options(dataset="1", configuration="3d_fullres", rounds=1, trainer="T", plans="P",
                       warm_start=warm_start, teacher_hparams={"num_epochs": 3}, derived_ids=[11])
    run.run_self_training(opts, paths)
    trains = [(c, e) for c, e in zip(fake.calls, fake.envs) if c[0] == "nnUNetv2_train"]
    (teacher_cmd, teacher_env), (student_cmd, student_env) = trains
    assert json.loads(teacher_env["nnssl_hparams"]) == {"num_epochs": 3, "save_every": 5}
    assert "-pretrained_weights" not in teacher_cmd
    teacher_ckpt = paths.res / base / "T__P_SelfTrainR0__3d_fullres" / "fold_0" / "checkpoint_final.pth"
    student = ["nnUNetv2_train", "Dataset011_ToySelfTrainR1", "3d_fullres", "0", "-tr", "T", "-p", "P"]
    if warm_start == "pretrained_weights":
        assert student_cmd == student + ["-pretrained_weights", str(teacher_ckpt)] and student_env == {}
    else:  # the student's own budget ($nnssl_hparams) plus the teacher's weights
        assert student_cmd == student
        assert json.loads(student_env["nnssl_hparams"]) == {"num_epochs": 1, "save_every": 5,
                                                            "init_weights": str(teacher_ckpt)}
    state = json.loads((run.run_folder(paths, base, opts) / "state.json").read_text())
    assert state["settings"]["warm_start"] == warm_start and state["settings"]["teacher_hparams"] == {"num_epochs": 3}
    with pytest.raises(ValueError, match=r"teacher_hparams: stored \{'num_epochs': 3\}, now \{'num_epochs': 4\}"):
        run.run_self_training(run.Options(**{**opts.__dict__, "teacher_hparams": {"num_epochs": 4}}), paths)
    with pytest.raises(ValueError, match="--warm_start must be one of"):
        run.run_self_training(run.Options(**{**opts.__dict__, "warm_start": "yes"}), paths)
    assert run.teacher_env(run.Options(dataset="1", configuration="c", rounds=1)) == {}  # no override: none


def test_labeled_share_reaches_the_students_only(monkeypatch):
    """--labeled_share becomes the students' nnssl hyperparameter labeled_share, beside a warm start's."""
    monkeypatch.setenv("nnssl_hparams", json.dumps({"num_epochs": 1}))
    ckpt = Path("/r/checkpoint_final.pth")
    opts = run.Options(dataset="1", configuration="c", rounds=1, labeled_share=0.5)
    assert run.student_start(opts, ckpt) == (None, {"nnssl_hparams": json.dumps({"num_epochs": 1,
                                                                                  "labeled_share": 0.5})})
    pretrained, env = run.student_start(run.Options(**{**opts.__dict__, "warm_start": "all"}), ckpt)
    assert pretrained is None and json.loads(env["nnssl_hparams"]) == {"num_epochs": 1, "labeled_share": 0.5,
                                                                       "init_weights": str(ckpt)}
    pretrained, env = run.student_start(run.Options(**{**opts.__dict__, "warm_start": "pretrained_weights"}), ckpt)
    assert pretrained == ckpt and json.loads(env["nnssl_hparams"])["labeled_share"] == 0.5
    assert run.student_start(run.Options(dataset="1", configuration="c", rounds=1), ckpt) == (None, {})
    assert run.teacher_env(opts) == {}  # the teacher's dataset has no pseudo-labeled case


def test_cli_errors(tmp_path, monkeypatch, capsys):
    paths = run.Paths(*(tmp_path / k for k in ("raw", "pre", "res")))
    base = _synthetic_base(paths)
    for k, p in zip(("nnUNet_raw", "nnUNet_preprocessed", "nnUNet_results"), paths.all):
        monkeypatch.setenv(k, str(p))
    args = ["-d", "1", "-c", "3d_fullres", "--rounds", "1", "-tr", "nnSSLSupervisedTrainer", "-p", "P"]
    assert cli_main(args + ["--voxel_threshold", "2"]) == 1
    assert "--voxel_threshold must be a probability" in capsys.readouterr().err
    for bad, message in (("[1]", "expected a JSON object"), ("{num", "invalid JSON")):
        with pytest.raises(SystemExit):
            cli_main(args + ["--teacher_hparams", bad])
        assert message in capsys.readouterr().err
    assert cli_main(args + ["--voxel_threshold", "2", "--teacher_hparams", '{"num_epochs": 2}']) == 1
    assert "--voxel_threshold must be a probability" in capsys.readouterr().err
    assert cli_main(args[:7] + ["nnUNetTrainer", "-p", "P", "--warm_start", "all"]) == 1
    assert "--warm_start all needs an nnssl trainer" in capsys.readouterr().err
    assert cli_main(args[:7] + ["nnUNetTrainer", "-p", "P", "--labeled_share", "0.5"]) == 1
    assert "--labeled_share needs an nnssl trainer" in capsys.readouterr().err
    assert cli_main(args + ["--labeled_share", "1"]) == 1
    assert "--labeled_share must be a number between 0 and 1" in capsys.readouterr().err
    assert cli_main(["-d", "9"] + args[2:]) == 1
    assert "dataset id 9: no DatasetXXX_ folder" in capsys.readouterr().err
    (paths.raw / "Dataset011_Other").mkdir()
    assert cli_main(args + ["--derived_ids", "11"]) == 1  # nnU-Net is never started: the id is checked first
    assert "derived dataset id 11 is already used by ['Dataset011_Other']" in capsys.readouterr().err
    assert cli_main(args[:-1] + ["Missing"]) == 1
    assert "plans" in capsys.readouterr().err
    assert cli_main(args[:7] + ["nnSSLMeanTeacherTrainer", "-p", "P"]) == 1
    assert "trains on unlabeled images" in capsys.readouterr().err
    for f in (paths.raw / base / "imagesUnlabeled").iterdir():
        f.unlink()
    ds = json.loads((paths.raw / base / "dataset.json").read_text())
    (paths.raw / base / "dataset.json").write_text(json.dumps({**ds, "numUnlabeled": 0}))
    assert cli_main(args) == 1
    assert "no unlabeled images in" in capsys.readouterr().err


# ----------------------------------------------------------------------------- real Hippocampus cases

SELF_TRAIN_DIR = f"nnSSLSelfTrain__nnSSLSupervisedTrainer__{TINY_PLANS}__3d_fullres"
#: the smallest budget that still trains and validates (overrides the tiny plans' nnssl_hparams)
FAST = json.dumps({"num_epochs": 1, "num_iterations_per_epoch": 2, "num_val_iterations_per_epoch": 1})


def _check_round(ws, run_dir: Path, k: int, dataset_id: int) -> None:
    """Round k's pseudo-labels, derived dataset (raw + preprocessed splits) and student checkpoint."""
    import torch
    rd = run_dir / f"round_{k}"
    record = json.loads((rd / "pseudo_labels" / "confidence.json").read_text())
    unlabeled = json.loads((ws.raw / HIPPO_DATASET / "nnssl_split.json").read_text())["unlabeled"]
    assert sorted(record["confidence"]) == sorted(unlabeled)
    assert record["selected"] == sorted(unlabeled) and record["ignore_label"] == 3  # case threshold 0.0
    for case in record["selected"]:
        pred = sitk.GetArrayFromImage(sitk.ReadImage(str(rd / "predictions" / f"{case}.nii.gz")))
        pl = sitk.GetArrayFromImage(sitk.ReadImage(str(rd / "pseudo_labels" / f"{case}.nii.gz")))
        with np.load(rd / "predictions" / f"{case}.npz") as f:
            conf = voxel_confidence(f["probabilities"])
        assert record["confidence"][case] == pytest.approx(float(conf.mean()), rel=1e-5)
        assert np.array_equal(pl, np.where(conf < 0.4, 3, pred))
    name = f"Dataset{dataset_id}_HippocampusSelfTrainR{k}"
    ds = json.loads((ws.raw / name / "dataset.json").read_text())
    assert ds["numTraining"] == 5 + len(record["selected"]) == len(list((ws.raw / name / "labelsTr").iterdir()))
    assert ds["labels"]["ignore"] == 3 and ds["numUnlabeled"] == 0 and ds["nnssl_self_training"]["round"] == k
    base_split = json.loads((ws.pre / HIPPO_DATASET / "splits_final.json").read_text())[0]
    split = json.loads((ws.pre / name / "splits_final.json").read_text())[0]
    assert split == {"train": base_split["train"] + record["selected"], "val": base_split["val"]}
    ckpt = ws.res / name / f"nnSSLSupervisedTrainer__{TINY_PLANS}__3d_fullres" / "fold_0" / "checkpoint_final.pth"
    assert torch.load(ckpt, map_location="cpu", weights_only=False)["trainer_name"] == "nnSSLSupervisedTrainer"


def _training_log(folder: Path) -> str:
    """The text of nnU-Net's training log(s) in a results fold folder."""
    return "".join(p.read_text() for p in sorted(folder.glob("training_log_*.txt")))


def test_two_real_rounds_interrupted_and_resumed(hippo_ws):
    ws = hippo_ws
    args = ["nnssl_self_train", "-d", "501", "-c", "3d_fullres", "-f", "0", "-tr", "nnSSLSupervisedTrainer", "-p",
            TINY_PLANS, "-device", "cpu", "-np", "1", "--case_threshold", "0.0", "--voxel_threshold", "0.4",
            "--derived_ids", "581", "582", "--warm_start", "all",
            "--teacher_hparams", '{"num_iterations_per_epoch": 3}', "--labeled_share", "0.5"]
    env = {"nnssl_hparams": FAST}
    run_dir = ws.res / HIPPO_DATASET / SELF_TRAIN_DIR / "fold_0"
    teacher = ws.res / HIPPO_DATASET / f"nnSSLSupervisedTrainer__{TINY_PLANS}_SelfTrainR0__3d_fullres" / "fold_0"
    # 1. a run stopped right after round 1's pseudo-labels (the interruption hook)
    proc = ws.run(*args, "--rounds", "1", env={**env, run.STOP_ENV: "1:pseudo_labels"}, check=False)
    assert proc.returncode == 75 and "rerun the same command to resume" in proc.stderr, proc.stderr[-2000:]
    state = json.loads((run_dir / "state.json").read_text())
    assert state["rounds"]["0"]["completed"] == ["train"]
    assert state["rounds"]["1"]["completed"] == ["predict", "pseudo_labels"]
    assert (teacher / "checkpoint_final.pth").is_file() and not (ws.raw / "Dataset581_HippocampusSelfTrainR1").exists()
    assert '"num_iterations_per_epoch": 3,' in _training_log(teacher)  # --teacher_hparams over $nnssl_hparams
    kept = {p: tree_digest(p) for p in (teacher, run_dir / "round_1")}
    # 2. rerun: resumes at the derived dataset, nothing before it is redone
    out = ws.run(*args, "--rounds", "1", env=env).stdout
    assert "resuming at round 1 step derive" in out
    # --warm_start all: the student starts from every layer of the teacher (hyperparameter init_weights)
    student1 = (ws.res / "Dataset581_HippocampusSelfTrainR1" / f"nnSSLSupervisedTrainer__{TINY_PLANS}__3d_fullres"
                / "fold_0")
    log = _training_log(student1)
    assert f"init_weights: every network (net) starts from {teacher / 'checkpoint_final.pth'}, all layers" in log
    assert '"num_iterations_per_epoch": 2,' in log
    # --labeled_share 0.5: half of the student's patches from the labeled cases (the teacher is not reweighted)
    assert "labeled_share: a training patch comes from a labeled case with probability 0.500" in log
    assert "labeled_share:" not in _training_log(teacher)
    assert not {"round 0/1: train", "round 1/1: predict", "round 1/1: pseudo_labels"} & set(out.splitlines()[1:])
    assert {p: tree_digest(p) for p in kept} == kept
    _check_round(ws, run_dir, 1, 581)
    round1 = [run_dir / "round_1", ws.raw / "Dataset581_HippocampusSelfTrainR1",
              ws.pre / "Dataset581_HippocampusSelfTrainR1", ws.res / "Dataset581_HippocampusSelfTrainR1", teacher]
    kept = {p: tree_digest(p) for p in round1}
    # 3. one more round: round 1 untouched, round 2 pseudo-labels with round 1's student
    out = ws.run(*args, "--rounds", "2", env=env).stdout
    assert "resuming at round 2 step predict" in out
    student2 = (ws.res / "Dataset582_HippocampusSelfTrainR2" / f"nnSSLSupervisedTrainer__{TINY_PLANS}__3d_fullres"
                / "fold_0")
    assert f"starts from {student1 / 'checkpoint_final.pth'}, all layers" in _training_log(student2)
    assert {p: tree_digest(p) for p in round1} == kept
    _check_round(ws, run_dir, 2, 582)
    settings = json.loads((run_dir / "round_2" / "settings.json").read_text())
    assert settings["teacher"]["dataset"] == "Dataset581_HippocampusSelfTrainR1"
    final = json.loads((run_dir / "state.json").read_text())["final"]
    assert (final["round"], final["dataset"], final["plans"]) == (2, "Dataset582_HippocampusSelfTrainR2", TINY_PLANS)
    assert f"-d Dataset582_HippocampusSelfTrainR2 -tr nnSSLSupervisedTrainer -p {TINY_PLANS}" in out

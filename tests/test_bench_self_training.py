"""The accuracy harness's self-training methods (accuracy_self_training.py): budget split, derived ids,
plans copies and the teacher's evaluation, with the tools replaced by a recorder; the real rounds run in
test_self_train.py."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench_fixtures import TINY_SETTINGS, _summary
from bench_accuracy import Harness, self_train_budget  # noqa: E402


def test_self_training_branch_splits_the_budget_and_predicts_with_the_final_model(tmp_path):
    """A self-training method: nnssl_self_train gets the budget split evenly over teacher and rounds, the
    method's extra args and derived dataset ids of its own (per method and run); the test cases are then
    predicted with the model nnssl_self_train names as final in its state.json. The tools are replaced by
    a recorder here; nnssl_self_train's real rounds run in test_self_train.py."""
    settings = {**TINY_SETTINGS, "hparams": {**TINY_SETTINGS["hparams"], "num_epochs": 6},
                "methods": {"st_mt": {"trainer": "nnSSLMeanTeacherTrainer", "self_train": {"rounds": 1}},
                            "st_sup": {"trainer": "nnSSLSupervisedTrainer",
                                       "self_train": {"rounds": 2, "args": ["--case_threshold", "0.5"]}}}}
    h = Harness(settings, tmp_path / "work", tmp_path, "cpu", log=lambda *a, **k: None)
    calls = []

    def record(name: str, *cmd: str, env=None) -> None:
        calls.append((cmd[0], list(cmd), env or {}))
        arg = lambda flag: cmd[cmd.index(flag) + 1]  # noqa: E731
        if cmd[0] == "nnssl_self_train":  # writes the state nnssl_self_train would leave
            last_id = cmd[cmd.index("--derived_ids") + int(arg("--rounds"))]
            method = "st_sup" if arg("-tr") == "nnSSLSupervisedTrainer" else "st_mt"
            state = h.self_train_state(method, int(arg("-p")[-1]))
            state.parent.mkdir(parents=True)
            teacher = {"dataset": "Dataset571_hippo_tiny_ssl", "plans": "P_teacher", "trainer": arg("-tr"),
                       "fold": "all", "configuration": "3d_fullres"}
            state.write_text(json.dumps({"final": {"dataset": f"Dataset{last_id}_Student", "plans": "P_student",
                                                   "trainer": arg("-tr")}, "rounds": {"0": {"model": teacher}}}))
        elif cmd[0] == "nnUNetv2_predict":
            Path(arg("-o")).mkdir(parents=True)
        elif cmd[0] == "nnssl_evaluate":
            dice = 0.5 if "teacher" not in arg("-pred") else 0.25
            (Path(arg("-pred")) / "nnssl_summary.json").write_text(json.dumps(_summary({"a": {1: dice, 2: dice}})))

    h.run = record
    summary = h.run_method("st_sup", 1)
    assert summary == h.summary_path("st_sup", 1) and summary.is_file()
    assert [c[0] for c in calls] == ["nnssl_self_train"] + ["nnUNetv2_predict", "nnssl_evaluate"] * 2
    (_, st, env), (_, predict, _), (_, evaluate, _), (_, teacher_predict, _), _ = calls
    # the teacher (round-0 model of the state) is evaluated on the same test cases, as method st_sup_teacher
    for flag, value in (("-d", "Dataset571_hippo_tiny_ssl"), ("-p", "P_teacher"), ("-f", "all"),
                        ("-i", predict[predict.index("-i") + 1])):
        assert teacher_predict[teacher_predict.index(flag) + 1] == value, flag
    teacher_summary = h.summary_path("st_sup_teacher", 1)
    assert json.loads(teacher_summary.read_text())["per_case"][0]["metrics"]["1"]["dice"] == 0.25
    del calls[3:]
    # 6 epochs over teacher + 2 rounds; ids 580 + 20 * run + 5 * (index among the self-training methods)
    assert json.loads(env["nnssl_hparams"]) == {**settings["hparams"], "num_epochs": 2}
    assert st[st.index("--derived_ids") + 1:][:2] == ["606", "607"] and st[-2:] == ["--case_threshold", "0.5"]
    assert st[st.index("-p") + 1] == "nnSSLPlans_hippo_tiny_r1" and st[st.index("-d") + 1] == "571"
    for flag, value in (("-d", "Dataset607_Student"), ("-p", "P_student"), ("-tr", "nnSSLSupervisedTrainer"),
                        ("-i", str(h.folders["nnUNet_raw"] / "Dataset571_hippo_tiny_ssl" / "imagesTs"))):
        assert predict[predict.index(flag) + 1] == value, flag
    assert evaluate[evaluate.index("-ref") + 1].endswith("Dataset571_hippo_tiny_ssl/labelsTs")
    assert h.run_method("st_sup", 1) == summary and len(calls) == 3  # finished: nothing runs again
    teacher_summary.unlink()  # a run finished before teachers were evaluated: only the teacher runs
    assert h.run_method("st_sup", 1) == summary and [c[0] for c in calls[3:]] == ["nnUNetv2_predict",
                                                                                  "nnssl_evaluate"]
    assert teacher_summary.is_file()
    del calls[3:]
    h.run_method("st_mt", 0)
    _, st, env = calls[3]
    assert json.loads(env["nnssl_hparams"])["num_epochs"] == 3  # 6 epochs over teacher + 1 round
    assert st[st.index("--derived_ids") + 1] == "581" and "--case_threshold" not in st


def test_self_train_budget_adds_up_to_the_settings_budget():
    # even split over teacher + rounds (old behaviour); --finetune adds one training per round
    assert self_train_budget(40, 1) == (20, 20)
    assert self_train_budget(40, 2) == (13, 13)
    assert self_train_budget(40, 1, finetune=True) == (13, 13)
    # a teacher fraction: round(0.75 * 40) = 30 for the teacher, the other 10 over the later trainings
    assert self_train_budget(40, 1, 0.75) == (30, 10)
    assert self_train_budget(40, 2, 0.5, finetune=True) == (20, 5)
    assert self_train_budget(3, 1, 0.9) == (3, 1)  # every training gets at least one epoch
    for bad in (0.0, 1.0, 1.5):
        with pytest.raises(ValueError, match="teacher_fraction must be in"):
            self_train_budget(40, 1, bad)


def test_self_training_with_a_teacher_fraction_and_its_own_plans_copy(tmp_path):
    """teacher_fraction: nnssl_self_train gets the students' budget in $nnssl_hparams and the teacher's through
    --teacher_hparams; plans_suffix: the run uses a copy of the run's plans (only plans_name differs)."""
    settings = {**TINY_SETTINGS, "hparams": {**TINY_SETTINGS["hparams"], "num_epochs": 8},
                "methods": {"st_warm": {"trainer": "nnSSLSupervisedTrainer",
                                        "self_train": {"rounds": 1, "teacher_fraction": 0.75, "plans_suffix": "W",
                                                       "args": ["--warm_start", "all"]}}}}
    h = Harness(settings, tmp_path / "work", tmp_path, "cpu", log=lambda *a, **k: None)
    pre = h.folders["nnUNet_preprocessed"] / h.dataset_name("ssl")
    pre.mkdir(parents=True)
    (pre / f"{h.plans_name(0)}.json").write_text(json.dumps({"plans_name": h.plans_name(0), "x": 1}))
    calls = []

    def record(name: str, *cmd: str, env=None) -> None:
        calls.append((list(cmd), env or {}))
        if cmd[0] == "nnssl_self_train":
            state = h.self_train_state("st_warm", 0)
            state.parent.mkdir(parents=True)
            state.write_text(json.dumps({"final": {"dataset": "Dataset999_S", "plans": "P", "trainer": "T"}}))

    h.run = record
    h._self_train("st_warm", 0, settings["methods"]["st_warm"], {})
    (cmd, env), = calls
    assert json.loads(env["nnssl_hparams"]) == {**settings["hparams"], "num_epochs": 2}
    assert cmd[cmd.index("--teacher_hparams") + 1] == json.dumps({"num_epochs": 6})
    assert cmd[cmd.index("--warm_start") + 1] == "all"
    plans = cmd[cmd.index("-p") + 1]
    assert plans == f"{h.plans_name(0)}_W" and h.self_train_state("st_warm", 0).parent.parent.name.endswith(
        f"__{plans}__{h.cfg}")
    assert json.loads((pre / f"{plans}.json").read_text()) == {"plans_name": plans, "x": 1}

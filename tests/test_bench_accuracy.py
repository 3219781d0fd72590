"""The accuracy benchmark harness (bench_accuracy.py) at a tiny budget; report maths: test_accuracy_report.py."""
from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from bench_fixtures import REPO, TINY_SETTINGS, _summary
import accuracy_report as report  # noqa: E402  (benchmarks/ is on sys.path through bench_fixtures)
from accuracy_settings import (check_methods_distinct, check_same_settings, jobs_warning,  # noqa: E402
                               load_settings)
from bench_accuracy import Harness  # noqa: E402


def run_harness(cmd: list[str], env: dict[str, str], timeout: float) -> subprocess.CompletedProcess:
    """Runs the harness in its own session; on timeout kills the whole group (its nnUNetv2_train children
    included, which would otherwise keep training after the test failed) and re-raises."""
    with subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, encoding="utf-8",
                          start_new_session=True) as proc:
        try:
            out, err = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()
            raise
    return subprocess.CompletedProcess(cmd, proc.returncode, out, err)


def test_work_folder_refuses_other_settings(tmp_path):
    record = tmp_path / "settings.json"
    check_same_settings(TINY_SETTINGS, record)
    more = {**TINY_SETTINGS, "methods": {**TINY_SETTINGS["methods"], "cps": {"trainer": "nnSSLCPSTrainer"}},
            "repetitions": 3}
    check_same_settings(more, record)  # adding methods and runs is fine
    assert set(json.loads(record.read_text())["methods"]) == set(TINY_SETTINGS["methods"]) | {"cps"}
    check_same_settings({**TINY_SETTINGS, "repetitions": 1}, record)  # e.g. a report of run 0 only
    assert json.loads(record.read_text())["repetitions"] == 3  # the record keeps the most runs asked for
    budget = {**TINY_SETTINGS, "hparams": {**TINY_SETTINGS["hparams"], "num_epochs": 5}}
    with pytest.raises(SystemExit, match="hparams differ"):
        check_same_settings(budget, record)
    redefined = {**TINY_SETTINGS, "methods": {**TINY_SETTINGS["methods"], "supervised": {"trainer": "X"}}}
    with pytest.raises(SystemExit, match="methods.supervised"):
        check_same_settings(redefined, record)


def test_settings_extend_another_file(tmp_path):
    """"extends": the base file's settings with the variant's keys merged over them: nested dicts key by key,
    methods added or replaced whole, other values replaced; a cycle is refused naming the files."""
    (tmp_path / "base.json").write_text(json.dumps({
        "name": "b", "split": {"pool": 30, "labeled": 3}, "hparams": {"num_epochs": 20, "save_every": 4},
        "methods": {"sup": {"trainer": "S"}, "st": {"trainer": "S", "self_train": {"rounds": 1, "args": ["-x"]}}}}))
    (tmp_path / "variant.json").write_text(json.dumps({
        "extends": "base.json", "name": "v", "hparams": {"num_epochs": 40},
        "methods": {"st": {"trainer": "S", "self_train": {"rounds": 2}}, "cps": {"trainer": "C"}}}))
    assert load_settings(tmp_path / "variant.json") == {
        "name": "v", "split": {"pool": 30, "labeled": 3}, "hparams": {"num_epochs": 40, "save_every": 4},
        "methods": {"sup": {"trainer": "S"}, "st": {"trainer": "S", "self_train": {"rounds": 2}},
                    "cps": {"trainer": "C"}}}
    (tmp_path / "base.json").write_text(json.dumps({"extends": "variant.json", "name": "b"}))
    with pytest.raises(SystemExit, match="variant.json extends itself"):
        load_settings(tmp_path / "variant.json")
    k1 = load_settings(REPO / "benchmarks" / "settings" / "hippocampus_cpu_1k.json")  # a shipped variant
    assert k1["name"] == "hippocampus_cpu_1k" and k1["hparams"]["num_epochs"] == 40 and "extends" not in k1
    assert k1["split"]["labeled"] == 3 and {"supervised", "dual_guard"} <= set(k1["methods"])


def test_methods_sharing_a_results_folder_are_refused():
    for path in sorted((REPO / "benchmarks" / "settings").glob("*.json")):  # the shipped settings pass
        check_methods_distinct(load_settings(path))
    twin = {"methods": {"dual": {"trainer": "T"}, "dual_v2": {"trainer": "T", "hparams": {}},
                        "dual_full": {"trainer": "T", "dataset": "full"}}}
    with pytest.raises(SystemExit, match="'dual' and 'dual_v2' both train T"):
        check_methods_distinct(twin)
    twin["methods"]["dual_v2"]["hparams"] = {"eta": 50}
    check_methods_distinct(twin)  # hparams: a plans copy of its own; another dataset: a results folder of its own
    st = {"methods": {"st": {"trainer": "T", "self_train": {"rounds": 1}},
                      "st_b": {"trainer": "T", "self_train": {"rounds": 2}}}}
    with pytest.raises(SystemExit, match="'st' and 'st_b' both train T"):
        check_methods_distinct(st)
    st["methods"]["st_b"]["self_train"]["plans_suffix"] = "B"
    check_methods_distinct(st)  # a plans copy of its own keeps the second run apart
    for bad in ({"dual__v2": {"trainer": "T"}}, {"dual/v2": {"trainer": "T"}},
                {"st": {"trainer": "T", "self_train": {"plans_suffix": "a__b"}}}):
        with pytest.raises(SystemExit, match="no '__'"):
            check_methods_distinct({"methods": bad})


def test_method_hparams_train_with_a_plans_copy_of_their_own(tmp_path):
    """A method with ``hparams`` trains and predicts with ``<plans>_<method>``, a copy of the run's plans with
    them merged into its nnssl_hparams (the budget kept); only the quality predictor's path goes through the
    environment; a method without hparams keeps the run's plans; the report's trainer cell names the hparams."""
    methods = {"supervised": {"trainer": "nnSSLSupervisedTrainer"},
               "dual_peer": {"trainer": "nnSSLDualTrainer_QG", "quality_predictor": True,
                             "hparams": {"cr_target": "peer"}}}
    h = Harness({**TINY_SETTINGS, "methods": methods}, tmp_path / "work", tmp_path, "cpu", log=lambda *a, **k: None)
    pre = h.folders["nnUNet_preprocessed"] / "Dataset571_hippo_tiny_ssl"
    pre.mkdir(parents=True)
    base = {"plans_name": "nnSSLPlans_hippo_tiny_r0", "nnssl_hparams": {"num_epochs": 2, "beta": 0.3}}
    (pre / "nnSSLPlans_hippo_tiny_r0.json").write_text(json.dumps(base))
    h.train_quality_predictor = lambda rep: tmp_path / "predictor.pth"
    calls = []

    def record(name: str, *cmd: str, env=None) -> None:
        calls.append((list(cmd), env or {}))
        if cmd[0] == "nnUNetv2_predict":
            Path(cmd[cmd.index("-o") + 1]).mkdir(parents=True)
        elif cmd[0] == "nnssl_evaluate":
            (Path(cmd[cmd.index("-pred") + 1]) / "nnssl_summary.json").write_text(
                json.dumps(_summary({"a": {1: 0.5}})))

    h.run = record
    h.run_method("dual_peer", 0)
    (train, env), (predict, _), _ = calls
    assert train[0] == "nnUNetv2_train" and train[train.index("-p") + 1] == "nnSSLPlans_hippo_tiny_r0_dual_peer"
    assert predict[predict.index("-p") + 1] == "nnSSLPlans_hippo_tiny_r0_dual_peer"
    assert json.loads(env["nnssl_hparams"]) == {"qg_predictor": str(tmp_path / "predictor.pth")}
    copy = json.loads((pre / "nnSSLPlans_hippo_tiny_r0_dual_peer.json").read_text())
    assert copy == {"plans_name": "nnSSLPlans_hippo_tiny_r0_dual_peer",
                    "nnssl_hparams": {"num_epochs": 2, "beta": 0.3, "cr_target": "peer"}}
    assert json.loads((pre / "nnSSLPlans_hippo_tiny_r0.json").read_text()) == base  # the run's plans untouched
    calls.clear()
    h.run_method("supervised", 0)
    assert calls[0][0][calls[0][0].index("-p") + 1] == "nnSSLPlans_hippo_tiny_r0" and calls[0][1] == {}
    rows = report.collect_rows({m: {0: h.summary_path(m, 0)} for m in methods}, h.s)
    table = report.markdown_table(rows)
    assert "| dual_peer | `nnSSLDualTrainer_QG` cr_target=peer |" in table
    assert "| supervised | `nnSSLSupervisedTrainer` |" in table


def test_shipped_settings_define_each_method_name_alike():
    """A method name means one trainer setup in every shipped settings file (the archive's keys are compared
    across datasets, and the same definitions are written in more than one file: a rename must reach all)."""
    seen: dict = {}
    for path in sorted((REPO / "benchmarks" / "settings").glob("*.json")):
        for method, spec in load_settings(path)["methods"].items():
            first = seen.setdefault(method, (path.name, spec))
            assert first[1] == spec, f"{method!r}: {first[0]} and {path.name} define it differently"


def test_archive_records_agree_with_the_shipped_settings(tmp_path):
    """Each archive record accepts its shipped settings as check_same_settings does before a rerun (data, plans,
    budget and every archived method's definition): when a trainer default changes, the archived methods get
    the old value as an explicit hparam in the settings and in the archive's record alike."""
    paths = sorted((REPO / "benchmarks" / "settings").glob("*.json"))
    assert len(paths) >= 5
    for path in paths:
        settings = load_settings(path)
        record = tmp_path / settings["name"] / "settings.json"  # a copy: check_same_settings rewrites the record
        record.parent.mkdir()
        record.write_text((REPO / "docs" / "results" / settings["name"] / "settings.json").read_text())
        check_same_settings(settings, record)


def test_tools_come_from_the_running_interpreter(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", "/usr/bin")  # e.g. a venv's python run without activating the venv
    h = Harness(TINY_SETTINGS, tmp_path / "work", tmp_path / "data", "cpu", create=False)
    assert h.env["PATH"].split(os.pathsep) == [str(Path(sys.executable).parent), "/usr/bin"]
    assert not (tmp_path / "work").exists()


def test_report_only_refuses_a_folder_without_a_benchmark(tmp_path, capsys):
    from bench_accuracy import main
    settings = tmp_path / "tiny.json"
    settings.write_text(json.dumps(TINY_SETTINGS))
    typo = tmp_path / "no_such_workdir"
    with pytest.raises(SystemExit):
        main(["--settings", str(settings), "--workdir", str(typo), "--report_only"])
    assert "holds no benchmark" in capsys.readouterr().err
    assert not typo.exists()  # nothing created in a mistyped folder


def test_harness_end_to_end_tiny(hippocampus_dir, tmp_path):
    """Converts, plans, trains, predicts and evaluates three methods at a budget of 2 x 2 iterations, writes
    the report; a second run reuses everything (no training, no prediction). Self-training's branch is
    tested below without training (the real rounds run in test_self_train.py)."""
    settings = tmp_path / "tiny.json"
    settings.write_text(json.dumps(TINY_SETTINGS))
    work = tmp_path / "work"
    cmd = [sys.executable, str(REPO / "benchmarks" / "bench_accuracy.py"), "--settings", str(settings),
           "--workdir", str(work), "--data", str(hippocampus_dir.parent), "-device", "cpu"]
    env = {"PATH": str(Path(sys.executable).parent) + ":" + os.environ["PATH"],
           "nnUNet_n_proc_DA": "0", "nnUNet_def_n_proc": "1", "nnUNet_compile": "0", "OMP_NUM_THREADS": "2",
           "PYTHONUTF8": "1", "HOME": str(tmp_path)}
    first = run_harness(cmd, env=env, timeout=900)
    assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-3000:]
    for step in ("train_supervised_r0", "train_full_r0", "quality_predictor_r0", "train_cps_qg_r0",
                 "predict_cps_qg_r0", "evaluate_full_r0"):
        assert f"{step}:" in first.stdout
    result = json.loads((work / "report" / "results.json").read_text())
    rows = {r["method"]: r for r in result["rows"]}
    assert list(rows) == ["supervised", "full", "cps_qg"]
    test_ids = json.loads((work / "nnUNet_raw" / "Dataset571_hippo_tiny_ssl" / "nnssl_split.json").read_text())["test"]
    for r in rows.values():
        assert r["cases"] == sorted(f"{i}.nii.gz" for i in test_ids)
        assert all(0.0 <= d <= 1.0 for d in r["values"]["dice"])
    full_split = json.loads((work / "nnUNet_raw" / "Dataset572_hippo_tiny_full" / "nnssl_split.json").read_text())
    ssl_split = json.loads((work / "nnUNet_raw" / "Dataset571_hippo_tiny_ssl" / "nnssl_split.json").read_text())
    assert full_split["test"] == ssl_split["test"]
    assert sorted(full_split["labeled"]) == sorted(ssl_split["labeled"] + ssl_split["unlabeled"])
    sup, full = rows["supervised"]["stats"]["dice"]["mean"], rows["full"]["stats"]["dice"]["mean"]
    expected = report.gap_closed(rows["cps_qg"]["stats"]["dice"]["mean"], sup, full)
    assert (math.isnan(expected) and rows["cps_qg"]["gap_closed"] is None or
            rows["cps_qg"]["gap_closed"] == pytest.approx(expected, nan_ok=True))
    hp = json.loads(next((work / "nnUNet_results").glob("Dataset571_*/nnSSLCPSTrainer_QG__*/fold_all/"
                                                        "nnssl_hparams.json")).read_text())["hparams"]
    assert hp["num_epochs"] == 2 and hp["num_iterations_per_epoch"] == 2 and hp["qg_predictor"].endswith(".pth")
    md = (work / "report" / "results.md").read_text()
    assert "| supervised | `nnSSLSupervisedTrainer` |" in md and "Dice (%)" in md
    png = (work / "report" / "dice.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 2000
    second = run_harness(cmd, env=env, timeout=300)
    assert second.returncode == 0, second.stderr[-3000:]
    assert "train_" not in second.stdout and "predict_" not in second.stdout
    assert json.loads((work / "report" / "results.json").read_text())["rows"][0]["values"] == \
        rows["supervised"]["values"]
    # --report_only trains nothing and reports what is finished: a method added since (never run) is left out
    more = tmp_path / "more.json"
    more.write_text(json.dumps({**TINY_SETTINGS, "methods": {**TINY_SETTINGS["methods"],
                                                             "mean_teacher": {"trainer": "nnSSLMeanTeacherTrainer"}}}))
    only = [c if c != str(settings) else str(more) for c in cmd] + [
        "--report_only", "--repetitions", "2", "--methods", "supervised", "mean_teacher", "--out", str(work / "r2")]
    third = run_harness(only, env=env, timeout=300)
    assert third.returncode == 0, third.stderr[-3000:]
    assert "left out of the report: mean_teacher" in third.stderr
    assert "train_" not in third.stdout and "predict_" not in third.stdout
    partial = json.loads((work / "r2" / "results.json").read_text())["rows"]
    assert [r["method"] for r in partial] == ["supervised"] and len(partial[0]["run_dice"]) == 1
    assert partial[0]["values"] == rows["supervised"]["values"]


def test_harness_prepares_la_at_coarser_spacing(la_dir, tmp_path):
    """The LA branch of the harness: first ids of train.list labeled, last ids held out as test, the next
    pool - labeled ids unlabeled; both datasets planned at the settings' target spacing with the same plans."""
    from realdata import make_la_subset
    ids = make_la_subset(la_dir, tmp_path / "data" / "LA", 6)
    settings = {"name": "la_tiny", "source": {"kind": "la", "folder": "LA"},
                "split": {"pool": 3, "labeled": 2, "test": 2, "seed": 0}, "target_spacing": [2.5, 2.5, 2.5],
                "dataset_ids": {"ssl": 573, "full": 574, "self_train": 590}, "configuration": "3d_fullres",
                "plans": {"patch_size": [32, 32, 16], "n_stages": 3, "features_base": 4, "features_max": 16,
                          "batch_size": 2},
                "hparams": {"num_epochs": 1}, "fold": "all", "methods": {}}
    lines = []
    h = Harness(settings, tmp_path / "work", tmp_path / "data", "cpu", log=lambda *a, **k: lines.append(a[0]))
    h.prepare()
    raw, pre = h.folders["nnUNet_raw"], h.folders["nnUNet_preprocessed"]
    ssl = json.loads((raw / "Dataset573_la_tiny_ssl" / "nnssl_split.json").read_text())
    full = json.loads((raw / "Dataset574_la_tiny_full" / "nnssl_split.json").read_text())
    assert ssl["labeled"] == ids[:2] and ssl["unlabeled"] == ids[2:3] and ssl["test"] == ids[-2:]
    assert full["labeled"] == ids[:3] and full["unlabeled"] == [] and full["test"] == ids[-2:]
    for name, n_cases in (("Dataset573_la_tiny_ssl", 2), ("Dataset574_la_tiny_full", 3)):
        plans = json.loads((pre / name / "nnSSLPlans.json").read_text())
        assert plans["configurations"]["3d_fullres"]["spacing"] == [2.5, 2.5, 2.5]
        derived = json.loads((pre / name / "nnSSLPlans_la_tiny_r0.json").read_text())["configurations"]["3d_fullres"]
        assert derived["patch_size"] == [32, 32, 16] and derived["batch_size"] == 2
        assert len(list((pre / name / "nnSSLPlans_3d_fullres").glob("*.pkl"))) == n_cases
    assert [p.stem for p in (pre / "Dataset573_la_tiny_ssl" / "nnSSLPlans_3d_fullres_unlabeled").glob("*.pkl")] \
        == ids[2:3]
    started = [line.split("] ", 1)[1].split(":")[0] for line in lines if line.startswith("[")]
    assert started == ["convert_ssl", "convert_full", "plan_ssl", "fingerprint_full", "plans_to_full",
                       "preprocess_full", "derive_plans_ssl_r0", "derive_plans_full_r0"]
    h.prepare()  # a second call finds every step done and runs nothing
    assert len([line for line in lines if line.startswith("[")]) == len(started)


def _fake_finished_run(workdir: Path, method: str, rep: int, dice: float) -> Path:
    path = workdir / "predictions" / f"{method}_r{rep}" / "nnssl_summary.json"
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps(_summary({"a": {1: dice, 2: dice}, "b": {1: dice, 2: dice}})))
    return path


def test_archive_keeps_finished_runs_across_work_folders(tmp_path, capsys):
    """Runs finished in one (later lost) work folder are archived and reported from another; an archived
    run is never replaced by a different run under the same name."""
    from bench_accuracy import main
    settings = tmp_path / "tiny.json"
    settings.write_text(json.dumps(TINY_SETTINGS))
    archive = tmp_path / "results"
    first = tmp_path / "session1"
    first.mkdir()
    check_same_settings(TINY_SETTINGS, first / "settings.json")  # as the harness left it
    sup = _fake_finished_run(first, "supervised", 0, 0.5)
    _fake_finished_run(first, "full", 0, 0.9)
    args = ["--settings", str(settings), "--report_only", "--archive", str(archive), "--methods", "supervised", "full"]
    assert main(args + ["--workdir", str(first), "--out", str(tmp_path / "r1")]) == 0
    stored = archive / "hippo_tiny"
    assert sorted(p.name for p in stored.iterdir()) == ["full_r0.json", "settings.json", "supervised_r0.json"]
    assert (stored / "supervised_r0.json").read_bytes() == sup.read_bytes()

    second = tmp_path / "session2"  # a new machine: nothing but the archive
    assert main(args + ["--workdir", str(second), "--out", str(tmp_path / "r2")]) == 0
    assert not second.exists()  # reporting creates no work folder
    rows = {r["method"]: r for r in json.loads((tmp_path / "r2" / "results.json").read_text())["rows"]}
    assert rows["supervised"]["stats"]["dice"]["mean"] == pytest.approx(0.5)
    assert rows["full"]["stats"]["dice"]["mean"] == pytest.approx(0.9)
    # paired comparisons of archived runs are reported too, and a pair naming no reported method is refused
    pair = ["--pair", "full", "supervised:r0"]
    assert main(args + ["--workdir", str(second), "--out", str(tmp_path / "r2p"), *pair]) == 0
    assert "| full | supervised:r0 | 90.00 | 50.00 | +40.00 | 100% |" in (tmp_path / "r2p" / "results.md").read_text()
    with pytest.raises(SystemExit):
        main(args + ["--workdir", str(second), "--out", str(tmp_path / "r2q"), "--pair", "full", "cps_qg"])
    assert "neither among the reported methods" in capsys.readouterr().err

    other = _fake_finished_run(tmp_path / "session3", "supervised", 0, 0.7)  # another run, same name
    check_same_settings(TINY_SETTINGS, tmp_path / "session3" / "settings.json")
    with pytest.raises(SystemExit, match="holds another run"):
        main(args + ["--workdir", str(tmp_path / "session3"), "--out", str(tmp_path / "r3")])
    assert (stored / "supervised_r0.json").read_bytes() == sup.read_bytes()  # the archived run is kept
    assert other.is_file()


def test_report_lists_teachers_and_pairs_with_outside_runs(tmp_path, capsys):
    """A self-training method's evaluated teachers are reported as <method>_teacher right after it, with its
    trainer, and can be paired with it; a --pair operand may be the summary file of a run made outside the
    harness (evaluated on the same test cases), a method whose teacher was not evaluated gets no teacher row."""
    from bench_accuracy import main
    st = {"trainer": "nnSSLSupervisedTrainer", "self_train": {"rounds": 1}}
    st2 = {"trainer": "nnSSLMeanTeacherTrainer", "self_train": {"rounds": 1}}
    settings = {**TINY_SETTINGS, "methods": {**TINY_SETTINGS["methods"], "st": st, "st2": st2}}
    path = tmp_path / "tiny.json"
    path.write_text(json.dumps(settings))
    work = tmp_path / "work"
    work.mkdir()
    check_same_settings(settings, work / "settings.json")
    for method, rep, dice in (("supervised", 0, 0.5), ("st", 0, 0.8), ("st", 1, 0.6), ("st_teacher", 0, 0.7),
                              ("st2", 0, 0.6)):
        _fake_finished_run(work, method, rep, dice)
    outside = _fake_finished_run(tmp_path / "elsewhere", "x", 0, 0.65)
    args = ["--settings", str(path), "--workdir", str(work), "--report_only", "--repetitions", "2",
            "--methods", "supervised", "st", "st2", "--out", str(tmp_path / "r")]
    assert main(args + ["--pair", "st:r0", "st_teacher", "--pair", "st", str(outside)]) == 0
    result = json.loads((tmp_path / "r" / "results.json").read_text())
    rows = [(r["method"], r["trainer"], r["run_dice"]) for r in result["rows"]]
    assert rows == [("supervised", "nnSSLSupervisedTrainer", [0.5]), ("st", "nnSSLSupervisedTrainer", [0.8, 0.6]),
                    ("st_teacher", "nnSSLSupervisedTrainer", [0.7]), ("st2", "nnSSLMeanTeacherTrainer", [0.6])]
    pairs = [(q["a"], q["b"], round(q["difference"], 6)) for q in result["pairs"]]
    assert pairs == [("st:r0", "st_teacher", 0.1), ("st", str(outside), 0.05)]
    assert [q["runs_above"] for q in result["pairs"]] == [1.0, 0.5]  # st's runs 0.8, 0.6 against the outside 0.65
    capsys.readouterr()
    with pytest.raises(SystemExit):
        main(args + ["--pair", "st", str(tmp_path / "missing.json")])
    assert "nor an nnssl_evaluate summary file" in capsys.readouterr().err
    assert main(args + ["--pair", "st", "st2_teacher"]) == 1  # a teacher that was not evaluated
    assert "no finished run of method 'st2_teacher'" in capsys.readouterr().err
    other = tmp_path / "other.json"
    for text in ("{not json", json.dumps({"per_case": []})):  # not an nnssl_evaluate summary: named, no report
        other.write_text(text)
        assert main(args + ["--out", str(tmp_path / "r_bad"), "--pair", "st", str(other)]) == 1
        assert f"pair '{other}': not an nnssl_evaluate summary" in capsys.readouterr().err
    assert not (tmp_path / "r_bad").exists()
    clash = {**settings, "methods": {**settings["methods"], "st_teacher": {"trainer": "nnUNetTrainer"}}}
    with pytest.raises(SystemExit, match="teacher is reported"):
        check_methods_distinct(clash)


@pytest.mark.parametrize("jobs,device,cores,warns", [
    (2, "cpu", 2, True), (3, "cpu", 4, True), (2, "cpu", 4, False), (1, "cpu", 1, False),
    (2, "cuda", 2, False), (2, "cpu", None, False)])
def test_jobs_warning_only_when_cpu_jobs_share_too_few_cores(jobs, device, cores, warns):
    warning = jobs_warning(jobs, device, cores)
    assert (warning is not None) == warns
    if warns:
        assert f"--jobs {jobs}" in warning and f"{cores} CPU core" in warning


def test_every_settings_and_archive_trainer_is_an_nnssl_trainer():
    """The shipped settings and the archive's records name trainers that exist, so a rerun of an archived
    method trains the schedule it had (the archive was relabelled when trainers were renamed)."""
    import nnssl_trainers
    files = sorted((REPO / "benchmarks" / "settings").glob("*.json")) + \
        sorted((REPO / "docs" / "results").glob("*/settings.json"))
    assert len(files) >= 10
    for f in files:
        for method, spec in json.loads(f.read_text()).get("methods", {}).items():
            assert spec["trainer"] in nnssl_trainers.__all__, f"{f}: {method} -> {spec['trainer']}"

"""Each benchmark run's resolved hyperparameters are archived with it and checked against its method on reuse."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench_fixtures import REPO, TINY_SETTINGS, _summary
from accuracy_hparams import check_run_hparams, expected_hparams, hparams_differences, record_path  # noqa: E402
from accuracy_settings import check_same_settings, load_settings  # noqa: E402

METHOD_B = {"trainer": "nnSSLFixedDynamicTrainer"}


def _settings(spec: dict) -> dict:
    return {**TINY_SETTINGS, "methods": {**TINY_SETTINGS["methods"], "fixed_dynamic": spec}}


def test_differences_name_each_changed_shared_value_and_skip_harness_paths():
    recorded = {"weight_fix": 1.0, "alpha": 0.5, "qg_predictor": "/machine/a.pth", "removed_since": 3}
    expected = {"weight_fix": 0.5, "alpha": 0.5, "qg_predictor": None, "added_since": True}
    assert hparams_differences(recorded, expected) == ["weight_fix: 1.0 -> 0.5"]
    assert hparams_differences(expected, expected) == []


def test_expected_hparams_are_the_trainer_defaults_under_budget_and_method_hparams():
    """As the harness's plans copy: the settings' budget over the trainer's defaults, the method's hparams over
    both; None where no single nnssl training is archived (self-training, nnU-Net's own trainer)."""
    settings = _settings({**METHOD_B, "hparams": {"weight_fix": 1.0}})
    hp = expected_hparams(settings, "fixed_dynamic")
    assert hp["num_epochs"] == 2 and hp["num_iterations_per_epoch"] == 2  # TINY_SETTINGS' budget
    assert hp["weight_fix"] == 1.0 and hp["weight_dyn"] == 0.5  # the method's value, the trainer's default
    st = {**TINY_SETTINGS["methods"], "st": {"trainer": "nnSSLSupervisedTrainer", "self_train": {"rounds": 1}},
          "nnunet": {"trainer": "nnUNetTrainer"}}
    assert expected_hparams({**TINY_SETTINGS, "methods": st}, "st") is None
    assert expected_hparams({**TINY_SETTINGS, "methods": st}, "nnunet") is None


def _trained_record(settings: dict, method: str, **changed) -> dict:
    hp = {**expected_hparams(settings, method), **changed}
    return {"trainer": settings["methods"][method]["trainer"], "hparams": hp, "batch_size": 2}


def test_a_record_from_another_trainer_or_a_broken_record_is_refused(tmp_path):
    settings = _settings(METHOD_B)
    record = tmp_path / "fixed_dynamic_r0.hparams.json"
    record.write_text(json.dumps({**_trained_record(settings, "fixed_dynamic"), "trainer": "nnSSLCPSTrainer"}))
    with pytest.raises(SystemExit, match="was trained by nnSSLCPSTrainer"):
        check_run_hparams(settings, "fixed_dynamic", 0, record)
    record.write_text("{}")
    with pytest.raises(SystemExit, match="not an nnssl hyperparameter record"):
        check_run_hparams(settings, "fixed_dynamic", 0, record)
    record.write_text(json.dumps(_trained_record(settings, "fixed_dynamic")))
    check_run_hparams(settings, "fixed_dynamic", 0, record)  # agrees: passes


def test_a_run_trained_under_an_old_default_is_archived_with_its_record_and_refused(tmp_path, capsys):
    """The harness archives the trainer's nnssl_hparams.json beside the run's summary; a report of a method that
    now resolves otherwise (a default changed since the run) stops and names the keys; stating the run's
    values in the method's hparams (settings and records) makes the same run reportable."""
    from bench_accuracy import Harness, main
    old = _settings(METHOD_B)
    work, archive = tmp_path / "work", tmp_path / "results"
    h = Harness(old, work, tmp_path, "cpu", log=lambda *a, **k: None, archive=archive)
    summary = h.summary_path("fixed_dynamic", 0)
    summary.parent.mkdir(parents=True)
    summary.write_text(json.dumps(_summary({"a": {1: 0.5}, "b": {1: 0.7}})))
    trained = h.trained_record("fixed_dynamic", 0)
    assert trained.parent.name == "fold_all" and "nnSSLFixedDynamicTrainer__nnSSLPlans_hippo_tiny_r0__" in str(trained)
    trained.parent.mkdir(parents=True)
    trained.write_text(json.dumps(_trained_record(old, "fixed_dynamic", weight_fix=1.0, weight_dyn=1.0)))
    check_same_settings(old, work / "settings.json")
    settings = tmp_path / "tiny.json"
    settings.write_text(json.dumps(old))
    args = ["--settings", str(settings), "--workdir", str(work), "--archive", str(archive), "--report_only",
            "--methods", "fixed_dynamic", "--out", str(tmp_path / "r")]
    with pytest.raises(SystemExit) as refused:
        main(args)
    assert "fixed_dynamic run 0 was trained with other hyperparameters" in str(refused.value)
    assert "weight_dyn: 1.0 -> 0.5; weight_fix: 1.0 -> 0.5" in str(refused.value)
    assert not (tmp_path / "r").exists()
    calls = []
    bare = Harness(old, work, tmp_path, "cpu", log=lambda *a, **k: None)  # no archive, no summary yet:
    bare.run = lambda name, *cmd, env=None: calls.append(cmd)
    summary.rename(summary.with_name("moved.json"))  # the training would be reused for prediction
    with pytest.raises(SystemExit, match="weight_fix: 1.0 -> 0.5"):
        bare.run_method("fixed_dynamic", 0)
    assert calls == []  # refused before predicting with (or resuming) the other setup's training
    summary.with_name("moved.json").rename(summary)
    stored = archive / "hippo_tiny" / "fixed_dynamic_r0.json"
    assert record_path(stored).read_bytes() == trained.read_bytes()  # what ran is archived all the same
    # the run's values made explicit, in the settings and both records (as after a default change)
    stated = _settings({**METHOD_B, "hparams": {"weight_fix": 1.0, "weight_dyn": 1.0}})
    settings.write_text(json.dumps(stated))
    for rec in (work / "settings.json", archive / "hippo_tiny" / "settings.json"):
        rec.write_text(json.dumps(stated))
    trained.unlink()  # the work folder's training is gone: the archived record is checked
    assert main(args) == 0
    capsys.readouterr()
    stored_hp = json.loads(record_path(stored).read_text())["hparams"]
    stored_hp["weight_fix"] = 0.25  # a record edited by hand no longer agrees
    record_path(stored).write_text(json.dumps({"trainer": "nnSSLFixedDynamicTrainer", "hparams": stored_hp}))
    with pytest.raises(SystemExit, match="weight_fix: 0.25 -> 1.0"):
        main(args)


def test_archived_hparams_records_agree_with_the_shipped_settings():
    """Every archived run's hyperparameter record agrees with what its shipped method resolves now: a changed
    trainer default fails here until the archived methods state the old value (or are renamed)."""
    by_name = {s["name"]: s for s in map(load_settings, sorted((REPO / "benchmarks" / "settings").glob("*.json")))}
    records = sorted((REPO / "docs" / "results").glob("*/*_r*.hparams.json"))
    assert records, "no archived hyperparameter record"
    for record in records:
        method, rep = record.name[:-len(".hparams.json")].rsplit("_r", 1)
        settings = by_name[record.parent.name]
        assert (record.parent / f"{method}_r{rep}.json").is_file(), f"{record}: no summary beside it"
        check_run_hparams(settings, method, int(rep), record)


def test_records_lie_beside_their_summary():
    assert record_path(Path("/a/results/cps_r1.json")) == Path("/a/results/cps_r1.hparams.json")

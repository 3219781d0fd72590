import json

import pytest

from nnssl.hparams import collect_choices, collect_defaults, resolve_hparams


class Base:
    hparam_defaults = {"num_epochs": 1000, "lr": 0.01, "deploy": "ensemble", "flag": False, "shift": [1, 2]}


class Child(Base):
    hparam_defaults = {"weight": 0.5, "deploy": "student"}


def test_defaults_merge_along_mro():
    d = collect_defaults(Child)
    assert d == {"num_epochs": 1000, "lr": 0.01, "deploy": "student", "flag": False, "shift": [1, 2], "weight": 0.5}


class Mixin:
    hparam_defaults = {"mode": "a"}
    hparam_choices = {"mode": ("a", "b")}


class Mixed(Mixin, Child):
    hparam_choices = {"deploy": ("student", "teacher")}


def test_mixin_defaults_and_choices_merge_along_mro():
    """A mixin's keys and allowed values reach every class that inherits it, beside the class's own."""
    assert collect_defaults(Mixed)["mode"] == "a"
    assert collect_choices(Mixed) == {"mode": ("a", "b"), "deploy": ("student", "teacher")}
    assert resolve_hparams(Mixed, {"nnssl_hparams": {"mode": "b"}}, {})["mode"] == "b"
    with pytest.raises(ValueError, match=r"Mixed: hyperparameter mode must be one of \['a', 'b'\], got 'c'"):
        resolve_hparams(Mixed, None, {"nnssl_hparams": '{"mode": "c"}'})
    with pytest.raises(ValueError, match="hyperparameter deploy must be one of"):
        resolve_hparams(Mixed, None, {"nnssl_hparams": '{"deploy": "ensemble"}'})


def test_plans_then_env_override_with_class_sections(tmp_path):
    plans = {"nnssl_hparams": {"num_epochs": 5, "Child": {"weight": 0.7}, "Other": {"whatever": 1}}}
    env = {"nnssl_hparams": json.dumps({"lr": 1, "Base": {"num_epochs": 7}, "Child": {"flag": True}})}
    h = resolve_hparams(Child, plans, env)
    assert h["num_epochs"] == 7 and h["weight"] == 0.7 and h["flag"] is True
    assert h["lr"] == 1.0 and isinstance(h["lr"], float)
    f = tmp_path / "h.json"
    f.write_text(json.dumps({"shift": [3, 4]}))
    assert resolve_hparams(Child, None, {"nnssl_hparams": str(f)})["shift"] == [3, 4]


@pytest.mark.parametrize("env, message", [
    ({"nnssl_hparams": '{"wieght": 1}'}, "unknown hyperparameter 'wieght'"),
    ({"nnssl_hparams": '{"Child": {"nope": 1}}'}, "unknown hyperparameter 'nope' in section 'Child'"),
    ({"nnssl_hparams": '{"num_epochs": 2.5}'}, "must be an integer"),
    ({"nnssl_hparams": '{"flag": 1}'}, "must be true/false"),
    ({"nnssl_hparams": '{"weight": "x"}'}, "must be a number"),
    ({"nnssl_hparams": '{"num_epochs": 1'}, "invalid JSON"),
    ({"nnssl_hparams": "/does/not/exist.json"}, "neither a JSON object nor an existing JSON file"),
])
def test_bad_overrides_give_clear_errors(env, message):
    with pytest.raises(ValueError, match=message):
        resolve_hparams(Child, None, env)


SCHEDULE_KEYS = ("ramp_start", "collapse_guard")


@pytest.mark.parametrize("suffix, schedule, count", [
    ("_PaperRamp", ("first_step", "off"), 8),
    ("_NoGuard", ("foreground", "off"), 5),
    ("_NoGate", ("first_step", "restart"), 2),
])
def test_schedule_variants_differ_from_their_parent_only_in_the_schedule(suffix, schedule, count):
    """Each ramp-schedule variant is its parent with (ramp_start, collapse_guard) = ``schedule``; nothing else
    changes, whatever its parent's default schedule."""
    import nnssl_trainers
    variants = [getattr(nnssl_trainers, n) for n in nnssl_trainers.__all__ if n.endswith(suffix)]
    assert len(variants) == count
    for cls in variants:
        assert cls.__module__ == "nnssl_trainers.schedule_variants"
        parent = cls.__mro__[1]
        child, base = resolve_hparams(cls, environ={}), resolve_hparams(parent, environ={})
        assert tuple(child[k] for k in SCHEDULE_KEYS) == schedule, cls.__name__
        assert {k: v for k, v in child.items() if k not in SCHEDULE_KEYS} == \
               {k: v for k, v in base.items() if k not in SCHEDULE_KEYS}, cls.__name__


@pytest.mark.parametrize("suffix, key, base_value, value", [
    ("_NoCR", "use_cr", True, False), ("_NoCCE", "use_cce", True, False), ("_NoUE", "use_ue", True, False),
    ("_NoPGL", "use_pgl", True, False)])
def test_component_ablations_change_one_hyperparameter_of_method_a(suffix, key, base_value, value):
    """Each ablation class is nnSSLDualTrainer (gate + guard) with exactly one hyperparameter changed."""
    import nnssl_trainers
    cls = getattr(nnssl_trainers, "nnSSLDualTrainer" + suffix)
    assert cls.__mro__[1] is nnssl_trainers.nnSSLDualTrainer
    child, base = resolve_hparams(cls, environ={}), resolve_hparams(nnssl_trainers.nnSSLDualTrainer, environ={})
    assert (base[key], child[key]) == (base_value, value)
    assert type(base[key]) is type(base_value) and type(child[key]) is type(value)  # True, not 1
    assert {k: v for k, v in child.items() if k != key} == {k: v for k, v in base.items() if k != key}


def test_methods_a_and_b_default_to_gate_and_guard_and_quality_guidance_brings_the_guard():
    """The shipped defaults: methods A and B (and their variants by pseudo-label reliability, pair and quality
    guidance) start ramp(t) at the foreground gate and restart it after a collapse; Mean Teacher and CPS keep
    the papers' schedule, and their _QG variants add the guard to it. An explicit override still wins."""
    import nnssl_trainers as t
    expected = {cls: ("foreground", "restart") for cls in (
        t.nnSSLDualTrainer, t.nnSSLDualTrainerPerClass, t.nnSSLDualTrainer_QG, t.nnSSLFixedDynamicTrainer,
        t.nnSSLFixedDynamicTrainerHetero, t.nnSSLFixedDynamicTrainer_QG)}
    expected.update({cls: ("first_step", "off") for cls in (t.nnSSLMeanTeacherTrainer, t.nnSSLCPSTrainer)})
    expected.update({cls: ("first_step", "restart") for cls in (t.nnSSLMeanTeacherTrainer_QG, t.nnSSLCPSTrainer_QG)})
    for cls, schedule in expected.items():
        hp = resolve_hparams(cls, environ={})
        assert tuple(hp[k] for k in SCHEDULE_KEYS) == schedule, cls.__name__
    hp = resolve_hparams(t.nnSSLDualTrainer, environ={"nnssl_hparams": '{"ramp_start": "first_step"}'})
    assert (hp["ramp_start"], hp["collapse_guard"]) == ("first_step", "restart")
    hp = resolve_hparams(t.nnSSLCPSTrainer_QG, environ={"nnssl_hparams": '{"collapse_guard": "off"}'})
    assert (hp["ramp_start"], hp["collapse_guard"]) == ("first_step", "off")


def test_former_trainer_names_are_found_by_nnunets_lookup_with_the_same_schedule(monkeypatch):
    """A checkpoint stores its trainer's name and nnUNetv2_predict looks it up: the names of earlier versions
    resolve, through nnU-Net's own lookup, to the class that has that trainer's schedule today."""
    from nnunetv2.utilities.find_objects import recursive_find_trainer_class_by_name

    import nnssl_trainers
    from nnssl.cli.discovery import ext_trainer_folder
    monkeypatch.setenv("nnUNet_extTrainer", ext_trainer_folder())
    schedules = {"nnSSLDualTrainer_FgRamp": ("foreground", "off"), "nnSSLDualTrainer_Guard": ("first_step", "restart"),
                 "nnSSLFixedDynamicTrainer_QG_FgRamp_Guard": ("foreground", "restart"),
                 "nnSSLMeanTeacherTrainer_QG_Guard": ("first_step", "restart"),
                 "nnSSLDualTrainer_LabelCR": ("foreground", "restart")}
    for former, schedule in schedules.items():
        assert not hasattr(nnssl_trainers, former)
        cls = recursive_find_trainer_class_by_name(former)
        hp = resolve_hparams(cls, environ={})
        assert tuple(hp[k] for k in SCHEDULE_KEYS) == schedule, former
    assert recursive_find_trainer_class_by_name("nnSSLDualTrainer") is nnssl_trainers.nnSSLDualTrainer
    assert recursive_find_trainer_class_by_name("nnSSLDualTrainer_LabelCR") is nnssl_trainers.nnSSLDualTrainer


def test_labeled_only_control_is_method_a_without_its_unlabeled_terms():
    """nnSSLDualTrainer_LabeledOnly = nnSSLDualTrainer with use_cce, use_ue, use_pgl off, nothing else; method A's
    L_cr pulls towards the label by default (cr_target='label'), the paper's peer target is one hparam away."""
    import nnssl_trainers
    off = {"use_cce": False, "use_ue": False, "use_pgl": False}
    control = resolve_hparams(nnssl_trainers.nnSSLDualTrainer_LabeledOnly, environ={})
    method_a = resolve_hparams(nnssl_trainers.nnSSLDualTrainer, environ={})
    assert {k: control[k] for k in off} == off and all(method_a[k] is True for k in off)
    assert control["cr_target"] == method_a["cr_target"] == "label" and control["use_cr"] is True
    assert {k: v for k, v in control.items() if k not in off} == {k: v for k, v in method_a.items() if k not in off}
    peer = resolve_hparams(nnssl_trainers.nnSSLDualTrainer, plans={"nnssl_hparams": {"cr_target": "peer"}},
                           environ={})
    assert peer == {**method_a, "cr_target": "peer"}


def test_method_b_halves_the_papers_pseudo_label_weights():
    """Every method-B trainer (pair, quality guidance, schedule variants) weighs its fixed and dynamic
    pseudo-label terms 0.5, not the paper's 1.0 (which under-segmented on LA, docs/benchmarks.md), and its
    supervised term 1.0 as the paper; the paper's weights are one plans hparam away."""
    import nnssl_trainers
    exported = (getattr(nnssl_trainers, n) for n in nnssl_trainers.__all__)
    classes = [c for c in exported if isinstance(c, type) and issubclass(c, nnssl_trainers.nnSSLFixedDynamicTrainer)]
    assert len(classes) >= 9
    for cls in classes:
        hp = resolve_hparams(cls, environ={})
        assert (hp["weight_sup"], hp["weight_fix"], hp["weight_dyn"]) == (1.0, 0.5, 0.5), cls.__name__
    method_b = resolve_hparams(nnssl_trainers.nnSSLFixedDynamicTrainer, environ={})
    paper_weights = {"weight_fix": 1.0, "weight_dyn": 1.0}
    paper = resolve_hparams(nnssl_trainers.nnSSLFixedDynamicTrainer, plans={"nnssl_hparams": paper_weights},
                            environ={})
    assert paper == {**method_b, **paper_weights}

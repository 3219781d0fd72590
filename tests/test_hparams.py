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


@pytest.mark.parametrize("suffix, module, key, value, parent_value, count", [
    ("_FgRamp", "nnssl_trainers.fg_ramp", "ramp_start", "foreground", "first_step", 5),
    ("_Guard", "nnssl_trainers.collapse_guard", "collapse_guard", "restart", "off", 6),
])
def test_hyperparameter_variants_differ_from_their_parent_only_in_their_key(suffix, module, key, value,
                                                                            parent_value, count):
    """Each _FgRamp trainer is its parent with ramp_start='foreground', each _Guard trainer its parent with
    collapse_guard='restart'; nothing else changes."""
    import nnssl_trainers
    variants = [getattr(nnssl_trainers, n) for n in nnssl_trainers.__all__ if n.endswith(suffix)]
    assert len(variants) == count
    for cls in variants:
        assert cls.__module__ == module
        parent = cls.__mro__[1]
        child, base = resolve_hparams(cls, environ={}), resolve_hparams(parent, environ={})
        assert child[key] == value and base[key] == parent_value
        assert {k: v for k, v in child.items() if k != key} == \
               {k: v for k, v in base.items() if k != key}, cls.__name__

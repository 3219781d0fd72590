import json

import pytest

from nnssl.hparams import collect_defaults, resolve_hparams


class Base:
    hparam_defaults = {"num_epochs": 1000, "lr": 0.01, "deploy": "ensemble", "flag": False, "shift": [1, 2]}


class Child(Base):
    hparam_defaults = {"weight": 0.5, "deploy": "student"}


def test_defaults_merge_along_mro():
    d = collect_defaults(Child)
    assert d == {"num_epochs": 1000, "lr": 0.01, "deploy": "student", "flag": False, "shift": [1, 2], "weight": 0.5}


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

"""Trainer hyperparameters: documented defaults, overridable without code, saved with the run.

Resolution order (later wins):
1. ``hparam_defaults`` of the trainer class and its bases (merged along the MRO);
2. ``plans["nnssl_hparams"]`` in the plans file the run uses (see ``nnssl_derive_plans --hparams``);
3. the environment variable ``nnssl_hparams``: a JSON object or the path of a JSON file.

In 2. and 3. top-level keys apply to every trainer; a nested object named after a trainer class
(or one of its bases) applies only to that trainer, e.g.
``{"num_epochs": 50, "nnSSLMeanTeacherTrainer": {"ema_decay": 0.999}}``. Unknown keys are errors, and so
is a value outside the ``hparam_choices`` of the class and its bases.
"""
from __future__ import annotations

import json
import os
from typing import Any, Dict, Iterable, Mapping

ENV_VAR = "nnssl_hparams"


def _merge_along_mro(cls: type, attribute: str) -> Dict[str, Any]:
    merged: Dict[str, Any] = {}
    for klass in reversed(cls.__mro__):
        merged.update(getattr(klass, "__dict__", {}).get(attribute, {}))
    return merged


def collect_defaults(cls: type) -> Dict[str, Any]:
    """Merge the ``hparam_defaults`` dicts of ``cls`` and its bases, mixins included (subclasses override)."""
    return _merge_along_mro(cls, "hparam_defaults")


def collect_choices(cls: type) -> Dict[str, tuple]:
    """Merge the ``hparam_choices`` dicts (name -> allowed values) of ``cls`` and its bases, mixins included."""
    return _merge_along_mro(cls, "hparam_choices")


def check_choices(cls: type, hparams: Mapping[str, Any]) -> None:
    """Raise ValueError for a hyperparameter outside its allowed values (``collect_choices(cls)``)."""
    for name, allowed in collect_choices(cls).items():
        if hparams[name] not in allowed:
            raise ValueError(f"{cls.__name__}: hyperparameter {name} must be one of {list(allowed)}, "
                             f"got {hparams[name]!r}")


def load_env_overrides(environ: Mapping[str, str] = os.environ) -> Dict[str, Any]:
    """Parse ``$nnssl_hparams`` (JSON text or a JSON file path); empty/unset gives {}."""
    raw = environ.get(ENV_VAR, "").strip()
    if not raw:
        return {}
    if raw.startswith("{"):
        source, text = f"${ENV_VAR}", raw
    else:
        if not os.path.isfile(raw):
            raise ValueError(f"${ENV_VAR}={raw!r} is neither a JSON object nor an existing JSON file")
        source = raw
        with open(raw, encoding="utf-8") as f:
            text = f.read()
    try:
        value = json.loads(text)
    except json.JSONDecodeError as e:
        raise ValueError(f"{source}: invalid JSON ({e})") from None
    if not isinstance(value, dict):
        raise ValueError(f"{source}: expected a JSON object of hyperparameters, got {type(value).__name__}")
    return value


def _cast(name: str, value: Any, default: Any, source: str) -> Any:
    if default is None or value is None:
        return value
    kind = type(default)
    if kind is bool:
        if isinstance(value, bool):
            return value
        raise ValueError(f"{source}: hyperparameter '{name}' must be true/false, got {value!r}")
    if kind in (int, float):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ValueError(f"{source}: hyperparameter '{name}' must be a number, got {value!r}")
        if kind is int and float(value) != int(value):
            raise ValueError(f"{source}: hyperparameter '{name}' must be an integer, got {value!r}")
        return kind(value)
    if kind in (list, tuple):
        if not isinstance(value, (list, tuple)):
            raise ValueError(f"{source}: hyperparameter '{name}' must be a list, got {value!r}")
        return list(value)
    if not isinstance(value, kind):
        raise ValueError(f"{source}: hyperparameter '{name}' must be {kind.__name__}, got {value!r}")
    return value


def _apply(resolved: Dict[str, Any], overrides: Mapping[str, Any], class_names: Iterable[str],
           defaults: Mapping[str, Any], source: str) -> None:
    names = list(class_names)
    # generic keys first, then class sections from the most generic base to the class itself
    for key, value in overrides.items():
        if isinstance(value, dict) and key not in defaults:
            continue  # a section for some trainer class
        if key not in defaults:
            raise ValueError(f"{source}: unknown hyperparameter '{key}' for {names[0]}; "
                             f"known: {', '.join(sorted(defaults))}")
        resolved[key] = _cast(key, value, defaults[key], source)
    for cname in reversed(names):
        section = overrides.get(cname)
        if not isinstance(section, dict):
            continue
        for key, value in section.items():
            if key not in defaults:
                raise ValueError(f"{source}: unknown hyperparameter '{key}' in section '{cname}'; "
                                 f"known: {', '.join(sorted(defaults))}")
            resolved[key] = _cast(key, value, defaults[key], f"{source}[{cname}]")


def resolve_hparams(cls: type, plans: Mapping[str, Any] | None = None,
                    environ: Mapping[str, str] = os.environ) -> Dict[str, Any]:
    """Return the hyperparameters of trainer class ``cls`` after plans and env overrides."""
    defaults = collect_defaults(cls)
    resolved = dict(defaults)
    class_names = [k.__name__ for k in cls.__mro__]
    if plans is not None and plans.get("nnssl_hparams"):
        _apply(resolved, plans["nnssl_hparams"], class_names, defaults, "plans['nnssl_hparams']")
    _apply(resolved, load_env_overrides(environ), class_names, defaults, f"${ENV_VAR}")
    check_choices(cls, resolved)
    return resolved

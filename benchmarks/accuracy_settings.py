"""Settings and work-folder checks of the accuracy harness (benchmarks/bench_accuracy.py).

Each refuses, with an error naming the folder or methods, what would mix runs of different
settings or overwrite a finished run; ``jobs_warning`` flags a --jobs value slower than one job.
"""
from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path
from typing import Any, Dict, List, Optional

#: settings keys that may change between runs in one work folder (methods are added, runs repeated)
VOLATILE_KEYS = ("methods", "repetitions", "_doc")
#: a self-training method's round-0 model (its teacher) is reported as a method of this name suffix
TEACHER_SUFFIX = "_teacher"
#: a method name or plans suffix: it becomes part of file names and of nnU-Net's plans and results folder names
NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]*")


def load_settings(path: Path, _seen: tuple = ()) -> Dict[str, Any]:
    """A settings file, resolved: with ``"extends": "<file>"`` (relative to its folder) it is that file's settings
    with its own keys merged over them (``merge_settings``), so a variant states only what differs."""
    path = Path(path).resolve()
    if path in _seen:
        raise SystemExit(f"error: settings {path} extends itself (through {' -> '.join(p.name for p in _seen)})")
    try:
        settings = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as e:
        raise SystemExit(f"error: settings {path}: {e}") from None
    base = settings.pop("extends", None)
    return merge_settings(load_settings(path.parent / base, _seen + (path,)), settings) if base else settings


def merge_settings(base: Dict[str, Any], override: Dict[str, Any]) -> Dict[str, Any]:
    """``override`` over ``base``: nested dicts merged key by key, other values replaced; a method's spec is
    replaced whole (methods are added or redefined, never merged)."""
    out = dict(base)
    for key, value in override.items():
        if key == "methods":
            out[key] = {**base.get(key, {}), **value}
        elif isinstance(value, dict) and isinstance(base.get(key), dict):
            out[key] = merge_settings(base[key], value)
        else:
            out[key] = value
    return out


def archive_summary(src: Path, dest: Path) -> None:
    """Copy a finished run's summary to the archive; an archived file is never replaced by another run's."""
    if dest.is_file():
        if dest.read_bytes() != src.read_bytes():
            raise SystemExit(f"error: {dest} holds another run than {src} under the same method and repetition; "
                             "move one of them away (or use --repetitions to add runs) instead of mixing them")
        return
    dest.parent.mkdir(parents=True, exist_ok=True)
    partial = dest.with_name(dest.name + ".partial")
    shutil.copyfile(src, partial)
    os.replace(partial, dest)


def method_dataset(spec: Dict[str, Any]) -> str:
    """Which prepared dataset a method trains on: 'ssl' (labeled subset + unlabeled) unless it names another."""
    return spec.get("dataset", "ssl")


def teacher_method(method: str) -> str:
    """The name under which a self-training method's teacher (its round-0 model) is evaluated and reported."""
    return method + TEACHER_SUFFIX


def self_training_methods(settings: Dict[str, Any]) -> List[str]:
    """The settings' self-training methods (their specs have ``self_train``), in settings order."""
    return [m for m, spec in settings["methods"].items() if "self_train" in spec]


def method_trainer(settings: Dict[str, Any], method: str) -> str:
    """The trainer of a settings method, or of the self-training method whose teacher ``method`` names."""
    if method in settings["methods"]:
        return settings["methods"][method]["trainer"]
    for m in self_training_methods(settings):
        if teacher_method(m) == method:
            return settings["methods"][m]["trainer"]
    raise KeyError(f"{method!r} is neither a method of the settings nor a self-training method's teacher")


def method_plans_suffix(method: str, spec: Dict[str, Any]) -> Optional[str]:
    """The suffix of the plans copy a method trains with (plans ``<run plans>_<suffix>``), None for the run's own
    plans: a self-training method's ``self_train.plans_suffix``; for any other method with ``hparams`` its own
    name, as the harness writes those hyperparameters into that copy's ``nnssl_hparams`` (so the run has its own
    results folder, and its plans.json there records them)."""
    if "self_train" in spec:
        return spec["self_train"].get("plans_suffix")
    return method if spec.get("hparams") else None


def check_methods_distinct(settings: Dict[str, Any]) -> None:
    """Refuse two methods that would train into one nnU-Net results folder (same trainer and plans on the same
    dataset): the second would reuse the first's checkpoint. A method with ``hparams`` trains with a plans
    copy of its own (``method_plans_suffix``), so a hyperparameter variant needs no trainer subclass. Also refuse
    a method name or plans suffix unfit for a file name or with ``__``, which nnU-Net reads as the separator of
    the results folder ``TRAINER__PLANS__CONFIGURATION``."""
    seen: Dict[tuple, str] = {}
    for m, spec in settings["methods"].items():
        suffix = method_plans_suffix(m, spec)
        for what, name in (("method name", m), ("plans suffix", suffix)):
            if name is not None and (not NAME_PATTERN.fullmatch(name) or "__" in name):
                raise SystemExit(f"error: {what} {name!r} (method {m!r}): use letters, digits, '_' and '-', starting "
                                 "with a letter or digit, and no '__' (nnU-Net splits its folder names at '__')")
        key = (spec["trainer"], method_dataset(spec), "self_train" in spec, suffix)
        if key in seen:
            raise SystemExit(f"error: methods {seen[key]!r} and {m!r} both train {spec['trainer']} on the "
                             f"{key[1]} dataset with the same plans and would share one results folder; give "
                             "one of them hparams (or a self_train plans_suffix)")
        seen[key] = m
    clash = [teacher_method(m) for m in self_training_methods(settings) if teacher_method(m) in settings["methods"]]
    if clash:
        raise SystemExit(f"error: method(s) {clash} share the name under which a self-training method's teacher is "
                         "reported; rename them")


def method_hparams(settings: Dict[str, Any], method: str) -> Dict[str, Any]:
    """The ``hparams`` a settings method sets over its trainer's defaults ({} for a self-training teacher)."""
    return dict(settings["methods"].get(method, {}).get("hparams", {}))


def check_same_settings(settings: Dict[str, Any], record: Path) -> None:
    """Refuse to reuse a work folder whose finished steps were made with other settings (data, plans,
    budget); the first run records them in ``record``. Methods already run must keep their definition.
    The record keeps every method ever run and the largest number of repetitions asked for, so a later
    invocation with fewer runs (or a report of fewer) does not rewrite an archive's history."""
    fixed = {k: v for k, v in settings.items() if k not in VOLATILE_KEYS}
    if record.is_file():
        old = json.loads(record.read_text())
        old_fixed = {k: v for k, v in old.items() if k not in VOLATILE_KEYS}
        changed = sorted(k for k in set(fixed) | set(old_fixed) if fixed.get(k) != old_fixed.get(k))
        changed += sorted(f"methods.{m}" for m, spec in settings["methods"].items()
                          if m in old.get("methods", {}) and old["methods"][m] != spec)
        if changed:
            raise SystemExit(f"error: {record.parent} was made with other settings ({', '.join(changed)} differ; "
                             f"see {record}); use a new --workdir")
        settings = {**old, **settings, "methods": {**old.get("methods", {}), **settings["methods"]},
                    "repetitions": max(old.get("repetitions", 1), settings.get("repetitions", 1))}
    record.write_text(json.dumps(settings, indent=2))


def jobs_warning(jobs: int, device: str, cores: Optional[int]) -> Optional[str]:
    """A warning when ``jobs`` CPU trainings would share too few cores (fewer than 2 per job), else None.

    Measured on 2 cores (docs/benchmarks.md): with --jobs 2 each epoch took 3-4x as long as alone,
    so running two methods at once finished later than running them one after the other.
    """
    if jobs <= 1 or device != "cpu" or cores is None or cores >= 2 * jobs:
        return None
    return (f"warning: --jobs {jobs} on {cores} CPU core(s): the trainings share the cores and each runs "
            f"several times slower (on 2 cores --jobs 2 took 3-4x as long per epoch as --jobs 1), "
            f"so --jobs 1 usually finishes sooner")

"""The hyperparameters each run's trainer resolved, archived beside its summary and checked on every reuse.

A settings method names a trainer and only the ``hparams`` it sets over the trainer's defaults, so what an
archived method *means* moves when a default changes: its archived runs were trained with the old value, a
rerun or a report would present them under the new one. Each nnssl trainer writes what it resolved to
``nnssl_hparams.json`` in its results folder (``{"trainer": ..., "hparams": {...}, ...}``); the harness archives
that file as ``<method>_r<rep>.hparams.json`` next to the run's summary, and refuses to count a finished run
whose record disagrees with what its method resolves now (:func:`check_run_hparams`), naming the keys.

Compared are the trainer and the hyperparameters both sides know; ``HARNESS_SET`` ones (a path on the machine
that trained) are not. A hyperparameter added to a trainer after a run is not in its record and so not compared.
Runs archived before records existed, and self-training runs (several trainings), have none and are not checked.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Dict, List, Optional

from accuracy_settings import method_trainer

#: hyperparameters the harness sets per machine (through the environment), not through the settings
HARNESS_SET = ("qg_predictor",)
#: the file an nnssl trainer writes into its results folder's fold folder (nnssl_trainers/base.py)
TRAINER_RECORD = "nnssl_hparams.json"


def record_path(summary: Path) -> Path:
    """Where a run's hyperparameter record lies beside its archived summary ``<method>_r<rep>.json``."""
    return summary.with_name(summary.stem + ".hparams.json")


def expected_hparams(settings: Dict[str, Any], method: str) -> Optional[Dict[str, Any]]:
    """What the method's trainer resolves now from the settings' budget and the method's own ``hparams`` (as
    the plans copy the harness writes for it); None for a self-training method or a trainer without nnssl
    hyperparameters (nnU-Net's own)."""
    import nnssl_trainers
    from nnssl.hparams import collect_defaults, resolve_hparams
    spec = settings["methods"].get(method)
    if spec is None or "self_train" in spec:
        return None
    cls = getattr(nnssl_trainers, method_trainer(settings, method), None)  # as nnssl_self_train looks it up
    if not isinstance(cls, type) or not collect_defaults(cls):
        return None
    overrides = {**settings.get("hparams", {}), **spec.get("hparams", {})}
    return resolve_hparams(cls, {"nnssl_hparams": overrides}, environ={})


def hparams_differences(recorded: Dict[str, Any], expected: Dict[str, Any]) -> List[str]:
    """``name: recorded -> expected`` for each hyperparameter both know whose values differ (``HARNESS_SET`` left
    out), sorted by name."""
    shared = sorted((set(recorded) & set(expected)) - set(HARNESS_SET))
    return [f"{k}: {recorded[k]!r} -> {expected[k]!r}" for k in shared if recorded[k] != expected[k]]


def check_run_hparams(settings: Dict[str, Any], method: str, rep: int, record: Path) -> None:
    """Refuse (SystemExit) a finished run whose record ``record`` names another trainer or other hyperparameter
    values than the method resolves now; a run without a record passes."""
    if not record.is_file():
        return
    try:
        stored = json.loads(record.read_text(encoding="utf-8"))
        trainer, recorded = stored["trainer"], stored["hparams"]
    except (OSError, json.JSONDecodeError, KeyError, TypeError) as e:
        raise SystemExit(f"error: {record}: not an nnssl hyperparameter record ({e!r})") from None
    if trainer != method_trainer(settings, method):
        raise SystemExit(f"error: {method} run {rep} was trained by {trainer} ({record}), but the settings' method "
                         f"names {method_trainer(settings, method)}")
    expected = expected_hparams(settings, method)
    differences = hparams_differences(recorded, expected or {})
    if differences:
        raise SystemExit(
            f"error: {method} run {rep} was trained with other hyperparameters than the method resolves now "
            f"({'; '.join(differences)}; record {record}): a trainer default changed since. Give the method the "
            "run's values as explicit hparams (in the settings and the archive's settings.json), or define the "
            "new setup as a new method")

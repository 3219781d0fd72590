"""The resumable state of a self-training run: one JSON file with the settings and the completed steps.

``state.json`` (in the run folder, see ``nnssl.self_training``)::

    {"version": 1, "settings": {...fixed settings...}, "derived_ids": {"1": 581, ...},
     "rounds": {"0": {"completed": ["train"], "model": {...}}, "1": {"completed": [...], ...}},
     "final": {...model of the last completed round...}}

Steps are done in the order of :func:`round_steps`; a step is recorded only after it finished, so an
interrupted run redoes at most the step it was in (a training step is continued with ``--c``).
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

STATE_FILE = "state.json"
VERSION = 1
#: settings that define a run; changing one of them on resume is an error (start a new run instead)
FIXED_SETTINGS = ("dataset", "configuration", "fold", "trainer", "plans", "case_threshold", "voxel_threshold",
                  "finetune", "warm_start", "teacher_hparams", "labeled_share")
#: value of a fixed setting that a state written before the setting existed implies
SETTING_DEFAULTS: Dict[str, Any] = {"warm_start": None, "teacher_hparams": None, "labeled_share": None}


def round_steps(k: int, finetune: bool) -> List[str]:
    """Ordered steps of round ``k``: round 0 only trains the teacher."""
    if k == 0:
        return ["train"]
    steps = ["predict", "pseudo_labels", "derive", "preprocess", "train"]
    return steps + ["finetune"] if finetune else steps


def fixed_settings(settings: Dict[str, Any]) -> Dict[str, Any]:
    """The FIXED_SETTINGS of ``settings``, a missing one taken from SETTING_DEFAULTS (KeyError if it has none)."""
    return {k: settings[k] if k in settings else SETTING_DEFAULTS[k] for k in FIXED_SETTINGS}


def new_state(settings: Dict[str, Any]) -> dict:
    """An empty state for ``settings`` (a dict with the FIXED_SETTINGS keys; those of SETTING_DEFAULTS may be
    left out)."""
    return {"version": VERSION, "settings": fixed_settings(settings), "derived_ids": {},
            "rounds": {}, "final": None}


def load_state(path: str | os.PathLike) -> Optional[dict]:
    """The state stored at ``path`` or None if there is none (ValueError naming the file if unreadable)."""
    path = Path(path)
    if not path.is_file():
        return None
    try:
        state = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise ValueError(f"{path}: not valid JSON ({e}); delete it to start the self-training run anew") from None
    if not isinstance(state, dict) or state.get("version") != VERSION:
        raise ValueError(f"{path}: not a self-training state of version {VERSION}")
    return state


def save_state(state: dict, path: str | os.PathLike) -> None:
    """Write ``state`` atomically (temporary file + rename: a crash never leaves half a file)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(state, indent=2) + "\n", encoding="utf-8")
    os.replace(tmp, path)


def check_settings(state: dict, settings: Dict[str, Any], path: str | os.PathLike) -> None:
    """ValueError naming ``path`` and the differing keys if ``settings`` differ from the stored ones."""
    old, new = fixed_settings(state["settings"]), fixed_settings(settings)
    diff = [k for k in FIXED_SETTINGS if old[k] != new[k]]
    if diff:
        text = ", ".join(f"{k}: stored {old[k]!r}, now {new[k]!r}" for k in diff)
        raise ValueError(f"{path}: this self-training run was started with other settings ({text}); resume with the "
                         f"stored settings or remove the run folder {Path(path).parent} to start anew")


def is_done(state: dict, k: int, step: str) -> bool:
    """Whether step ``step`` of round ``k`` is recorded as completed."""
    return step in state["rounds"].get(str(k), {}).get("completed", [])


def mark_done(state: dict, k: int, step: str, **info: Any) -> None:
    """Record step ``step`` of round ``k`` as completed (``info`` is stored in the round's entry)."""
    entry = state["rounds"].setdefault(str(k), {"completed": []})
    if step not in entry["completed"]:
        entry["completed"].append(step)
    entry.update(info)


def pending_steps(state: dict, rounds: int, finetune: bool) -> List[Tuple[int, str]]:
    """(round, step) pairs still to do for rounds 0..``rounds``, in order (the resume point is the first)."""
    return [(k, s) for k in range(rounds + 1) for s in round_steps(k, finetune) if not is_done(state, k, s)]


def completed_rounds(state: dict, finetune: bool) -> List[int]:
    """Rounds whose steps are all done, ascending."""
    return sorted(int(k) for k, v in state["rounds"].items()
                  if all(s in v.get("completed", []) for s in round_steps(int(k), finetune)))

"""Derived datasets of a self-training round: free dataset ids, the raw dataset, its splits, plans copies.

A round's derived raw dataset ``Dataset{YYY}_{Name}SelfTrainR{k}`` holds the base dataset's labeled
cases plus the pseudo-labeled ones as training cases (``imagesTr``/``labelsTr``, hard links where the
file system allows, else copies), a dataset.json with ``nnssl_self_training`` (round, teacher,
thresholds, case lists) and an ``nnssl_split.json``.
"""
from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path
from typing import Any, Dict, Iterable, List, Mapping, Optional, Sequence, Set

from nnssl.data.raw import get_unlabeled_cases, load_dataset_json, write_dataset_json, write_split

_DATASET_RE = re.compile(r"Dataset(\d{3})_(.+)")
_STANDARD_KEYS = ("channel_names", "labels", "numTraining", "file_ending", "numUnlabeled", "numTest",
                  "nnssl_self_training")


def datasets_by_id(folders: Iterable[str | os.PathLike]) -> Dict[int, Set[str]]:
    """Dataset id -> names of ``DatasetXXX_Name`` folders found in ``folders`` (nnU-Net's raw/preprocessed/results)."""
    found: Dict[int, Set[str]] = {}
    for folder in folders:
        if not os.path.isdir(folder):
            continue
        for name in os.listdir(folder):
            m = _DATASET_RE.fullmatch(name)
            if m and os.path.isdir(os.path.join(folder, name)):
                found.setdefault(int(m.group(1)), set()).add(name)
    return found


def resolve_dataset(dataset: str, folders: Sequence[str | os.PathLike]) -> str:
    """``DatasetXXX_Name`` for an id or name given on the command line (ValueError if missing or ambiguous)."""
    if dataset.isdigit():
        names = datasets_by_id(folders).get(int(dataset), set())
        if len(names) != 1:
            raise ValueError(f"dataset id {dataset}: " + (f"ambiguous, found {sorted(names)}" if names else
                                                          f"no DatasetXXX_ folder in {', '.join(map(str, folders))}"))
        return names.pop()
    if not _DATASET_RE.fullmatch(dataset):
        raise ValueError(f"{dataset!r} is neither a dataset id nor a DatasetXXX_Name folder name")
    return dataset


def derived_name(dataset_id: int, base_name: str, k: int) -> str:
    """``Dataset{id}_{Name}SelfTrainR{k}`` for base dataset ``DatasetXXX_Name``."""
    return f"Dataset{dataset_id:03d}_{_DATASET_RE.fullmatch(base_name).group(2)}SelfTrainR{k}"


def check_free_id(dataset_id: int, expected_name: str, folders: Sequence[str | os.PathLike]) -> None:
    """ValueError if ``dataset_id`` is used by a dataset other than ``expected_name`` (ours, when resuming)."""
    if not 1 <= dataset_id <= 999:
        raise ValueError(f"derived dataset id {dataset_id} is not in 1..999")
    others = datasets_by_id(folders).get(dataset_id, set()) - {expected_name}
    if others:
        raise ValueError(f"derived dataset id {dataset_id} is already used by {sorted(others)}; pass free ids with "
                         f"--derived_ids")


def choose_free_id(start: int, folders: Sequence[str | os.PathLike], taken: Iterable[int] = ()) -> int:
    """Smallest id > ``start`` unused in ``folders`` and not in ``taken``."""
    used = set(datasets_by_id(folders)) | set(taken)
    for i in range(start + 1, 1000):
        if i not in used:
            return i
    raise ValueError(f"no free dataset id above {start}; pass --derived_ids")


def with_ignore_label(labels: Dict[str, object]) -> tuple[Dict[str, object], int]:
    """(labels with an ``ignore`` entry, ignore value): an existing ``ignore`` is kept, else max label + 1."""
    if "ignore" in labels:
        return dict(labels), int(labels["ignore"])
    values = [v for x in labels.values() for v in (x if isinstance(x, list) else [x])]
    ignore = max(values) + 1
    return {**labels, "ignore": ignore}, ignore


def derive_splits(base_splits: List[dict], pseudo_ids: Sequence[str]) -> List[dict]:
    """Per base fold: train = base train + pseudo-labeled ids, val = base val (never a pseudo-labeled case)."""
    return [{"train": list(f["train"]) + [c for c in pseudo_ids if c not in f["train"]], "val": list(f["val"])}
            for f in base_splits]


def _link_or_copy(src: str | os.PathLike, dst: str | os.PathLike) -> None:
    try:
        os.link(src, dst)
    except OSError:
        shutil.copyfile(src, dst)


def write_derived_raw(base_raw: Path, out: Path, pseudo_dir: Path, pseudo_ids: Sequence[str],
                      ignore_label: Optional[int], record: dict) -> dict:
    """Create raw dataset ``out`` (must not exist): base labeled cases + ``pseudo_ids`` with labels from
    ``pseudo_dir``. Returns the dataset.json written."""
    from nnunetv2.utilities.utils import get_filenames_of_train_images_and_targets

    if out.exists():
        raise FileExistsError(f"{out} already exists; refusing to overwrite it")
    base_json = load_dataset_json(base_raw)
    ending = base_json["file_ending"]
    labeled = get_filenames_of_train_images_and_targets(str(base_raw), base_json)
    unlabeled = get_unlabeled_cases(base_raw, base_json)
    clash = sorted(set(labeled) & set(pseudo_ids))
    if clash:
        raise ValueError(f"{base_raw}: unlabeled case ids {clash} are also labeled case ids")
    (out / "imagesTr").mkdir(parents=True)
    (out / "labelsTr").mkdir()
    for case, entry in labeled.items():
        for img in entry["images"]:
            _link_or_copy(img, out / "imagesTr" / os.path.basename(img))
        _link_or_copy(entry["label"], out / "labelsTr" / f"{case}{ending}")
    for case in pseudo_ids:
        for img in unlabeled[case]:
            _link_or_copy(img, out / "imagesTr" / os.path.basename(img))
        shutil.copyfile(pseudo_dir / f"{case}{ending}", out / "labelsTr" / f"{case}{ending}")
    labels = base_json["labels"]
    if ignore_label is not None:
        labels, _ = with_ignore_label(labels)
    extra = {k: v for k, v in base_json.items() if k not in _STANDARD_KEYS}
    extra["name"] = out.name.split("_", 1)[1]
    content = write_dataset_json(out, base_json["channel_names"], labels, len(labeled) + len(pseudo_ids), ending,
                                 num_unlabeled=0, num_test=0, **extra, nnssl_self_training=record)
    write_split(out, {"source_dataset": base_raw.name, "source_path": str(base_raw), "converter": "nnssl_self_train",
                      "arguments": record, "seed": None, "labeled": sorted(labeled),
                      "pseudo_labeled": sorted(pseudo_ids), "unlabeled": [], "test": []})
    return content


def copy_plans(preprocessed_dir: Path, source_plans: str, target_plans: str,
               hparams: Optional[Mapping[str, Any]] = None) -> Path:
    """Copy ``source_plans.json`` to ``target_plans.json`` in the same folder, only ``plans_name`` changed (the
    data identifier stays, so the copy trains on the same preprocessed data under another results folder)
    and ``hparams``, when given, merged over the source's ``nnssl_hparams`` (the trainers read them from there).
    An existing identical copy is kept; a different one is an error."""
    src, dst = preprocessed_dir / f"{source_plans}.json", preprocessed_dir / f"{target_plans}.json"
    if not src.is_file():
        raise FileNotFoundError(f"plans {src} not found (plan and preprocess the dataset first)")
    plans = {**json.loads(src.read_text(encoding="utf-8")), "plans_name": target_plans}
    if hparams:
        plans["nnssl_hparams"] = {**plans.get("nnssl_hparams", {}), **hparams}
    if dst.is_file():
        if json.loads(dst.read_text(encoding="utf-8")) != plans:
            raise ValueError(f"{dst} exists and differs from {src}; refusing to overwrite it")
        return dst
    dst.write_text(json.dumps(plans, indent=4) + "\n", encoding="utf-8")
    return dst

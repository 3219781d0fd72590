"""Resumable, crash-safe preprocessing of labeled and unlabeled cases with nnU-Net's preprocessor.

Each case is preprocessed by the plans' preprocessor (nnU-Net's ``run_case_save``) into a
``.partial`` folder beside the output folder and then moved into place, the ``.pkl`` last. A case
counts as finished iff its ``.pkl`` is in the output folder, so a re-run skips finished cases and
a crash halfway never leaves a case that is later read as complete.
"""
from __future__ import annotations

import multiprocessing
import os
import pickle
import shutil
import time
from typing import Dict, List, Optional, Tuple

from nnunetv2.utilities.plans_handling.plans_handler import PlansManager

Case = Tuple[List[str], Optional[str]]  # (image files, label file or None)


def is_finished(out_dir: str, case_id: str) -> bool:
    """A case is finished when its properties file is in ``out_dir`` (it is moved there last)."""
    return os.path.isfile(os.path.join(out_dir, case_id + ".pkl"))


def _preprocess_one(case_id: str, images: List[str], label: Optional[str], out_dir: str, partial_dir: str,
                    plans: dict, configuration: str, dataset_json: dict) -> str:
    plans_manager = PlansManager(plans)
    configuration_manager = plans_manager.get_configuration(configuration)
    preprocessor = configuration_manager.preprocessor_class(verbose=False)
    truncated = os.path.join(partial_dir, case_id)
    try:
        preprocessor.run_case_save(truncated, images, label, plans_manager, configuration_manager, dataset_json)
    except Exception as e:  # name the case: nnU-Net's messages rarely do
        raise RuntimeError(f"preprocessing failed for case '{case_id}' ({', '.join(images)}): {e}") from e
    if label is None:  # nnU-Net's data loader reads class_locations unconditionally
        with open(truncated + ".pkl", "rb") as f:
            properties = pickle.load(f)
        properties.setdefault("class_locations", {})
        with open(truncated + ".pkl", "wb") as f:
            pickle.dump(properties, f)
    produced = sorted(f for f in os.listdir(partial_dir) if f.startswith(case_id + ".") or
                      f.startswith(case_id + "_seg."))
    for name in [f for f in produced if not f.endswith(".pkl")] + [case_id + ".pkl"]:
        os.replace(os.path.join(partial_dir, name), os.path.join(out_dir, name))
    return case_id


def preprocess_cases(cases: Dict[str, Case], out_dir: str, plans: dict, configuration: str, dataset_json: dict,
                     num_processes: int = 2, desc: str = "cases") -> Dict[str, float]:
    """Preprocess ``cases`` (id -> (image files, label file or None)) into ``out_dir``; skip finished ones.

    Returns {'total', 'skipped', 'processed', 'seconds'}.
    """
    os.makedirs(out_dir, exist_ok=True)
    partial_dir = out_dir.rstrip(os.sep) + ".partial"
    shutil.rmtree(partial_dir, ignore_errors=True)  # leftovers of a crashed run are never trusted
    os.makedirs(partial_dir)
    todo = {k: v for k, v in cases.items() if not is_finished(out_dir, k)}
    skipped = len(cases) - len(todo)
    print(f"[nnssl] {desc}: {len(cases)} cases, {skipped} already preprocessed, {len(todo)} to do -> {out_dir}",
          flush=True)
    start = time.perf_counter()
    args = [(k, imgs, lab, out_dir, partial_dir, plans, configuration, dataset_json)
            for k, (imgs, lab) in sorted(todo.items())]
    done = 0
    if num_processes <= 1 or len(args) <= 1:
        for a in args:
            _preprocess_one(*a)
            done += 1
            print(f"[nnssl] {desc}: {done}/{len(args)} ({a[0]})", flush=True)
    else:
        with multiprocessing.get_context("spawn").Pool(num_processes) as pool:
            results = [pool.apply_async(_preprocess_one, a) for a in args]
            for r in results:
                case_id = r.get()
                done += 1
                print(f"[nnssl] {desc}: {done}/{len(args)} ({case_id})", flush=True)
    shutil.rmtree(partial_dir, ignore_errors=True)
    return {"total": len(cases), "skipped": skipped, "processed": len(todo),
            "seconds": time.perf_counter() - start}

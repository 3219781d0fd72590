"""``nnssl_plan_and_preprocess``: fingerprint, SSL-aware planning, labeled + unlabeled preprocessing.

1. validate ``imagesUnlabeled/`` (channels, file ending, readability, finite values, dimensionality);
2. nnU-Net's fingerprint of the labeled cases (reused if present, ``--clean`` recomputes);
3. the SSL-aware planner writes ``<plans_name>.json`` (an existing plans file is kept unless
   ``--clean``: re-planning could change spacing under already preprocessed data);
4. labeled cases -> ``<data_identifier>/`` and unlabeled cases -> ``<data_identifier>_unlabeled/``
   with the same plans and nnU-Net's preprocessor, resumable and crash-safe (``planning.preprocess``).
"""
from __future__ import annotations

import argparse
import os
import shutil
from typing import Dict, List, Optional, Sequence

from batchgenerators.utilities.file_and_folder_operations import load_json
from nnunetv2.experiment_planning.plan_and_preprocess_api import extract_fingerprint_dataset, \
    plan_experiment_dataset
from nnunetv2.paths import nnUNet_preprocessed, nnUNet_raw
from nnunetv2.utilities.dataset_name_id_conversion import maybe_convert_to_dataset_name
from nnunetv2.utilities.utils import get_filenames_of_train_images_and_targets

from nnssl.data.raw import get_unlabeled_cases
from nnssl.data.unlabeled import unlabeled_folder
from nnssl.data.validation import check_unlabeled
from nnssl.planning.planner import DEFAULT_PLANS_NAME, PLANNERS
from nnssl.planning.preprocess import preprocess_cases


def _dataset_id(dataset_name: str) -> int:
    return int(dataset_name[len("Dataset"):len("Dataset") + 3])


def plan(dataset: str | int, planner: str = "nnSSLPlanner", plans_name: Optional[str] = None,
         gpu_memory_target: Optional[float] = None, num_processes: int = 2, clean: bool = False,
         verify_dataset_integrity: bool = False, target_spacing: Optional[Sequence[float]] = None) -> str:
    """Fingerprint + plans; returns the plans identifier. Keeps an existing plans file unless ``clean``."""
    dataset_name = maybe_convert_to_dataset_name(dataset)
    planner_class = PLANNERS[planner]
    plans_name = plans_name or planner_class.default_plans_name
    plans_file = os.path.join(str(nnUNet_preprocessed), dataset_name, plans_name + ".json")
    extract_fingerprint_dataset(_dataset_id(dataset_name), num_processes=num_processes,
                                check_dataset_integrity=verify_dataset_integrity, clean=clean, verbose=False)
    if os.path.isfile(plans_file) and not clean:
        print(f"[nnssl] using existing plans {plans_file} (pass --clean to plan again)", flush=True)
        return plans_name
    _, identifier = plan_experiment_dataset(_dataset_id(dataset_name), planner_class,
                                            gpu_memory_target_in_gb=gpu_memory_target,
                                            overwrite_target_spacing=target_spacing,
                                            overwrite_plans_name=plans_name)
    return identifier


def labeled_cases(raw_dir: str, dataset_json: dict) -> Dict[str, tuple]:
    ds = get_filenames_of_train_images_and_targets(raw_dir, dataset_json)
    return {k: (v["images"], v["label"]) for k, v in ds.items()}


def preprocess(dataset: str | int, plans_name: str = DEFAULT_PLANS_NAME,
               configurations: Sequence[str] = ("3d_fullres",), num_processes: int = 2,
               unlabeled: bool = True) -> Dict[str, dict]:
    """Preprocess labeled and unlabeled cases for each configuration; returns timing stats per part."""
    dataset_name = maybe_convert_to_dataset_name(dataset)
    raw_dir = os.path.join(str(nnUNet_raw), dataset_name)
    pre_dir = os.path.join(str(nnUNet_preprocessed), dataset_name)
    plans = load_json(os.path.join(pre_dir, plans_name + ".json"))
    dataset_json = load_json(os.path.join(raw_dir, "dataset.json"))
    labeled = labeled_cases(raw_dir, dataset_json)
    stats: Dict[str, dict] = {}
    for config in configurations:
        if config not in plans["configurations"]:
            raise ValueError(f"configuration '{config}' is not in {plans_name}.json "
                             f"(available: {', '.join(plans['configurations'])})")
        data_identifier = plans["configurations"][config].get("data_identifier", f"{plans_name}_{config}")
        out_dir = os.path.join(pre_dir, data_identifier)
        stats[f"{config}/labeled"] = preprocess_cases(labeled, out_dir, plans, config,
                                                      dataset_json, num_processes, f"{config} labeled")
        if unlabeled:
            cases = {k: (v, None) for k, v in get_unlabeled_cases(raw_dir, dataset_json).items()}
            stats[f"{config}/unlabeled"] = preprocess_cases(cases, unlabeled_folder(out_dir), plans, config,
                                                            dataset_json, num_processes, f"{config} unlabeled")
    _copy_ground_truth(labeled, pre_dir, dataset_json["file_ending"])
    return stats


def _copy_ground_truth(labeled: Dict[str, tuple], pre_dir: str, file_ending: str) -> None:
    """nnU-Net's gt_segmentations/ (used by its final validation); copies only missing or changed files."""
    gt_dir = os.path.join(pre_dir, "gt_segmentations")
    os.makedirs(gt_dir, exist_ok=True)
    for case_id, (_, label) in labeled.items():
        target = os.path.join(gt_dir, case_id + file_ending)
        if not os.path.isfile(target) or os.path.getmtime(target) < os.path.getmtime(label):
            shutil.copy2(label, target)


def main(argv: Optional[List[str]] = None) -> None:
    parser = argparse.ArgumentParser(
        description="nnU-Net fingerprint + SSL-aware planning + preprocessing of labeled (imagesTr) and "
                    "unlabeled (imagesUnlabeled) images with the same plans. Re-running skips finished work.")
    parser.add_argument("-d", nargs="+", required=True, help="dataset ID(s) or name(s) in $nnUNet_raw")
    parser.add_argument("-c", nargs="+", default=["3d_fullres"], help="configurations to preprocess "
                        "(default: 3d_fullres; '2d' and '3d_lowres' as in nnU-Net)")
    parser.add_argument("-pl", default="nnSSLPlanner", choices=sorted(PLANNERS),
                        help="planner (default nnSSLPlanner: PlainConvUNet, plans 'nnSSLPlans')")
    parser.add_argument("-p", "--plans_name", default=None,
                        help="plans identifier to write (default: the planner's, e.g. nnSSLPlans)")
    parser.add_argument("-gpu_memory_target", type=float, default=None,
                        help="GPU memory (GB) the plans are made for (default: the planner's, 8 GB for nnSSLPlanner)")
    parser.add_argument("--target_spacing", type=float, nargs="+", default=None,
                        help="override the 3d_fullres target spacing (mm, in the image's axis order after "
                             "nnU-Net's transpose), e.g. a coarser spacing for CPU-scale runs")
    parser.add_argument("-np", type=int, default=2, help="worker processes (default 2)")
    parser.add_argument("--clean", action="store_true", help="recompute fingerprint and plans even if present")
    parser.add_argument("--verify_dataset_integrity", action="store_true",
                        help="run nnU-Net's dataset integrity check on the labeled cases first")
    parser.add_argument("--no_unlabeled", action="store_true", help="preprocess labeled cases only")
    parser.add_argument("--plan_only", action="store_true", help="stop after planning")
    args = parser.parse_args(argv)
    try:
        _run(args)
    except (ValueError, FileNotFoundError, RuntimeError) as e:
        parser.exit(1, f"nnssl_plan_and_preprocess: error: {e}\n")


def _run(args: argparse.Namespace) -> None:
    for d in args.d:
        dataset_name = maybe_convert_to_dataset_name(d)
        if not args.no_unlabeled:
            check_unlabeled(os.path.join(str(nnUNet_raw), dataset_name))
        plans_name = plan(d, args.pl, args.plans_name, args.gpu_memory_target, args.np, args.clean,
                          args.verify_dataset_integrity, args.target_spacing)
        if args.plan_only:
            continue
        stats = preprocess(d, plans_name, args.c, args.np, unlabeled=not args.no_unlabeled)
        for part, s in stats.items():
            print(f"[nnssl] {dataset_name} {part}: {s['processed']} preprocessed, {s['skipped']} skipped, "
                  f"{s['seconds']:.1f} s", flush=True)


if __name__ == "__main__":
    main()

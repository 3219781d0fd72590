"""Preprocessing time of unlabeled images (nnssl) versus nnU-Net's own preprocessing of as many labeled images.

Builds a Hippocampus dataset with N labeled and N unlabeled real cases in a temporary folder,
plans it with nnSSLPlanner, then times, for 3d_fullres and the same number of worker processes:
  1. nnU-Net's DefaultPreprocessor.run on the N labeled cases (what nnUNetv2_preprocess does);
  2. nnssl's preprocessing of the N unlabeled cases (planning.preprocess.preprocess_cases);
  3. nnssl's preprocessing of the N labeled cases (same code path as 2, with labels);
  4. a re-run of 2 (every case finished: the resume check only).
Prints seconds and seconds per case for each.
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default=os.environ.get("NNSSL_DATA", str(REPO.parent / "shared" / "data")),
                        help="folder holding Hippocampus/ (default: $NNSSL_DATA or ../shared/data)")
    parser.add_argument("--cases", type=int, default=20, help="N labeled and N unlabeled cases (default 20)")
    parser.add_argument("-np", type=int, default=2, help="worker processes for every variant (default 2)")
    args = parser.parse_args()

    sys.path.insert(0, str(REPO / "tests"))
    from realdata import make_msd_subset, nnunet_folders  # noqa: E402

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        os.environ.update({k: str(v) for k, v in nnunet_folders(tmp).items()})
        make_msd_subset(Path(args.data) / "Hippocampus", tmp / "msd", 2 * args.cases)
        subprocess.run(["nnssl_convert_msd", "-i", str(tmp / "msd"), "-d", "599", "--labeled", str(args.cases),
                        "-np", str(args.np)], check=True, capture_output=True)
        from nnssl.planning.plan_and_preprocess import labeled_cases, plan
        from nnssl.planning.preprocess import preprocess_cases
        from nnssl.data.raw import get_unlabeled_cases
        from batchgenerators.utilities.file_and_folder_operations import load_json
        from nnunetv2.preprocessing.preprocessors.default_preprocessor import DefaultPreprocessor

        plans_name = plan(599, num_processes=args.np)
        raw = tmp / "nnUNet_raw" / "Dataset599_Hippocampus"
        pre = tmp / "nnUNet_preprocessed" / "Dataset599_Hippocampus"
        plans = load_json(str(pre / f"{plans_name}.json"))
        dataset_json = load_json(str(raw / "dataset.json"))

        t0 = time.perf_counter()
        pp = DefaultPreprocessor(verbose=False)
        pp.show_progress_bar = False
        pp.run(599, "3d_fullres", plans_name, num_processes=args.np)
        t_nnunet = time.perf_counter() - t0

        unl = {k: (v, None) for k, v in get_unlabeled_cases(raw, dataset_json).items()}
        t_unl = preprocess_cases(unl, str(pre / "bench_unlabeled"), plans, "3d_fullres", dataset_json,
                                 args.np, "unlabeled")["seconds"]
        t_lab = preprocess_cases(labeled_cases(str(raw), dataset_json), str(pre / "bench_labeled"), plans,
                                 "3d_fullres", dataset_json, args.np, "labeled")["seconds"]
        t_rerun = preprocess_cases(unl, str(pre / "bench_unlabeled"), plans, "3d_fullres", dataset_json,
                                   args.np, "unlabeled rerun")["seconds"]

    n = args.cases
    print(f"\nHippocampus 3d_fullres, {n} labeled + {n} unlabeled cases, {args.np} processes")
    for name, t in [("nnU-Net DefaultPreprocessor.run, labeled", t_nnunet), ("nnssl, unlabeled", t_unl),
                    ("nnssl, labeled", t_lab), ("nnssl, unlabeled re-run (all finished)", t_rerun)]:
        print(f"  {name:42s} {t:7.2f} s  ({t / n:.3f} s/case)")
    print(f"  unlabeled (nnssl) / labeled (nnU-Net): {t_unl / t_nnunet:.2f}")


if __name__ == "__main__":
    main()

"""Step cost of every nnssl trainer: train_step versus the bare passes of its networks on the same batch.

Builds a Hippocampus dataset (real cases, nnSSLPlans at nnU-Net's planned patch and network unless
--plans_args shrinks it) in a temporary folder, then for each trainer, in one process and on one
fixed labeled + unlabeled batch (data loading excluded):
  step  = trainer.train_step(batch)
  bare  = for every trained network: forward on cat(labeled, unlabeled patch), nnU-Net's supervised
          loss on the labeled part, backward, gradient clipping, SGD step; auxiliary networks
          (Mean Teacher's teacher): one no-grad forward on the unlabeled patch
  ratio = step / bare (the cost of the SSL logic), and step / nnUNetTrainer's own train_step;
  peak memory of one train_step (CUDA: max allocated; CPU: the process' peak RSS during the step).
_QG variants use a predictor file (random weights: same cost as a trained one) and are also reported
relative to their base trainer's step.
For nnSSLFixedDynamicTrainer the no-grad pseudo-label forwards (fixed crop of SN2, 4 shifted crops of
each subnet) belong to the method; their time is measured separately and reported with the ratio
without them.
"""
from __future__ import annotations

import argparse
import json
import os
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
TRAINERS = ["nnSSLMeanTeacherTrainer", "nnSSLCPSTrainer", "nnSSLDualTrainer", "nnSSLFixedDynamicTrainer",
            "nnSSLMeanTeacherTrainer_QG", "nnSSLCPSTrainer_QG", "nnSSLDualTrainer_QG", "nnSSLFixedDynamicTrainer_QG"]


def timed(fn, steps: int, warmup: int) -> float:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(steps):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def bare_step(trainer, batch: dict, unlabeled: torch.Tensor):
    """The networks' own passes without SSL logic (see module docstring)."""
    data, target = batch["data"], batch["target"]
    n = data.shape[0]

    def run():
        trainer.optimizer.zero_grad(set_to_none=True)
        total = 0.0
        for net in trainer.subnetworks.values():
            out = net(torch.cat((data, unlabeled)))
            total = total + trainer.loss([o[:n] for o in out], target)
        total.backward()
        for net in trainer.subnetworks.values():
            torch.nn.utils.clip_grad_norm_(net.parameters(), 12)
        trainer.optimizer.step()
        with torch.no_grad():
            for name, net in trainer.auxiliary_networks.items():
                if name != "quality":  # the quality predictor is part of the _QG method, not a network pass
                    net(unlabeled)
    return run


def make_trainer(name: str, plans: str):
    from nnunetv2.run.run_training import get_trainer_from_args
    torch.manual_seed(0)
    np.random.seed(0)
    trainer = get_trainer_from_args("598", "3d_fullres", 0, name, plans, False, torch.device("cpu"))
    trainer.on_train_start()
    if hasattr(trainer, "subnetworks"):
        trainer.on_train_epoch_start()
    return trainer


def peak_memory_mib(fn, device: torch.device) -> float:
    """Peak memory while ``fn`` runs: CUDA max_memory_allocated, else the process' peak RSS (Linux VmHWM, reset
    through /proc/self/clear_refs; NaN where that is unavailable), in MiB."""
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
        fn()
        return torch.cuda.max_memory_allocated(device) / 2 ** 20
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")  # resets the peak RSS (VmHWM) to the current RSS
        fn()
        with open("/proc/self/status") as f:
            hwm = next(line for line in f if line.startswith("VmHWM:"))
        return int(hwm.split()[1]) / 1024
    except (OSError, StopIteration):
        return float("nan")


def measure(name: str, plans: str, steps: int, warmup: int) -> dict:
    trainer = make_trainer(name, plans)
    batch = next(trainer.dataloader_train)
    if not hasattr(trainer, "subnetworks"):  # nnU-Net's own trainer
        step = timed(lambda: trainer.train_step(batch), steps, warmup)
        return {"step": step, "peak_mib": peak_memory_mib(lambda: trainer.train_step(batch), trainer.device)}
    region = trainer.next_unlabeled()
    trainer.next_unlabeled = lambda: region
    step = timed(lambda: trainer.train_step(batch), steps, warmup)
    peak = peak_memory_mib(lambda: trainer.train_step(batch), trainer.device)
    patch = list(trainer.configuration_manager.patch_size)
    trim = [(r - p) // 2 for r, p in zip(region.shape[2:], patch)]
    fixed = region[(slice(None), slice(None)) + tuple(slice(t, t + p) for t, p in zip(trim, patch))]
    result = {"step": step, "peak_mib": peak, "bare": timed(bare_step(trainer, batch, fixed), steps, warmup)}
    if hasattr(trainer, "_dynamic_label"):
        from nnssl_trainers.wrapping import unwrap
        shift = [s // 2 for s in trim]  # a mid-range shift
        core = region[(slice(None), slice(None)) + tuple(slice(t - s, r - t + s) for t, s, r in
                                                         zip(trim, shift, region.shape[2:]))]

        def pseudo_label_passes():
            with torch.no_grad():
                probs = torch.softmax(unwrap(trainer.subnetworks["net_b"])(fixed)[0], 1)
                for net in trainer.subnetworks.values():
                    trainer._dynamic_label(unwrap(net), core, probs, shift)
        result["pseudo_label_passes"] = timed(pseudo_label_passes, steps, warmup)
    return result


def _write_untrained_predictor(tmp: Path, plans: str) -> None:
    """A predictor file at the _QG trainers' default location (weights do not change the step cost)."""
    from batchgenerators.utilities.file_and_folder_operations import load_json
    from nnunetv2.utilities.plans_handling.plans_handler import PlansManager
    from nnssl.quality.io import default_predictor_path, save_predictor
    from nnssl.quality.network import QualityPredictor
    base = tmp / "nnUNet_preprocessed" / "Dataset598_Hippocampus"
    pm = PlansManager(str(base / f"{plans}.json"))
    labels = pm.get_label_manager(load_json(str(base / "dataset.json")))
    q = QualityPredictor.from_plans(pm.get_configuration("3d_fullres"), 1, labels.num_segmentation_heads)
    save_predictor(default_predictor_path("Dataset598_Hippocampus", plans, "3d_fullres"), q, {"note": "untrained"})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default=os.environ.get("NNSSL_DATA", str(REPO.parent / "shared" / "data")))
    parser.add_argument("--trainers", nargs="+", default=TRAINERS)
    parser.add_argument("--steps", type=int, default=5, help="timed steps per variant (median reported)")
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--plans_args", nargs="*", default=[],
                        help="nnssl_derive_plans options for a smaller network, e.g. --features_max 64")
    args = parser.parse_args()
    torch.set_num_threads(2)
    sys.path.insert(0, str(REPO / "tests"))
    from realdata import make_msd_subset, nnunet_folders
    from nnssl.cli.discovery import ext_trainer_folder

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        os.environ.update({k: str(v) for k, v in nnunet_folders(tmp).items()})
        os.environ.update({"nnUNet_n_proc_DA": "0", "nnUNet_compile": "0", "nnUNet_extTrainer": ext_trainer_folder(),
                           "nnssl_hparams": json.dumps({"rampup_fraction": 0.0})})
        make_msd_subset(Path(args.data) / "Hippocampus", tmp / "msd", 10)
        run = lambda *c: subprocess.run(list(c), check=True, capture_output=True)  # noqa: E731
        run("nnssl_convert_msd", "-i", str(tmp / "msd"), "-d", "598", "--labeled", "5")
        run("nnssl_plan_and_preprocess", "-d", "598", "-np", "2")
        plans = "nnSSLPlans"
        if args.plans_args:
            run("nnssl_derive_plans", "-d", "598", "-o", "nnSSLPlans_bench",
                *[a for chunk in args.plans_args for a in shlex.split(chunk)])
            plans = "nnSSLPlans_bench"
        cfg = json.loads((tmp / "nnUNet_preprocessed" / "Dataset598_Hippocampus" / f"{plans}.json").read_text())
        c3d = cfg["configurations"]["3d_fullres"]
        print(f"Hippocampus 3d_fullres, patch {c3d['patch_size']}, batch {c3d['batch_size']}, features "
              f"{c3d['architecture']['arch_kwargs']['features_per_stage']}, torch threads "
              f"{torch.get_num_threads()}, median of {args.steps} steps after {args.warmup} warm-up")
        _write_untrained_predictor(tmp, plans)
        ref = measure("nnUNetTrainer", plans, args.steps, args.warmup)
        base = ref["step"]
        print(f"  {'nnUNetTrainer':32s} step {base:7.3f} s | peak memory {ref['peak_mib']:.0f} MiB")
        steps = {}
        for name in args.trainers:
            r = measure(name, plans, args.steps, args.warmup)
            steps[name] = r["step"]
            line = (f"  {name:32s} step {r['step']:7.3f} s | bare {r['bare']:7.3f} s | step/bare "
                    f"{r['step'] / r['bare']:.3f} | step/nnUNetTrainer {r['step'] / base:.2f} | peak memory "
                    f"{r['peak_mib']:.0f} MiB")
            if name.endswith("_QG") and name[:-3] in steps:
                line += f" | step/{name[:-3]} {r['step'] / steps[name[:-3]]:.3f}"
            if "pseudo_label_passes" in r:
                pl = r["pseudo_label_passes"]
                line += f" | pseudo-label passes {pl:.3f} s | (step - passes)/bare {(r['step'] - pl) / r['bare']:.3f}"
            print(line, flush=True)


if __name__ == "__main__":
    main()

"""``nnssl_train_quality_predictor``: train the segmentation-quality predictor of METHODS.md C.

On the labeled cases of a preprocessed dataset (a held-out share excluded), the predictor Q(x, m)
learns MSE(Q, Dice(m, y)) on pairs whose masks m are
  synthetic: corruptions of y (nnssl.quality.corruptions, random strengths, softened), and
  realistic: soft outputs of a segmentation network trained alongside on the same patches, taken
             from snapshots at growing iteration counts (early snapshots make poor masks).
It reports Spearman rho and MAE on the held-out cases, overall and per mask source, and saves the
predictor beside nnU-Net's results (nnssl.quality.io), where the _QG trainers find it.
"""
from __future__ import annotations

import argparse
import copy
import os
import time
from typing import Dict, List, Optional

import numpy as np
import torch
import torch.nn.functional as F
from batchgenerators.utilities.file_and_folder_operations import load_json
from nnunetv2.paths import nnUNet_preprocessed
from nnunetv2.utilities.dataset_name_id_conversion import maybe_convert_to_dataset_name
from nnunetv2.utilities.get_network_from_plans import get_network_from_plans
from nnunetv2.utilities.plans_handling.plans_handler import PlansManager
from scipy.stats import spearmanr

from nnssl.quality.io import default_predictor_path, save_predictor
from nnssl.quality.network import QualityPredictor
from nnssl.quality.samples import LabeledPatches, Sample, realistic_samples, synthetic_sample


def _segmentation_net(cm, n_in: int, n_out: int, max_features: int) -> torch.nn.Module:
    kwargs = copy.deepcopy(cm.network_arch_init_kwargs)
    kwargs["features_per_stage"] = [min(f, max_features) for f in kwargs["features_per_stage"]]
    return get_network_from_plans(cm.network_arch_class_name, kwargs, cm.network_arch_init_kwargs_req_import, n_in,
                                  n_out, allow_init=True, deep_supervision=False)


def _batch(samples: List[Sample], device) -> tuple:
    image = torch.from_numpy(np.stack([s.image for s in samples])).to(device)
    mask = torch.from_numpy(np.stack([s.mask for s in samples])).to(device)
    dice = torch.tensor([s.dice for s in samples], dtype=torch.float32, device=device)
    return image, mask, dice


def evaluate(predictor: QualityPredictor, samples: List[Sample], device) -> Dict[str, dict]:
    """Spearman rho and MAE of the predicted against the true Dice, overall and per source family."""
    predictor.eval()
    with torch.no_grad():
        pred = torch.cat([predictor(*_batch(samples[i:i + 16], device)[:2]).float().mean(1).cpu()
                          for i in range(0, len(samples), 16)]).numpy()
    truth = np.array([s.dice for s in samples])
    groups = {"all": np.arange(len(samples))}
    for fam in sorted({s.source.split(":")[0] for s in samples} | {s.source for s in samples}):
        groups[fam] = np.array([i for i, s in enumerate(samples) if s.source == fam or s.source.split(":")[0] == fam])
    result = {}
    for name, idx in groups.items():
        rho = float(spearmanr(pred[idx], truth[idx]).statistic) if len(idx) > 2 and np.ptp(truth[idx]) > 0 else None
        result[name] = {"n": int(len(idx)), "spearman_rho": rho, "mae": float(np.abs(pred[idx] - truth[idx]).mean())}
    return result


def train_quality_predictor(dataset: str | int, configuration: str = "3d_fullres", plans: str = "nnSSLPlans",
                            iterations: int = 1000, batch_size: int = 8, holdout_fraction: float = 0.25,
                            seed: int = 0, base_features: int = 16, lr: float = 1e-3, realistic_fraction: float = 0.5,
                            eval_samples: int = 200, seg_max_features: int = 32, output: Optional[str] = None,
                            device: str = "cpu", overwrite: bool = False, log_every: int = 50) -> dict:
    """Train, evaluate on held-out labeled cases, save; returns the metadata (incl. metrics)."""
    name = maybe_convert_to_dataset_name(dataset)
    base = os.path.join(str(nnUNet_preprocessed), name)
    pm = PlansManager(os.path.join(base, plans + ".json"))
    cm = pm.get_configuration(configuration)
    dataset_json = load_json(os.path.join(base, "dataset.json"))
    out = output or default_predictor_path(name, plans, configuration)
    if os.path.exists(out) and not overwrite:
        raise FileExistsError(f"{out} exists; pass --overwrite to replace it")
    folder = os.path.join(base, cm.data_identifier)
    cases = sorted(f[:-4] for f in os.listdir(folder) if f.endswith(".pkl"))
    rng = np.random.default_rng(seed)
    n_hold = max(1, int(round(holdout_fraction * len(cases))))
    if len(cases) - n_hold < 1:
        raise ValueError(f"{len(cases)} labeled case(s) in {folder}: too few to hold {n_hold} out")
    holdout = sorted(rng.choice(cases, n_hold, replace=False).tolist())
    train = [c for c in cases if c not in holdout]
    n_in, n_cls = len(dataset_json["channel_names"]), pm.get_label_manager(dataset_json).num_segmentation_heads
    patch = list(cm.patch_size)
    dev = torch.device(device)
    torch.manual_seed(seed)
    train_patches, hold_patches = LabeledPatches(folder, train, patch), LabeledPatches(folder, holdout, patch)
    predictor = QualityPredictor.from_plans(cm, n_in, n_cls, base_features=base_features).to(dev)
    seg = _segmentation_net(cm, n_in, n_cls, seg_max_features).to(dev)
    opt_q, opt_s = torch.optim.Adam(predictor.parameters(), lr), torch.optim.Adam(seg.parameters(), 1e-3)
    snapshot_at = sorted({int(iterations * f) for f in (0.0, 0.02, 0.05, 0.1, 0.2, 0.4, 0.7, 1.0)})
    snapshots, snap_net = {}, copy.deepcopy(seg)
    print(f"[nnssl] quality predictor for {name} {plans}/{configuration}: {len(train)} training and "
          f"{len(holdout)} held-out labeled cases, patch {patch}, {iterations} iterations", flush=True)
    start = time.perf_counter()
    for it in range(iterations + 1):
        if it in snapshot_at:
            snapshots[f"it{it}"] = copy.deepcopy(seg.state_dict())
        if it == iterations:
            break
        pairs = [train_patches.sample(rng) for _ in range(batch_size)]
        images, labels = np.stack([p[0] for p in pairs]), np.stack([p[1] for p in pairs])
        seg.train()
        logits = seg(torch.from_numpy(images).to(dev))
        seg_loss = F.cross_entropy(logits, torch.from_numpy(labels.astype(np.int64)).to(dev))
        opt_s.zero_grad(set_to_none=True)
        seg_loss.backward()
        opt_s.step()
        n_real = int(round(batch_size * realistic_fraction))
        tag = list(snapshots)[rng.integers(len(snapshots))]
        snap_net.load_state_dict(snapshots[tag])
        samples = realistic_samples(snap_net, images[:n_real], labels[:n_real], tag, dev) + \
            [synthetic_sample(img, lab, rng, n_cls) for img, lab in zip(images[n_real:], labels[n_real:])]
        predictor.train()
        image, mask, dice = _batch(samples, dev)
        loss = F.mse_loss(predictor(image, mask).float().mean(1), dice)
        opt_q.zero_grad(set_to_none=True)
        loss.backward()
        opt_q.step()
        if (it + 1) % log_every == 0 or it == 0:
            print(f"[nnssl] iteration {it + 1}/{iterations}: predictor MSE {loss.item():.4f}, segmentation CE "
                  f"{seg_loss.item():.3f}, {time.perf_counter() - start:.0f} s", flush=True)

    eval_rng = np.random.default_rng(seed + 1)
    eval_set: List[Sample] = []
    per_snapshot = max(1, eval_samples // (2 * len(snapshots)))
    for tag, state in snapshots.items():
        snap_net.load_state_dict(state)
        pairs = [hold_patches.sample(eval_rng) for _ in range(per_snapshot)]
        eval_set += realistic_samples(snap_net, np.stack([p[0] for p in pairs]), np.stack([p[1] for p in pairs]),
                                      tag, dev)
    while len(eval_set) < eval_samples:
        eval_set.append(synthetic_sample(*hold_patches.sample(eval_rng), eval_rng, n_cls))
    metrics = evaluate(predictor, eval_set, dev)
    print("[nnssl] held-out evaluation (Spearman rho, MAE):", flush=True)
    for group, m in metrics.items():
        rho = "n/a" if m["spearman_rho"] is None else f"{m['spearman_rho']:.3f}"
        print(f"  {group:28s} n={m['n']:4d}  rho={rho:>6s}  MAE={m['mae']:.3f}", flush=True)
    metadata = {"dataset": name, "plans": plans, "configuration": configuration, "train_cases": train,
                "holdout_cases": holdout, "iterations": iterations, "batch_size": batch_size, "seed": seed,
                "realistic_fraction": realistic_fraction, "seconds": time.perf_counter() - start, "metrics": metrics}
    save_predictor(out, predictor.cpu(), metadata)
    print(f"[nnssl] saved {out}", flush=True)
    return metadata


def main(argv: Optional[List[str]] = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] + " See the module docs for details.")
    parser.add_argument("-d", required=True, help="dataset ID or name (preprocessed)")
    parser.add_argument("-c", default="3d_fullres", help="configuration (default 3d_fullres)")
    parser.add_argument("-p", default="nnSSLPlans", help="plans identifier (default nnSSLPlans)")
    parser.add_argument("--iterations", type=int, default=1000)
    parser.add_argument("--batch_size", type=int, default=8)
    parser.add_argument("--holdout_fraction", type=float, default=0.25, help="labeled cases held out for evaluation")
    parser.add_argument("--realistic_fraction", type=float, default=0.5,
                        help="share of each batch with segmentation-network masks (rest synthetic)")
    parser.add_argument("--base_features", type=int, default=16)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--eval_samples", type=int, default=200)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("-o", "--output", default=None, help="output .pth (default: beside nnU-Net's results, "
                        "$nnUNet_results/DatasetXXX/nnSSLQualityPredictor__PLANS__CONFIG/predictor.pth)")
    parser.add_argument("-device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--overwrite", action="store_true")
    args = parser.parse_args(argv)
    try:
        train_quality_predictor(args.d, args.c, args.p, args.iterations, args.batch_size, args.holdout_fraction,
                                args.seed, args.base_features, args.lr, args.realistic_fraction, args.eval_samples,
                                output=args.output, device=args.device, overwrite=args.overwrite)
    except (FileExistsError, FileNotFoundError, ValueError) as e:
        parser.exit(1, f"nnssl_train_quality_predictor: error: {e}\n")


if __name__ == "__main__":
    main()

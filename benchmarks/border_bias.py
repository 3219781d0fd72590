"""How much foreground one patch's prediction finds, by distance to the patch border.

SSL trainers take pseudo-labels from single patches of the unlabeled images (method B: uniform random
patches, the fixed label = argmax, the dynamic label = the softmax averaged over crops shifted along the two
last axes). This script draws such patches from LABELED preprocessed cases, so the reference is known,
predicts each with every member of a trained checkpoint (the two networks of an nnssl two-network trainer,
the one network of any other), and prints per band of distance to the nearest patch border (as a share of
the patch size along that axis, d(x) = min_d min(x_d, p_d - 1 - x_d) / p_d) the share of the reference
foreground in the band and, relative to the reference foreground there: the argmax's foreground, the
softmax's foreground mass and the dynamic label's foreground. Foreground = any label > 0.

Usage: python benchmarks/border_bias.py RESULTS_FOLD_FOLDER PREPROCESSED_CONFIG_FOLDER \
           [--exclude LABELED_CONFIG_FOLDER] [--cases 8] [--patches 6] [--seed 0]
(RESULTS_FOLD_FOLDER is e.g. .../TRAINER__PLANS__3d_fullres/fold_all; nnUNet_extTrainer must let nnU-Net
find the trainer, as for nnUNetv2_predict.)
"""
from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Dict, List, Sequence

import numpy as np
import torch

DEFAULT_EDGES = (1 / 16, 1 / 8, 3 / 16, 1 / 4)  # band i: edges[i-1] <= d < edges[i]; the last: d >= 1/4
QUANTITIES = ("ref", "argmax", "softmax", "dynamic")


def border_distance(patch_size: Sequence[int]) -> torch.Tensor:
    """d(x) = min over axes of min(x_d, p_d - 1 - x_d) / p_d, float (*patch); 0 on the border voxels."""
    dist = None
    for axis, p in enumerate(patch_size):
        idx = torch.arange(int(p))
        d = (torch.minimum(idx, int(p) - 1 - idx).float() / int(p)).view(
            *[int(p) if i == axis else 1 for i in range(len(patch_size))]).expand(*map(int, patch_size))
        dist = d if dist is None else torch.minimum(dist, d)
    return dist


def band_sums(band: torch.Tensor, n_bands: int, **maps: torch.Tensor) -> Dict[str, np.ndarray]:
    """Per band b (0..n_bands-1) the sum of each map over the voxels where ``band == b`` (maps: same shape)."""
    flat = band.reshape(-1)
    return {k: torch.bincount(flat, weights=v.reshape(-1).double(), minlength=n_bands).numpy()
            for k, v in maps.items()}


def band_table(sums: Dict[str, np.ndarray], edges: Sequence[float]) -> str:
    """Markdown rows per band and for all voxels: the band's share of the reference foreground, and the
    argmax's, softmax's and dynamic label's foreground relative to the reference foreground there."""
    names = ([f"< {edges[0]:.3g}"] + [f"{a:.3g}-{b:.3g}" for a, b in zip(edges[:-1], edges[1:])]
             + [f">= {edges[-1]:.3g}", "all"])
    columns = {k: np.append(v, v.sum()) for k, v in sums.items()}
    ref = columns["ref"]
    rows = ["| distance to border (share of patch) | share of reference fg | argmax / ref | softmax / ref "
            "| dynamic / ref |", "|---|---|---|---|---|"]
    for i, name in enumerate(names):
        cells = [f"{ref[i] / ref[-1]:.3f}" if ref[-1] > 0 else "n/a"]
        cells += [f"{columns[k][i] / ref[i]:.2f}" if ref[i] > 0 else "n/a" for k in QUANTITIES[1:]]
        rows.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(rows)


def _members(network: torch.nn.Module) -> Dict[str, torch.nn.Module]:
    from nnssl_trainers.ensemble import SoftmaxEnsemble
    return dict(network.members) if isinstance(network, SoftmaxEnsemble) else {"network": network}


def measure(model_folder: Path, config_folder: Path, exclude: List[str], n_cases: int, n_patches: int,
            seed: int, edges: Sequence[float] = DEFAULT_EDGES) -> Dict[str, Dict[str, np.ndarray]]:
    """Band sums per member network over ``n_patches`` uniform patches of ``n_cases`` cases (see module doc)."""
    from nnunetv2.inference.predict_from_raw_data import nnUNetPredictor
    from nnunetv2.training.dataloading.nnunet_dataset import infer_dataset_class

    from nnssl.deep_supervision import full_resolution
    from nnssl.pseudo_labels import dynamic_label, fixed_crop, shift_axes, shift_bounds
    from nnssl_trainers.fixed_dynamic import nnSSLFixedDynamicTrainer

    predictor = nnUNetPredictor(device=torch.device("cpu"), perform_everything_on_device=False, verbose=False)
    predictor.initialize_from_trained_model_folder(str(model_folder.parent), use_folds=(model_folder.name[5:],),
                                                   checkpoint_name="checkpoint_final.pth")
    network = predictor.network
    network.load_state_dict(predictor.list_of_parameters[0])
    network.eval()
    patch = [int(p) for p in predictor.configuration_manager.patch_size]
    defaults = nnSSLFixedDynamicTrainer.hparam_defaults  # method B's default shift axes and fractions
    axes = shift_axes(len(patch), defaults["shift_axes"])
    lo, hi = shift_bounds(patch, axes, defaults["shift_min_fraction"], defaults["shift_max_fraction"])
    ids = sorted(p.name[:-len("_seg.b2nd")] for p in config_folder.glob("*_seg.b2nd"))
    ids = [i for i in ids if i not in set(exclude)]
    if len(ids) < n_cases:
        raise SystemExit(f"error: {config_folder} holds {len(ids)} cases outside --exclude, {n_cases} asked for")
    rng = np.random.default_rng(seed)
    ids = sorted(rng.choice(ids, n_cases, replace=False))
    dataset = infer_dataset_class(str(config_folder))(str(config_folder), ids)
    band = torch.bucketize(border_distance(patch), torch.tensor(edges), right=True)
    sums = {name: dict.fromkeys(QUANTITIES, 0.0) for name in _members(network)}
    with torch.no_grad():
        for k, case in enumerate(ids):
            data, seg, *_ = dataset.load_case(case)
            data, seg = np.asarray(data), np.asarray(seg)
            for _ in range(n_patches):
                shift = [int(rng.integers(a, b + 1)) if b > 0 else 0 for a, b in zip(lo, hi)]
                size = [p + 2 * s for p, s in zip(patch, shift)]
                start = [int(rng.integers(0, max(1, d - s + 1))) for d, s in zip(data.shape[1:], size)]
                window = tuple(slice(a, a + s) for a, s in zip(start, size))
                x = np.zeros((1, data.shape[0], *size), np.float32)
                y = np.zeros(size, bool)
                xs, ys = data[(slice(None),) + window], seg[(0,) + window] > 0
                x[(0, slice(None)) + tuple(slice(0, d) for d in xs.shape[1:])] = xs  # zero-pad a small case
                y[tuple(slice(0, d) for d in ys.shape)] = ys
                region = torch.from_numpy(x)
                ref = torch.from_numpy(y)[tuple(slice(s, s + p) for s, p in zip(shift, patch))]
                for name, net in _members(network).items():
                    probs = torch.softmax(full_resolution(net(fixed_crop(region, patch, shift))).float(), 1)[0]
                    dynamic = dynamic_label(lambda crops: full_resolution(net(crops)), region, probs[None], patch,
                                            shift, axes)[0]
                    new = band_sums(band, len(edges) + 1, ref=ref, argmax=probs.argmax(0) > 0,
                                    softmax=1.0 - probs[0], dynamic=dynamic > 0)
                    sums[name] = {q: sums[name][q] + new[q] for q in QUANTITIES}
            print(f"[{k + 1}/{len(ids)}] {case}", flush=True)
    return sums


def main(argv: List[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    p.add_argument("model_folder", type=Path, help="trained fold folder (.../TRAINER__PLANS__CONF/fold_X)")
    p.add_argument("config_folder", type=Path, help="preprocessed folder of labeled cases (DatasetX/PLANS_CONF)")
    p.add_argument("--exclude", type=Path, help="preprocessed folder whose cases to skip (the training labels)")
    p.add_argument("--cases", type=int, default=8)
    p.add_argument("--patches", type=int, default=6, help="patches per case")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=int(os.environ.get("OMP_NUM_THREADS", "1")))
    a = p.parse_args(argv)
    for folder in (a.model_folder, a.config_folder) + ((a.exclude,) if a.exclude else ()):
        if not folder.is_dir():
            p.error(f"{folder} is not a folder")
    if not (a.model_folder / "checkpoint_final.pth").is_file() or not a.model_folder.name.startswith("fold_"):
        p.error(f"{a.model_folder}: not a trained fold folder (fold_X with checkpoint_final.pth)")
    torch.set_num_threads(a.threads)
    exclude = [q.name[:-len("_seg.b2nd")] for q in a.exclude.glob("*_seg.b2nd")] if a.exclude else []
    sums = measure(a.model_folder, a.config_folder, exclude, a.cases, a.patches, a.seed)
    for name, s in sums.items():
        print(f"\n{name} ({a.cases} cases x {a.patches} patches, seed {a.seed}):\n{band_table(s, DEFAULT_EDGES)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

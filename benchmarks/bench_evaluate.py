"""Benchmark: nnssl.evaluation vs medpy.metric.binary on real label maps (single process).

For every case and foreground class both compute Dice, Jaccard, HD95 and ASD without spacing
(the SSL papers' convention): medpy with ``dc, jc, hd95, asd`` (distance transforms of the whole
volume), nnssl with ``case_metrics`` (one crop + one surface extraction per class, both directed
distance sets from it by exact KD-tree nearest-neighbour search between the two surfaces).
Predictions are deterministic perturbations of the reference (shift + dilation, plus a small
false-positive blob), so that the distances are non-trivial. Reading files is excluded from the
timings.

Usage: python benchmarks/bench_evaluate.py [--data PATH] [--cases N]
"""
from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import numpy as np
import SimpleITK as sitk
from scipy.ndimage import binary_dilation, generate_binary_structure

from nnssl.evaluation.metrics import case_metrics

METRICS = ("dice", "jaccard", "hd95", "asd")
REPO = Path(__file__).resolve().parents[1]


def perturb(lab: np.ndarray) -> np.ndarray:
    """Prediction from a reference label map (z/x, y, x/z): shift by (1, -1, 1), dilate class 1,
    and add a 3^3 false-positive cube of the highest class at 3/4 of the volume diagonal."""
    pred = np.roll(lab, (1, -1, 1), axis=(0, 1, 2))
    grown = binary_dilation(pred == 1, generate_binary_structure(3, 1)) & (pred == 0)
    pred[grown] = 1
    z, y, x = (3 * s // 4 for s in lab.shape)
    pred[z:z + 3, y:y + 3, x:x + 3] = lab.max()
    return pred


def load_hippocampus(root: Path, n: int) -> list[np.ndarray]:
    files = sorted((root / "Hippocampus" / "labelsTr").glob("hippocampus_*.nii.gz"))[:n]
    return [np.rint(sitk.GetArrayFromImage(sitk.ReadImage(str(f)))).astype(np.int32) for f in files]


def load_la(root: Path, n: int) -> list[np.ndarray]:
    try:
        import h5py
    except ImportError:
        print("h5py not available: skipping LA")
        return []
    ids = (root / "LA" / "train.list").read_text().split()[:n]
    out = []
    for i in ids:
        with h5py.File(root / "LA" / "2018LA_Seg_Training Set" / i / "mri_norm2.h5", "r") as f:
            out.append(np.asarray(f["label"][:], dtype=np.int32))
    return out


def run_medpy(pairs: list[tuple[np.ndarray, np.ndarray]]) -> tuple[float, np.ndarray]:
    """Seconds and values (cases*classes, 4) with medpy.metric.binary."""
    from medpy.metric import binary as mb
    rows = []
    t0 = time.perf_counter()
    for pred, ref in pairs:
        for c in range(1, int(ref.max()) + 1):
            p, r = pred == c, ref == c
            rows.append((mb.dc(p, r), mb.jc(p, r), mb.hd95(p, r), mb.asd(p, r)))
    return time.perf_counter() - t0, np.array(rows)


def run_nnssl(pairs: list[tuple[np.ndarray, np.ndarray]]) -> tuple[float, np.ndarray]:
    """Seconds and values (cases*classes, 4) with nnssl.evaluation.case_metrics (no spacing)."""
    rows = []
    t0 = time.perf_counter()
    for pred, ref in pairs:
        out = case_metrics(pred, ref, range(1, int(ref.max()) + 1), None)
        rows += [(m["dice"], m["jaccard"], m["hd95_vox"], m["asd_vox"]) for m in out.values()]
    return time.perf_counter() - t0, np.array(rows)


def bench(name: str, refs: list[np.ndarray]) -> None:
    if not refs:
        return
    pairs = [(perturb(r), r) for r in refs]
    t_med, v_med = run_medpy(pairs)
    t_nn, v_nn = run_nnssl(pairs)
    diff = np.abs(v_med - v_nn).max(axis=0)
    shape = "x".join(map(str, refs[0].shape))
    print(f"{name}: {len(refs)} cases (first shape {shape}), {len(v_nn)} case-class pairs")
    print(f"  medpy {t_med:.3f} s | nnssl {t_nn:.3f} s | speedup {t_med / t_nn:.1f}x")
    print("  max |nnssl - medpy|: " + ", ".join(f"{m} {d:.2e}" for m, d in zip(METRICS, diff)))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    default = Path(os.environ.get("NNSSL_DATA", REPO.parent / "shared" / "data"))
    p.add_argument("--data", type=Path, default=default,
                   help="folder holding Hippocampus/ and LA/ (default: $NNSSL_DATA, else "
                        "../shared/data beside the repository)")
    p.add_argument("--cases", type=int, default=20, help="cases per dataset (default 20)")
    a = p.parse_args()
    bench("Hippocampus", load_hippocampus(a.data, a.cases))
    bench("LA", load_la(a.data, a.cases))


if __name__ == "__main__":
    main()

"""Helpers for tests on the real data: small copies in the original layouts, CLI runs in a workspace."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Dict, Iterable, List, Optional


def write_msd_json(task: Path, ids: Iterable[str], modality: dict, labels: dict, test: Iterable[str] = (),
                   name: str = "Synthetic") -> None:
    """An MSD-style dataset.json listing ``ids`` as training cases."""
    ids = list(ids)
    content = {"name": name, "tensorImageSize": "3D", "modality": modality, "labels": labels,
               "numTraining": len(ids), "numTest": len(list(test)),
               "training": [{"image": f"./imagesTr/{i}.nii.gz", "label": f"./labelsTr/{i}.nii.gz"} for i in ids],
               "test": [f"./imagesTs/{i}.nii.gz" for i in test]}
    (task / "dataset.json").write_text(json.dumps(content, indent=2))


def make_msd_subset(source: Path, target: Path, n: int, ids: Optional[List[str]] = None) -> List[str]:
    """Copy the first ``n`` training cases of an MSD task (original layout), or the given ``ids``, into ``target``."""
    from nnssl.dataset_conversion.msd import copy_msd_cases
    if ids is None:
        meta = json.loads((source / "dataset.json").read_text())
        ids = [Path(t["image"]).name[: -len(".nii.gz")] for t in meta["training"]][:n]
    copy_msd_cases(source, target, ids)
    return ids


def make_la_subset(source: Path, target: Path, n: int) -> List[str]:
    """Copy the first ``n`` ids of LA's train.list (UA-MT h5 layout) into ``target`` with a new train.list."""
    ids = [line.strip() for line in (source / "train.list").read_text().splitlines() if line.strip()][:n]
    for i in ids:
        dst = target / "2018LA_Seg_Training Set" / i
        dst.mkdir(parents=True, exist_ok=True)
        shutil.copy(source / "2018LA_Seg_Training Set" / i / "mri_norm2.h5", dst / "mri_norm2.h5")
    (target / "train.list").write_text("\n".join(ids) + "\n")
    return ids


def nnunet_folders(root: Path) -> Dict[str, Path]:
    """Create nnU-Net's three folders under ``root``; returns {env var name: folder}."""
    folders = {k: root / k for k in ("nnUNet_raw", "nnUNet_preprocessed", "nnUNet_results")}
    for p in folders.values():
        p.mkdir(parents=True, exist_ok=True)
    return folders


def tree_digest(path: Path) -> Dict[str, str]:
    """Relative path -> sha256 of every file below ``path`` (byte-for-byte comparison)."""
    import hashlib
    return {str(p.relative_to(path)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(path.rglob("*")) if p.is_file()}


class _InlinePool:
    """Stand-in for multiprocessing.Pool running starmap in this process (saves a spawn + torch import)."""

    def __init__(self, *args, **kwargs):
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def starmap(self, fn, iterable):
        return [fn(*a) for a in iterable]


def verify_integrity(folder: Path, monkeypatch) -> None:
    """nnU-Net's own verify_dataset_integrity on ``folder`` (its checks run in-process)."""
    from types import SimpleNamespace
    import nnunetv2.experiment_planning.verify_dataset_integrity as vdi
    inline = SimpleNamespace(get_context=lambda *a: SimpleNamespace(Pool=_InlinePool))
    monkeypatch.setattr(vdi, "multiprocessing", inline)
    vdi.verify_dataset_integrity(str(folder), num_processes=1)


class Workspace:
    """nnU-Net folders under ``root`` and a runner for the real console scripts with that environment."""

    def __init__(self, root: Path, ext_trainer: bool = True):
        self.root = root
        folders = nnunet_folders(root)
        self.raw, self.pre, self.res = folders["nnUNet_raw"], folders["nnUNet_preprocessed"], folders["nnUNet_results"]
        self.env: Dict[str, str] = {k: v for k, v in os.environ.items() if k not in ("nnUNet_extTrainer",
                                                                                     "nnssl_hparams")}
        self.env.update({**{k: str(v) for k, v in folders.items()}, "nnUNet_n_proc_DA": "0", "nnUNet_def_n_proc": "1",
                         "nnUNet_compile": "0", "OMP_NUM_THREADS": "2", "MPLBACKEND": "agg"})
        if ext_trainer:
            from nnssl.cli.discovery import ext_trainer_folder
            self.env["nnUNet_extTrainer"] = ext_trainer_folder()

    def run(self, *cmd: str, env: Optional[Dict[str, str]] = None, check: bool = True,
            timeout: int = 900) -> subprocess.CompletedProcess:
        """Run a console script; on failure the assertion shows the command and its output's tail."""
        proc = subprocess.run(list(cmd), env={**self.env, **(env or {})}, capture_output=True, encoding="utf-8",
                              errors="replace", timeout=timeout, cwd=self.root)
        if check:
            assert proc.returncode == 0, (f"{' '.join(cmd)} exited {proc.returncode}\n--- stdout ---\n"
                                          f"{proc.stdout[-4000:]}\n--- stderr ---\n{proc.stderr[-4000:]}")
        return proc

    def python(self, *args: str, **kw) -> subprocess.CompletedProcess:
        return self.run(sys.executable, *args, **kw)


HIPPO_DATASET = "Dataset501_Hippocampus"
TINY_PLANS = "nnSSLPlans_tiny"
#: a CPU-sized network for tests: 3 stages, 4..16 features, 32^3 patches (same preprocessed data)
TINY_PLANS_ARGS = ["--patch_size", "32", "32", "32", "--n_stages", "3", "--features_base", "4", "--features_max", "16"]
TINY_HPARAMS = {"num_epochs": 2, "num_iterations_per_epoch": 3, "num_val_iterations_per_epoch": 1, "save_every": 1}

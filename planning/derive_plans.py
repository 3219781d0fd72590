"""``nnssl_derive_plans``: a new plans file from an existing one, with a smaller or tuned network.

The derived plans keep the source's ``data_identifier``, so they train on the same preprocessed
data (spacing and normalisation are untouched). Used for CPU-scale runs (tests, benchmarks) and
to store trainer hyperparameters in the plans (``nnssl_hparams``, read by every nnssl trainer).
"""
from __future__ import annotations

import argparse
import copy
import json
import os
from typing import Any, Dict, List, Optional, Sequence

from batchgenerators.utilities.file_and_folder_operations import load_json, save_json
from nnunetv2.paths import nnUNet_preprocessed
from nnunetv2.utilities.dataset_name_id_conversion import maybe_convert_to_dataset_name


def derive_configuration(config: Dict[str, Any], patch_size: Optional[Sequence[int]] = None,
                         n_stages: Optional[int] = None, features_base: Optional[int] = None,
                         features_max: Optional[int] = None, batch_size: Optional[int] = None) -> Dict[str, Any]:
    """A copy of one plans configuration with the given changes.

    ``n_stages`` truncates the per-stage lists of the architecture (kernel sizes, strides, convs per
    stage); features per stage become min(features_max, features_base * 2**i). The patch size must
    be divisible by the product of the (remaining) strides along each axis.
    """
    cfg = copy.deepcopy(config)
    arch = cfg["architecture"]["arch_kwargs"]
    if n_stages is not None:
        if not 1 <= n_stages <= arch["n_stages"]:
            raise ValueError(f"n_stages must be in [1, {arch['n_stages']}], got {n_stages}")
        arch["n_stages"] = n_stages
        for key in ("kernel_sizes", "strides", "n_conv_per_stage", "n_blocks_per_stage"):
            if key in arch:
                arch[key] = arch[key][:n_stages]
        if "n_conv_per_stage_decoder" in arch:
            arch["n_conv_per_stage_decoder"] = arch["n_conv_per_stage_decoder"][:n_stages - 1]
    if features_base is not None or features_max is not None:
        base = features_base or arch["features_per_stage"][0]
        top = features_max or max(arch["features_per_stage"])
        arch["features_per_stage"] = [min(top, base * 2 ** i) for i in range(arch["n_stages"])]
    else:
        arch["features_per_stage"] = arch["features_per_stage"][:arch["n_stages"]]
    if patch_size is not None:
        if len(patch_size) != len(cfg["patch_size"]):
            raise ValueError(f"patch size {list(patch_size)} has {len(patch_size)} axes, the configuration "
                             f"{len(cfg['patch_size'])}")
        cfg["patch_size"] = [int(p) for p in patch_size]
    divisor = [1] * len(cfg["patch_size"])
    for stride in arch["strides"]:
        divisor = [d * s for d, s in zip(divisor, stride)]
    bad = [p for p, d in zip(cfg["patch_size"], divisor) if p % d]
    if bad:
        raise ValueError(f"patch size {cfg['patch_size']} is not divisible by the network's total strides "
                         f"{divisor}; choose a multiple or fewer stages")
    if batch_size is not None:
        cfg["batch_size"] = int(batch_size)
    return cfg


def derive_plans(dataset: str | int, source: str, target: str, configurations: Sequence[str] = ("3d_fullres",),
                 hparams: Optional[Dict[str, Any]] = None, overwrite: bool = False, **changes: Any) -> str:
    """Write ``<target>.json`` beside ``<source>.json``; returns its path. Refuses to overwrite unless asked."""
    folder = os.path.join(str(nnUNet_preprocessed), maybe_convert_to_dataset_name(dataset))
    src_file, dst_file = os.path.join(folder, source + ".json"), os.path.join(folder, target + ".json")
    if not os.path.isfile(src_file):
        raise FileNotFoundError(f"source plans {src_file} not found (run nnssl_plan_and_preprocess first)")
    if os.path.exists(dst_file) and not overwrite:
        raise FileExistsError(f"{dst_file} exists; pass --overwrite to replace it")
    plans = load_json(src_file)
    for c in configurations:
        if c not in plans["configurations"]:
            raise ValueError(f"configuration '{c}' not in {src_file}")
        cfg = plans["configurations"][c]
        cfg.setdefault("data_identifier", f"{source}_{c}")
        plans["configurations"][c] = derive_configuration(cfg, **changes)
    plans["plans_name"] = target
    plans["nnssl_derived_from"] = {"plans": source, "changes": {k: v for k, v in changes.items() if v is not None}}
    if hparams:
        plans["nnssl_hparams"] = hparams
    save_json(plans, dst_file, sort_keys=False)
    return dst_file


def main(argv: Optional[List[str]] = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] + " The new plans share the "
                                     "source's preprocessed data.")
    parser.add_argument("-d", required=True, help="dataset ID or name")
    parser.add_argument("-p", default="nnSSLPlans", help="source plans identifier (default nnSSLPlans)")
    parser.add_argument("-o", required=True, help="new plans identifier, e.g. nnSSLPlans_cpu")
    parser.add_argument("-c", nargs="+", default=["3d_fullres"], help="configurations to change")
    parser.add_argument("--patch_size", type=int, nargs="+", default=None)
    parser.add_argument("--n_stages", type=int, default=None, help="keep the first N resolution stages")
    parser.add_argument("--features_base", type=int, default=None, help="features of the first stage")
    parser.add_argument("--features_max", type=int, default=None, help="cap on features per stage")
    parser.add_argument("--batch_size", type=int, default=None, help="labeled batch size")
    parser.add_argument("--hparams", default=None,
                        help="trainer hyperparameters stored in the plans: a JSON object or a JSON file path")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing target plans file")
    args = parser.parse_args(argv)
    hparams = None
    if args.hparams:
        text = open(args.hparams).read() if os.path.isfile(args.hparams) else args.hparams
        hparams = json.loads(text)
    try:
        path = derive_plans(args.d, args.p, args.o, args.c, hparams, args.overwrite, patch_size=args.patch_size,
                            n_stages=args.n_stages, features_base=args.features_base,
                            features_max=args.features_max, batch_size=args.batch_size)
    except (ValueError, FileNotFoundError, FileExistsError) as e:
        parser.exit(1, f"nnssl_derive_plans: error: {e}\n")
    print(f"[nnssl] wrote {path}")


if __name__ == "__main__":
    main()

"""``nnssl_ext_trainer_path``: print the folder nnU-Net's ``nnUNet_extTrainer`` must point to."""
from __future__ import annotations

import argparse
import os

import nnssl_trainers


def ext_trainer_folder() -> str:
    """Folder with the one re-exporting module that nnU-Net scans for nnssl's trainers."""
    return os.path.join(os.path.dirname(os.path.abspath(nnssl_trainers.__file__)), "discovery")


def with_ext_trainer_path(current: str | None) -> str:
    """``current`` (a path list) with nnssl's folder added once (at the end)."""
    parts = [p for p in (current or "").split(os.pathsep) if p]
    folder = ext_trainer_folder()
    return os.pathsep.join(parts if folder in parts else parts + [folder])


def main() -> None:
    parser = argparse.ArgumentParser(
        description="Print the value of nnUNet_extTrainer that lets nnUNetv2_train/-predict find nnssl's "
                    "trainers. Use: export nnUNet_extTrainer=$(nnssl_ext_trainer_path)")
    parser.add_argument("--append", action="store_true",
                        help="append nnssl's folder to the current $nnUNet_extTrainer instead of replacing it")
    args = parser.parse_args()
    print(with_ext_trainer_path(os.environ.get("nnUNet_extTrainer")) if args.append else ext_trainer_folder())


if __name__ == "__main__":
    main()

"""``nnssl_train``: nnUNetv2_train with nnssl's trainers found without setting any env var.

Takes exactly nnUNetv2_train's arguments (see ``nnssl_train -h``); it only adds nnssl's trainer
folder to ``nnUNet_extTrainer`` (kept for DDP worker processes, which inherit the environment).
"""
from __future__ import annotations

import os

from nnssl.cli.discovery import with_ext_trainer_path


def main() -> None:
    os.environ["nnUNet_extTrainer"] = with_ext_trainer_path(os.environ.get("nnUNet_extTrainer"))
    from nnunetv2.run.run_training import run_training_entry
    run_training_entry()


if __name__ == "__main__":
    main()

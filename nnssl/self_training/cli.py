"""``nnssl_self_train``: the self-training baseline's command line (see ``nnssl.self_training``)."""
from __future__ import annotations

import argparse
import json
import sys
from typing import List, Optional

from nnssl.self_training.run import WARM_STARTS, Interrupted, Options, run_self_training

EPILOG = """examples:
  # teacher + 2 self-training rounds, CPU, nnssl's supervised trainer (budget from the plans' nnssl_hparams)
  nnssl_self_train -d 501 -c 3d_fullres -f 0 --rounds 2 -tr nnSSLSupervisedTrainer -p nnSSLPlans -device cpu
  # confident cases only, uncertain voxels ignored, student fine-tuned on the labeled cases
  nnssl_self_train -d 501 -c 3d_fullres -f 0 --rounds 1 -tr nnSSLSupervisedTrainer -p nnSSLPlans \\
      --case_threshold 0.9 --voxel_threshold 0.7 --finetune --derived_ids 601
  # equal total budget of 40 epochs: a 30-epoch teacher, a 10-epoch student that starts from its weights
  nnssl_hparams='{"num_epochs": 10}' nnssl_self_train -d 501 -c 3d_fullres -f all --rounds 1 \\
      -tr nnSSLSupervisedTrainer -p nnSSLPlans --teacher_hparams '{"num_epochs": 30}' --warm_start all
  # the same, with half of the student's patches from the 3 labeled cases instead of 3 in 30
  ... --warm_start all --labeled_share 0.5
  # an interrupted run resumes where it stopped: rerun the same command (a larger --rounds adds rounds)
"""


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="nnssl_self_train", epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Self-training baseline: round 0 trains a teacher on the labeled cases; each round k >= 1 "
                    "pseudo-labels imagesUnlabeled/ with the previous model, trains a student on labeled + "
                    "pseudo-labeled cases (a derived dataset DatasetYYY_<Name>SelfTrainR<k> with the same plans) "
                    "and optionally fine-tunes it on the labeled cases. Resumable: rerun the same command.")
    p.add_argument("-d", dest="dataset", required=True, help="base dataset id or DatasetXXX_Name (nnssl raw format)")
    p.add_argument("-c", dest="configuration", required=True, help="nnU-Net configuration, e.g. 3d_fullres")
    p.add_argument("-f", dest="fold", default="0", help="fold (0..4 or 'all'); default 0")
    p.add_argument("--rounds", type=int, required=True, help="number of self-training rounds K >= 1")
    p.add_argument("-tr", dest="trainer", default="nnUNetTrainer",
                   help="trainer of teacher and students (default nnUNetTrainer; nnssl trainers such as "
                        "nnSSLSupervisedTrainer take their budget from nnssl_hparams)")
    p.add_argument("-p", dest="plans", default="nnUNetPlans", help="plans identifier (default nnUNetPlans)")
    p.add_argument("--case_threshold", type=float, default=None,
                   help="keep only unlabeled cases whose confidence (mean max-class probability) is above this")
    p.add_argument("--voxel_threshold", type=float, default=None,
                   help="set voxels whose max-class probability is below this to an ignore label")
    p.add_argument("--finetune", action="store_true",
                   help="fine-tune each student on the labeled cases (-pretrained_weights) before the next round")
    p.add_argument("--warm_start", choices=WARM_STARTS, default=None,
                   help="each student starts from its teacher's weights instead of from scratch: 'all' every layer "
                        "(nnssl trainers: hyperparameter init_weights), 'pretrained_weights' nnU-Net's "
                        "-pretrained_weights (segmentation layers re-initialised; any trainer)")
    p.add_argument("--teacher_hparams", type=_json_object, default=None, metavar="JSON",
                   help="nnssl hyperparameters of the teacher (round 0) only, merged over $nnssl_hparams, e.g. "
                        "'{\"num_epochs\": 30}' (nnssl trainers read them; nnUNetTrainer ignores them)")
    p.add_argument("--labeled_share", type=float, default=None, metavar="S",
                   help="students draw a training patch from a labeled case with probability S (0 < S < 1) instead "
                        "of uniformly over labeled + pseudo-labeled cases (nnssl trainers: hyperparameter "
                        "labeled_share); default: uniform")
    p.add_argument("--derived_ids", type=int, nargs="+", default=None,
                   help="dataset ids of the derived datasets of rounds 1..K (default: free ids above the base id)")
    p.add_argument("-device", default=None, help="passed to nnUNetv2_train/-predict (cuda, cpu, mps)")
    p.add_argument("-num_gpus", type=int, default=None, help="passed to nnUNetv2_train")
    p.add_argument("-np", dest="num_processes", type=int, default=3,
                   help="processes for nnUNetv2_preprocess and nnUNetv2_predict (-npp/-nps); default 3")
    return p


def _json_object(text: str) -> dict:
    try:
        value = json.loads(text)
    except json.JSONDecodeError as e:
        raise argparse.ArgumentTypeError(f"invalid JSON ({e}): {text!r}") from None
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError(f"expected a JSON object, got {text!r}")
    return value


def main(argv: Optional[List[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    opts = Options(**vars(args))
    try:
        if opts.derived_ids and len(opts.derived_ids) < opts.rounds:
            print(f"[nnssl_self_train] note: --derived_ids gives {len(opts.derived_ids)} id(s) for {opts.rounds} "
                  f"round(s); later rounds get free ids", flush=True)
        _check_trainer(opts.trainer, opts.warm_start, opts.labeled_share)
        run_self_training(opts)
    except Interrupted as e:
        print(f"[nnssl_self_train] {e}; rerun the same command to resume", file=sys.stderr)
        return 75
    except (ValueError, FileNotFoundError, FileExistsError, RuntimeError) as e:
        print(f"nnssl_self_train: error: {e}", file=sys.stderr)
        return 1
    return 0


def _check_trainer(name: str, warm_start: Optional[str] = None, labeled_share: Optional[float] = None) -> None:
    """ValueError for nnssl trainers that need unlabeled data (derived datasets have none), and for
    ``--warm_start all`` or ``--labeled_share`` with a trainer that lacks the hyperparameter they set."""
    import nnssl_trainers
    from nnssl.hparams import collect_defaults
    cls = getattr(nnssl_trainers, name, None)
    if cls is not None and getattr(cls, "uses_unlabeled", False):
        raise ValueError(f"trainer {name} trains on unlabeled images, but self-training's datasets have none; "
                         f"use a supervised trainer (nnSSLSupervisedTrainer, nnUNetTrainer, ...)")
    if warm_start == "all" and (cls is None or "init_weights" not in collect_defaults(cls)):
        raise ValueError(f"--warm_start all needs an nnssl trainer (hyperparameter init_weights), not {name}; "
                         f"use --warm_start pretrained_weights (nnU-Net's, segmentation layers re-initialised)")
    if labeled_share is not None and (cls is None or "labeled_share" not in collect_defaults(cls)):
        raise ValueError(f"--labeled_share needs an nnssl trainer (hyperparameter labeled_share), not {name}")


if __name__ == "__main__":
    sys.exit(main())

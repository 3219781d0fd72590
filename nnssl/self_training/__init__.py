"""Self-training baseline (``nnssl_self_train``): teacher -> pseudo-labels -> student, for K rounds.

Round 0 trains the teacher on the labeled cases. Round k >= 1:

1. ``predict``: the previous round's model predicts ``imagesUnlabeled/`` with ``nnUNetv2_predict
   --save_probabilities``;
2. ``pseudo_labels``: case confidence = mean over voxels of the predicted label's probability; cases above
   ``--case_threshold`` are kept; with ``--voxel_threshold`` voxels below it get the ignore label
   (dataset.json ``"ignore"``, the highest label value; nnU-Net's losses skip it);
3. ``derive``: raw dataset ``Dataset{YYY}_{Name}SelfTrainR{k}`` = labeled cases + pseudo-labeled cases
   (id from ``--derived_ids`` or the next id above the base's and earlier rounds' ids that no
   raw/preprocessed/results folder uses);
4. ``preprocess``: ``nnUNetv2_move_plans_between_datasets`` (the same plans, same data identifier) and
   ``nnUNetv2_preprocess``; ``splits_final.json`` per base fold: train = base train + pseudo-labeled ids,
   val = base val (never a pseudo-labeled case);
5. ``train``: the student, same trainer/plans/configuration/fold, on the derived dataset (from scratch, or
   with ``--warm_start`` from the previous model's weights: ``all`` layers through the nnssl hyperparameter
   ``init_weights``, or nnU-Net's ``-pretrained_weights``, segmentation layers re-initialised; with
   ``--labeled_share S`` a patch comes from a labeled case with probability S, hyperparameter
   ``labeled_share``);
6. ``finetune`` (``--finetune``): ``nnUNetv2_train -pretrained_weights`` of the student on the base dataset.

nnU-Net names a results folder ``TRAINER__PLANS__CONFIG``; models trained on the base dataset name their
round through a plans copy (same content and data identifier, only ``plans_name`` differs):
``{PLANS}_SelfTrainR0`` (teacher) and ``{PLANS}_SelfTrainR{k}FineTune``; students live in their round's
derived dataset. The model of round k (fine-tuned student, else student; round 0: teacher) is the teacher
of round k + 1.

Run folder ``$nnUNet_results/{base}/nnSSLSelfTrain__{TRAINER}__{PLANS}__{CONFIG}/fold_{F}/``:
``state.json`` (fixed settings, derived ids, completed steps per round, each round's model, final model),
``round_{k}/settings.json``, ``round_{k}/predictions/`` (nnU-Net's output incl. ``.npz`` probabilities),
``round_{k}/pseudo_labels/`` (label files + ``confidence.json``).

``--teacher_hparams`` (a JSON object) are merged over ``$nnssl_hparams`` for round 0's training only.

Resume: rerunning the same command continues at the first step not recorded in ``state.json``; a
training step continues with ``--c`` if its folder holds a checkpoint, an unfinished prediction,
pseudo-label, raw or preprocessed folder is removed and redone; a larger ``--rounds`` adds rounds
without touching finished ones. Changing a fixed setting (trainer, plans, thresholds, ...) is an error.
"""

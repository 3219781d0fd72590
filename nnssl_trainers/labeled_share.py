"""Hyperparameter ``labeled_share``: how often a training patch comes from a labeled case when the dataset
mixes labeled and pseudo-labeled cases (a self-training student's derived dataset).

nnU-Net draws a patch's case uniformly from the training cases, so a student with 3 labeled and 27
pseudo-labeled cases sees the labeled ones in 10% of its patches. With ``labeled_share`` s (0 < s < 1), the
training cases are reweighted (``nnssl.data.sampling.weighted_identifiers``) so that a patch is from a labeled
case with probability s; None (the default) keeps nnU-Net's uniform draw. The pseudo-labeled cases are those
the dataset.json's ``nnssl_self_training`` record lists (written by ``nnssl_self_train``).
"""
from __future__ import annotations

from typing import Any, Dict

from nnssl.data.sampling import check_share, labeled_share, weighted_identifiers

#: dataset.json key under which nnssl_self_train records a derived dataset's pseudo-labeled cases
SELF_TRAINING_KEY = "nnssl_self_training"


class LabeledShareMixin:
    """Reweights nnU-Net's training cases per hyperparameter ``labeled_share`` (mixed into nnSSLTrainerBase)."""

    hparam_defaults: Dict[str, Any] = {"labeled_share": None}

    def check_labeled_share(self) -> None:
        """ValueError, naming the dataset.json, for a ``labeled_share`` that cannot apply; called by initialize."""
        share = self.hparams.get("labeled_share")
        if share is None:
            return
        check_share(share, "hyperparameter labeled_share")
        if not isinstance(self.dataset_json.get(SELF_TRAINING_KEY), dict):
            raise ValueError(f"hyperparameter labeled_share needs a dataset that lists its pseudo-labeled cases "
                             f"(dataset.json key '{SELF_TRAINING_KEY}', written by nnssl_self_train); "
                             f"{self.preprocessed_dataset_folder}/dataset.json has none")

    def get_tr_and_val_datasets(self):
        dataset_tr, dataset_val = super().get_tr_and_val_datasets()
        share = self.hparams.get("labeled_share")
        if share is None:
            return dataset_tr, dataset_val
        pseudo = set(self.dataset_json[SELF_TRAINING_KEY].get("pseudo_labeled", []))
        before = labeled_share(dataset_tr.identifiers, pseudo)
        dataset_tr.identifiers = weighted_identifiers(dataset_tr.identifiers, pseudo, share)
        self.print_to_log_file(f"labeled_share: a training patch comes from a labeled case with probability "
                               f"{labeled_share(dataset_tr.identifiers, pseudo):.3f} (uniform draw: {before:.3f}; "
                               f"{len(pseudo & set(dataset_tr.identifiers))} pseudo-labeled case(s))")
        return dataset_tr, dataset_val

"""labeled_share: reweighting nnU-Net's training cases (nnssl.data.sampling, nnssl_trainers.labeled_share)."""
from types import SimpleNamespace

import pytest

from nnssl.data.sampling import MAX_REPEAT, labeled_share, weighted_identifiers
from nnssl_trainers.labeled_share import LabeledShareMixin

LABELED = ["l0", "l1", "l2"]
PSEUDO = [f"p{i:02d}" for i in range(27)]


@pytest.mark.parametrize("share, repeats_labeled, repeats_pseudo", [
    (0.5, 9, 1),    # a/b = 1 * 27/3 = 9: 27 labeled entries against 27 pseudo-labeled ones
    (0.25, 3, 1),   # a/b = 1/3 * 9 = 3: 9 / 36
    (0.05, 9, 19),  # a/b = 1/19 * 9 = 9/19: 27 / (27 + 513) = 0.05
])
def test_weighted_identifiers_hand_computed(share, repeats_labeled, repeats_pseudo):
    ids = LABELED + PSEUDO
    out = weighted_identifiers(ids, PSEUDO, share)
    assert [out.count(i) for i in LABELED] == [repeats_labeled] * 3
    assert [out.count(i) for i in PSEUDO] == [repeats_pseudo] * 27
    assert len(out) == 3 * repeats_labeled + 27 * repeats_pseudo
    assert labeled_share(out, PSEUDO) == pytest.approx(share)
    assert list(dict.fromkeys(out)) == ids  # input order kept


def test_uniform_share_and_nothing_to_reweight():
    assert labeled_share(LABELED + PSEUDO, PSEUDO) == pytest.approx(0.1)
    assert labeled_share([], PSEUDO) == 0.0
    assert weighted_identifiers(LABELED, PSEUDO, 0.5) == LABELED          # no pseudo-labeled case
    assert weighted_identifiers(PSEUDO[:2], PSEUDO, 0.5) == PSEUDO[:2]    # no labeled case
    # a pseudo-labeled list entry that is not a training case changes nothing
    assert weighted_identifiers(["l0", "p00"], ["p00", "zz"], 0.75) == ["l0"] * 3 + ["p00"]


def test_share_clamped_to_max_repeat():
    ids = ["l0"] + [f"p{i}" for i in range(1000)]
    out = weighted_identifiers(ids, ids[1:], 0.99)  # a/b = 99 * 1000, beyond the bound
    assert out.count("l0") == MAX_REPEAT and out.count("p0") == 1
    assert labeled_share(out, ids[1:]) == pytest.approx(100 / 1100)


@pytest.mark.parametrize("bad", [0, 1, 1.5, -0.1, True, "0.5", None])
def test_bad_share_is_refused(bad):
    with pytest.raises(ValueError, match="labeled_share must be a number between 0 and 1"):
        weighted_identifiers(LABELED + PSEUDO, PSEUDO, bad)


class _Parent:
    def get_tr_and_val_datasets(self):
        return SimpleNamespace(identifiers=LABELED + PSEUDO), SimpleNamespace(identifiers=["v0"])


class _Trainer(LabeledShareMixin, _Parent):
    def __init__(self, share, dataset_json):
        self.hparams, self.dataset_json, self.log = {"labeled_share": share}, dataset_json, []
        self.preprocessed_dataset_folder = "/pre/Dataset001_X"

    def print_to_log_file(self, *args):
        self.log.append(" ".join(map(str, args)))


def test_mixin_reweights_training_cases_only():
    trainer = _Trainer(0.5, {"nnssl_self_training": {"pseudo_labeled": PSEUDO}})
    trainer.check_labeled_share()
    tr, val = trainer.get_tr_and_val_datasets()
    assert labeled_share(tr.identifiers, PSEUDO) == pytest.approx(0.5) and val.identifiers == ["v0"]
    assert "probability 0.500 (uniform draw: 0.100; 27 pseudo-labeled case(s))" in trainer.log[0]
    off = _Trainer(None, {})
    off.check_labeled_share()
    assert off.get_tr_and_val_datasets()[0].identifiers == LABELED + PSEUDO and off.log == []


def test_mixin_refuses_a_dataset_without_pseudo_labels_and_bad_values():
    with pytest.raises(ValueError, match=r"dataset.json key 'nnssl_self_training'.*/pre/Dataset001_X/dataset.json"):
        _Trainer(0.5, {"labels": {}}).check_labeled_share()
    with pytest.raises(ValueError, match="hyperparameter labeled_share must be a number between 0 and 1"):
        _Trainer(2, {"nnssl_self_training": {}}).check_labeled_share()
